package risk

import (
	"fmt"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

// benchEngine has n instruments with marks and a position on the first, so
// the check walks the full valuation path.
func benchEngine(tb testing.TB) *Engine {
	e := newEngine(tb, limits())
	e.SetRate("BTC", d("97123.45"), 0, false)
	e.Mark(0, 0, d("97123.45"))
	e.Mark(0, 1, d("0.03612"))
	if _, err := e.Fill(0, Buy, d("0.00500000"), d("97100.00"), Amount{}); err != nil {
		tb.Fatal(err)
	}
	if _, err := e.Fill(1, Buy, d("0.1"), d("0.036"), Amount{}); err != nil {
		tb.Fatal(err)
	}
	return e
}

var sink Rejection

// BenchmarkCheck is the pre-trade check (target <= 100 ns, 0 allocs). The
// subbenchmarks are an accepted order in a USD-like quote, one converted
// from a BTC quote, and one refused by the position limit (the reason is
// built only when asked for, so refusing costs no more).
func BenchmarkCheck(b *testing.B) {
	for _, c := range []struct {
		name string
		o    Order
	}{
		{"case=accept-usdt", Order{0, Buy, d("0.00100000")}},
		{"case=accept-btc-quote", Order{1, Buy, d("0.05")}},
		{"case=reject-position", Order{0, Buy, d("0.01000000")}},
	} {
		b.Run(c.name, func(b *testing.B) {
			e := benchEngine(b)
			b.ReportAllocs()
			for b.Loop() {
				sink = e.Check(1, c.o)
			}
		})
	}
}

// BenchmarkAcceptRelease is an order's whole life in the gate without the
// fill: accept (token and reservation) then release.
func BenchmarkAcceptRelease(b *testing.B) {
	l := limits()
	l.MaxOrderRate = d("1000000")
	e, _ := New(l)
	id, _ := e.AddInstrument(Instrument{"binance", "btcusdt", "USDT"})
	e.Mark(0, id, d("97123.45"))
	o := Order{id, Buy, d("0.001")}
	b.ReportAllocs()
	now := int64(0)
	for b.Loop() {
		now += 1000
		sink = e.Accept(now, o)
		e.Release(id, Buy, o.Qty)
	}
}

// BenchmarkMark is the per-book-update cost: a new mark and the drawdown
// evaluation across n instruments with positions.
func BenchmarkMark(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprint("instruments=", n), func(b *testing.B) {
			e, _ := New(limits())
			for i := range n {
				id, _ := e.AddInstrument(Instrument{"binance", fmt.Sprint("s", i, "usdt"), "USDT"})
				e.Mark(0, id, d("100.00"))
				if _, err := e.Fill(id, Buy, d("1.000"), d("100.00"), Dec(d("0.1"))); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			p := proto.Decimal{Mant: 10000, Exp: -2}
			for i := 0; b.Loop(); i++ {
				p.Mant = 10000 + int64(i%7)
				e.Mark(int64(i), 0, p)
			}
		})
	}
}

func TestCheckAllocs(t *testing.T) {
	e := benchEngine(t)
	for _, o := range []Order{{0, Buy, d("0.001")}, {1, Buy, d("0.05")}, {0, Buy, d("0.01")}, {0, 9, d("1")}} {
		if n := testing.AllocsPerRun(100, func() { sink = e.Check(1, o) }); n != 0 {
			t.Errorf("Check(%v) allocates %.0f times", o, n)
		}
	}
	p := proto.Decimal{Mant: 9700000, Exp: -2}
	if n := testing.AllocsPerRun(100, func() { e.Mark(1, 0, p) }); n != 0 {
		t.Errorf("Mark allocates %.0f times", n)
	}
}
