package main

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

func TestWireDemoAndDecode(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"wire", "demo"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"trade (64 bytes) on market.data.binance.btcusdt.trades", "book_delta", "bbo", "reset", "status"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// Decode the demo's trade bytes back through the CLI.
	line := strings.Split(out.String(), "\n")[1]
	hexTrade := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "hex:"))
	out.Reset()
	if err := run(t.Context(), []string{"wire", "decode", hexTrade}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"trade_id":"3187632211"`) {
		t.Errorf("decode output: %s", out.String())
	}
	if err := run(t.Context(), []string{"wire", "decode", hexTrade[:40]}, &out, &out); err == nil {
		t.Error("truncated message decoded without error")
	}
	if err := run(t.Context(), []string{"wire", "decode", "zz"}, &out, &out); err == nil {
		t.Error("non-hex input decoded without error")
	}
}

func TestUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"frobnicate"}, &out, &out)
	if _, ok := err.(usageError); !ok {
		t.Fatalf("err = %v, want a usage error", err)
	}
}

// TestWireDecodeReadsStdin: decode takes a message's raw bytes (what the
// NATS CLI's --translate hands it) or hex on stdin, and -human prints exact
// decimal strings and RFC 3339 times.
func TestWireDecodeReadsStdin(t *testing.T) {
	h := proto.Header{Venue: proto.VenueBinance, Seq: 7, EventTime: 1_700_000_000_123_456_789, RecvTime: 1_700_000_000_223_456_789}
	price, _ := proto.ParseUDecimal("27123.45")
	qty, _ := proto.ParseUDecimal("0.00100000")
	raw, err := proto.AppendTrade(nil, &h, &proto.Trade{Price: price, Qty: qty, TradeID: 42, Side: proto.SideBuy})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		input []byte
		human bool
		want  []string
	}{
		{"raw bytes", raw, false, []string{`"trade_id":"42"`, `"price":{"exp":-2,"mant":"2712345"}`}},
		{"hex", []byte(hex.EncodeToString(raw) + "\n"), false, []string{`"trade_id":"42"`}},
		{"raw bytes, human", raw, true, []string{`"price":"27123.45"`, `"qty":"0.00100000"`, `"event_time":"2023-11-14T22:13:20.123456789Z"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := wireDecode("-", tc.human, bytes.NewReader(tc.input), &out); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %s:\n%s", w, out.String())
				}
			}
		})
	}
	var out bytes.Buffer
	if err := wireDecode("-", false, bytes.NewReader(nil), &out); err == nil {
		t.Error("empty input decoded without error")
	}
}
