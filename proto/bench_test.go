package proto

import (
	"fmt"
	"testing"
)

// benchCases are the messages measured by the encode/decode benchmarks and
// locked at zero allocations by TestZeroAllocs.
var benchCases = []struct {
	name   string
	encode func(dst []byte) ([]byte, error)
	read   func(m Message) int64 // reads every field, returns a checksum so nothing is optimized away
}{
	{"trade", encTrade, func(m Message) int64 {
		v, _ := m.AsTrade()
		return v.Price().Mant + v.Qty().Mant + int64(v.TradeID()) + int64(v.Side()) + readHeader(m)
	}},
	{"book_delta_10", encDelta10, readBook},
	{"book_snapshot_1000", encSnapshot1000, readBook},
	{"bbo", func(d []byte) ([]byte, error) {
		return AppendBBO(d, &hdr, &BBO{Bid: Level{dec(2712345, -2), dec(150000000, -8)}, Ask: Level{dec(2712346, -2), dec(100000, -8)}, UpdateID: 1010})
	}, func(m Message) int64 {
		v, _ := m.AsBBO()
		b, a := v.Bid(), v.Ask()
		return b.Price.Mant + b.Qty.Mant + a.Price.Mant + a.Qty.Mant + int64(v.UpdateID()) + readHeader(m)
	}},
	{"status", func(d []byte) ([]byte, error) {
		return AppendStatus(d, &hdr, &Status{State: StateConnected, Connections: 1, Instruments: 4, InSync: 4, LastData: 1, Messages: 2})
	}, func(m Message) int64 {
		v, _ := m.AsStatus()
		return int64(v.State()) + int64(v.Connections()) + int64(v.Instruments()) + int64(v.InSync()) + v.LastData() + int64(v.Messages()) + readHeader(m)
	}},
	{"reset", func(d []byte) ([]byte, error) {
		return AppendReset(d, &hdr, &Reset{Reason: ResetGap, LastUpdateID: 1010})
	}, func(m Message) int64 {
		v, _ := m.AsReset()
		return int64(v.Reason()) + int64(v.LastUpdateID()) + readHeader(m)
	}},
}

var (
	benchTrade = Trade{Price: dec(2712345, -2), Qty: dec(100000, -8), TradeID: 3187632211, Side: SideBuy}
	benchDelta = BookDelta{FirstUpdateID: 1001, LastUpdateID: 1010, Bids: levels(5, 2712345, -1), Asks: levels(5, 2712346, 1)}
	benchSnap  = BookSnapshot{UpdateID: 1010, Bids: levels(500, 2712345, -1), Asks: levels(500, 2712346, 1)}
)

func levels(n int, p0, step int64) []Level {
	ls := make([]Level, n)
	for i := range ls {
		ls[i] = Level{Price: dec(p0+step*int64(i), -2), Qty: dec(int64(i+1)*100000, -8)}
	}
	return ls
}

func encTrade(d []byte) ([]byte, error)        { return AppendTrade(d, &hdr, &benchTrade) }
func encDelta10(d []byte) ([]byte, error)      { return AppendBookDelta(d, &hdr, &benchDelta) }
func encSnapshot1000(d []byte) ([]byte, error) { return AppendBookSnapshot(d, &hdr, &benchSnap) }

func readHeader(m Message) int64 {
	return int64(m.Version()) + int64(m.Flags()) + int64(m.Venue()) + int64(m.Seq()) + m.EventTime() + m.RecvTime()
}

func readBook(m Message) int64 {
	v := BookView{m}
	s := int64(v.FirstUpdateID()+v.LastUpdateID()) + readHeader(m)
	for i := range v.NumBids() {
		l := v.Bid(i)
		s += l.Price.Mant + l.Qty.Mant
	}
	for i := range v.NumAsks() {
		l := v.Ask(i)
		s += l.Price.Mant + l.Qty.Mant
	}
	return s
}

var sink int64

func BenchmarkEncode(b *testing.B) {
	for _, bc := range benchCases {
		b.Run("type="+bc.name, func(b *testing.B) {
			buf, _ := bc.encode(nil)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = bc.encode(buf[:0])
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range benchCases {
		b.Run("type="+bc.name, func(b *testing.B) {
			buf, _ := bc.encode(nil)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				m, err := Decode(buf)
				if err != nil {
					b.Fatal(err)
				}
				sink += bc.read(m)
			}
		})
	}
}

func BenchmarkParseUDecimal(b *testing.B) {
	for _, in := range []string{"27123.45", "0.00100000", "27123.45000000", "1234567890.12345678"} {
		b.Run("in="+in, func(b *testing.B) {
			buf := []byte(in)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				d, _ := ParseUDecimal(buf)
				sink += d.Mant
			}
		})
	}
}

func BenchmarkAppendDataSubject(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendDataSubject(buf[:0], "binance", "btcusdt", EventOrderbook)
	}
}

