package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/paddockhq/paddock/proto"
)

func init() {
	commands["wire"] = command{"inspect the market-data wire format: wire demo | wire decode [hex|@file|-]", runWire}
}

const wireUsage = `usage: paddock wire demo                     encode and decode one message of every type
       paddock wire decode [-human] [hex|@file|-]
  decode messages: hex as an argument, or from a file or stdin, which may also
  hold the raw bytes of a message (so the NATS CLI can use it:
  nats sub 'market.data.>' --translate 'paddock wire decode -human')
`

func runWire(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{wireUsage}
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, wireUsage)
		return nil
	}
	switch args[0] {
	case "demo":
		return wireDemo(stdout)
	case "decode":
		fs := flag.NewFlagSet("wire decode", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() { fmt.Fprint(fs.Output(), wireUsage) }
		human := fs.Bool("human", false, "decimals as decimal strings, times as RFC 3339")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		arg := "-"
		switch fs.NArg() {
		case 0:
		case 1:
			arg = fs.Arg(0)
		default:
			return usageError{wireUsage}
		}
		return wireDecode(arg, *human, os.Stdin, stdout)
	}
	return usageError{fmt.Sprintf("unknown wire command %q\n%s", args[0], wireUsage)}
}

// wireDemo encodes one message of every type, decodes it again and prints the
// bytes, the decoded fields and the subject it would travel on.
func wireDemo(w io.Writer) error {
	now := time.Now().UnixNano()
	h := proto.Header{Venue: proto.VenueBinance, Seq: 1, EventTime: now - 1_500_000, RecvTime: now}
	p := func(s string) proto.Decimal { d, _ := proto.ParseUDecimal(s); return d }
	lvl := func(price, qty string) proto.Level { return proto.Level{Price: p(price), Qty: p(qty)} }
	type demo struct {
		event string
		enc   func([]byte) ([]byte, error)
	}
	demos := []demo{
		{"trades", func(b []byte) ([]byte, error) {
			return proto.AppendTrade(b, &h, &proto.Trade{Price: p("27123.45000000"), Qty: p("0.00100000"), TradeID: 3187632211, Side: proto.SideBuy})
		}},
		{"orderbook", func(b []byte) ([]byte, error) {
			return proto.AppendBookDelta(b, &h, &proto.BookDelta{FirstUpdateID: 1001, LastUpdateID: 1003,
				Bids: []proto.Level{lvl("27123.45", "1.5"), lvl("27123.40", "0")}, Asks: []proto.Level{lvl("27123.50", "0.25")}})
		}},
		{"bbo", func(b []byte) ([]byte, error) {
			return proto.AppendBBO(b, &h, &proto.BBO{Bid: lvl("27123.45", "1.5"), Ask: lvl("27123.50", "0.25"), UpdateID: 1003})
		}},
		{"orderbook", func(b []byte) ([]byte, error) {
			return proto.AppendReset(b, &h, &proto.Reset{Reason: proto.ResetGap, LastUpdateID: 1003})
		}},
		{"health", func(b []byte) ([]byte, error) {
			return proto.AppendStatus(b, &h, &proto.Status{State: proto.StateConnected, Connections: 1, Instruments: 1, InSync: 1, LastData: now, Messages: 4})
		}},
	}
	buf := make([]byte, 0, 256)
	for _, d := range demos {
		var err error
		buf, err = d.enc(buf[:0])
		if err != nil {
			return err
		}
		m, err := proto.Decode(buf)
		if err != nil {
			return fmt.Errorf("decoding own %s message: %w", d.event, err)
		}
		subject, _ := proto.HealthSubject("binance")
		if d.event != "health" {
			ev, _ := proto.EventByName(d.event)
			subject, _ = proto.DataSubject("binance", "btcusdt", ev)
		}
		fmt.Fprintf(w, "%s (%d bytes) on %s\n  hex:  %s\n  json: %s\n\n", m.Type(), m.Len(), subject, hex.EncodeToString(buf), m.AppendJSON(nil))
	}
	fmt.Fprintln(w, "Every message above was encoded and decoded again; proto/SPEC.md documents each byte.")
	return nil
}

// wireDecode decodes the messages in arg: hex text, or @file or - (stdin)
// holding either hex text or the raw bytes of messages.
func wireDecode(arg string, human bool, stdin io.Reader, w io.Writer) error {
	var text []byte
	var err error
	switch {
	case arg == "-":
		text, err = io.ReadAll(io.LimitReader(stdin, 64<<20))
	case strings.HasPrefix(arg, "@"):
		text, err = os.ReadFile(arg[1:])
	default:
		text = []byte(arg)
	}
	if err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(text)), ""))
	if err != nil {
		if arg != "-" && !strings.HasPrefix(arg, "@") {
			return fmt.Errorf("input is not hex: %w", err)
		}
		b = text // raw bytes, as the NATS CLI hands a message to --translate
	}
	if len(b) == 0 {
		return usageError{"nothing to decode\n" + wireUsage}
	}
	for off := 0; off < len(b); {
		m, err := proto.Decode(b[off:])
		if errors.Is(err, proto.ErrUnknownType) {
			fmt.Fprintf(w, "skipping %d bytes of unknown message type %d at offset %d\n", m.Len(), m.Type(), off)
			off += m.Len()
			continue
		}
		if err != nil {
			return fmt.Errorf("decode at offset %d: %w", off, err)
		}
		if human {
			fmt.Fprintf(w, "%s\n", humanJSON(m))
		} else {
			fmt.Fprintf(w, "%s\n", m.AppendJSON(nil))
		}
		off += m.Len()
	}
	return nil
}
