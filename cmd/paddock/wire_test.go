package main

import (
	"bytes"
	"strings"
	"testing"
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