// TestZeroAllocs locks the zero-allocation claim for every encoder and decoder
// on a buffer with room, the way the feed and subscribers use them.
func TestZeroAllocs(t *testing.T) {
	for _, bc := range benchCases {
		buf, err := bc.encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(200, func() { buf, _ = bc.encode(buf[:0]) }); n != 0 {
			t.Errorf("encode %s: %v allocs/op, want 0", bc.name, n)
		}
		if n := testing.AllocsPerRun(200, func() {
			m, _ := Decode(buf)
			sink += bc.read(m)
		}); n != 0 {
			t.Errorf("decode %s: %v allocs/op, want 0", bc.name, n)
		}
	}
}

// TestEncodeIntoDirtyBuffer reuses a buffer full of 0xFF, as the feed reuses
// its buffers: encoders do not zero what they append to, so each must write
// every byte of its message, reserved bytes included.
func TestEncodeIntoDirtyBuffer(t *testing.T) {
	type enc struct {
		name   string
		encode func([]byte) ([]byte, error)
	}
	var all []enc
	for _, bc := range benchCases {
		all = append(all, enc{bc.name, bc.encode})
	}
	for _, v := range vectorTable {
		all = append(all, enc{v.name, v.encode})
	}
	for _, bc := range all {
		clean, err := bc.encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		dirty := make([]byte, 3, len(clean)+3)
		for i := range dirty[:cap(dirty)] {
			dirty[:cap(dirty)][i] = 0xFF
		}
		got, err := bc.encode(dirty)
		if err != nil {
			t.Fatal(err)
		}
		if string(got[3:]) != string(clean) {
			t.Errorf("%s: encoding into a reused buffer differs:\n got % x\nwant % x", bc.name, got[3:], clean)
		}
	}
}

func TestTradeSize(t *testing.T) {
	if TradeSize > 64 {
		t.Fatalf("a Trade is %d bytes on the wire, the budget is 64", TradeSize)
	}
	b, _ := encTrade(nil)
	if len(b) != TradeSize {
		t.Fatalf("encoded Trade is %d bytes, TradeSize says %d", len(b), TradeSize)
	}
}

// TestEncodeErrors checks that encoders refuse what decoders would reject
// and leave dst as it was.
func TestEncodeErrors(t *testing.T) {
	prefix := []byte("keep")
	for _, tc := range []struct {
		name string
		enc  func([]byte) ([]byte, error)
		err  error
	}{
		{"trade exponent", func(d []byte) ([]byte, error) {
			return AppendTrade(d, &hdr, &Trade{Price: dec(1, 19), Qty: dec(1, 0)})
		}, ErrExponent},
		{"book exponent", func(d []byte) ([]byte, error) {
			return AppendBookDelta(d, &hdr, &BookDelta{Bids: []Level{{dec(1, -19), dec(1, 0)}}})
		}, ErrExponent},
		{"book scale", func(d []byte) ([]byte, error) {
			// 9e18 at exponent 0 cannot be rescaled to the other level's -2.
			return AppendBookDelta(d, &hdr, &BookDelta{Bids: []Level{{dec(9_000_000_000_000_000_000, 0), dec(1, 0)}, {dec(1, -2), dec(1, 0)}}})
		}, ErrScale},
		{"book too large", func(d []byte) ([]byte, error) {
			return AppendBookSnapshot(d, &hdr, &BookSnapshot{Bids: make([]Level, MaxLevels+1)})
		}, ErrTooLarge},
		{"bbo scale", func(d []byte) ([]byte, error) {
			return AppendBBO(d, &hdr, &BBO{Bid: Level{dec(9_000_000_000_000_000_000, 0), dec(1, 0)}, Ask: Level{dec(1, -2), dec(1, 0)}})
		}, ErrScale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.enc(prefix)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed on error: %q", out)
			}
		})
	}
}

func TestMaxLevelsRoundTrip(t *testing.T) {
	bids := levels(MaxLevels/2, 100, 1)
	asks := levels(MaxLevels-MaxLevels/2, 100000, 1)
	b, err := AppendBookSnapshot(nil, &hdr, &BookSnapshot{UpdateID: 1, Bids: bids, Asks: asks})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := m.AsBookSnapshot()
	if v.NumBids() != len(bids) || v.NumAsks() != len(asks) || v.Ask(len(asks)-1) != asks[len(asks)-1] {
		t.Fatalf("bids %d asks %d last ask %v", v.NumBids(), v.NumAsks(), v.Ask(len(asks)-1))
	}
}

func TestWrongType(t *testing.T) {
	b, _ := encTrade(nil)
	m, _ := Decode(b)
	if _, err := m.AsBookDelta(); err != ErrWrongType {
		t.Fatalf("AsBookDelta on a trade: %v", err)
	}
	if _, err := m.AsTrade(); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeTrade(b[:10]); err != ErrTruncated {
		t.Fatalf("DecodeTrade truncated: %v", err)
	}
	var zero Message
	if _, err := zero.AsTrade(); err == nil {
		t.Fatal("zero Message accepted as a trade")
	}
	_ = fmt.Sprint(m.Type())
}
