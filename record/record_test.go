package record

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestFramesRoundTrip: what the recorder batches, Frames gives back in
// order; a damaged batch is an error.
func TestFramesRoundTrip(t *testing.T) {
	var b []byte
	in := []struct{ s, d string }{{"market.data.binance.btcusdt.trades", "abc"}, {"market.data.binance.btcusdt.orderbook", ""}, {"x", "0123456789"}}
	for _, f := range in {
		b = appendFrame(b, f.s, []byte(f.d))
	}
	i := 0
	if err := Frames(b, func(s string, d []byte) error {
		if s != in[i].s || string(d) != in[i].d {
			t.Fatalf("frame %d: %q %q", i, s, d)
		}
		i++
		return nil
	}); err != nil || i != len(in) {
		t.Fatalf("%d frames, %v", i, err)
	}
	for _, bad := range [][]byte{nil, {'P'}, {'P', 2}, {'X', 1}, b[:len(b)-1], append(bytes.Clone(b), 0), {'P', 1, 5, 'a'}} {
		if err := Frames(bad, func(string, []byte) error { return nil }); !errors.Is(err, ErrBatch) {
			t.Errorf("%x: %v", bad, err)
		}
	}
}

// FuzzFrames: any bytes are a batch or ErrBatch; every frame lies inside
// the input.
func FuzzFrames(f *testing.F) {
	f.Add(appendFrame(nil, "market.data.binance.btcusdt.trades", []byte("x")))
	f.Add([]byte{'P', 1, 1, 'a', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		err := Frames(b, func(s string, d []byte) error { total += len(s) + len(d); return nil })
		if err != nil && !errors.Is(err, ErrBatch) {
			t.Fatal(err)
		}
		if total > len(b) {
			t.Fatalf("frames of %d bytes from %d", total, len(b))
		}
	})
}

// FuzzParseDump: any CSV is rows or ErrDump, never a panic; rows come in
// time order.
func FuzzParseDump(f *testing.F) {
	f.Add("1,1.0,1.0,1.0,1714521600000,True,True\n2,1.5,0.1,1.0,1714521600001,False,True\n", "trades")
	f.Add("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n7,1,1,1,1,1714521600000,false\n", "um-aggTrades")
	f.Add("1,1,1,1,1,1714521600000000,1\n", "um-bookTicker")
	f.Fuzz(func(t *testing.T, csv, kind string) {
		var last time.Time
		err := parseDump(strings.NewReader(csv), Kind(kind), func(r row) error {
			if r.t.Before(last) {
				t.Fatalf("row %d out of order", r.line)
			}
			last = r.t
			return nil
		})
		if err != nil && !errors.Is(err, ErrDump) {
			t.Fatal(err)
		}
	})
}

// FuzzParseCheckpoint: a marker is read or refused, never half-read.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte(`{"t":"2026-11-01T00:00:00.123456789Z","seq":42}`))
	f.Add([]byte(`{"t":"2026-11-01T00:00:00Z","seq":0}`))
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`{"t":"not a time","seq":1}`))
	f.Add([]byte(`{"t":"2026-11-01T00:00:00Z","seq":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			if !errors.Is(err, ErrMarker) {
				t.Fatalf("an error that is not ErrMarker: %v", err)
			}
			return
		}
		if c.Seq == 0 || c.Time.IsZero() || c.Time.Location() != time.UTC {
			t.Fatalf("accepted %+v", c)
		}
	})
}
