package risk

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const sec = int64(time.Second)

func limits() Limits {
	return Limits{MaxPositionUSD: d("1000"), MaxDrawdownPct: d("5"), MaxOrderRate: d("10"),
		StartingEquityUSD: d("10000"), MaxMarkAge: 10 * time.Second}
}

// newEngine has binance:btcusdt (id 0, USDT) and binance:ethbtc (id 1, BTC).
func newEngine(t testing.TB, l Limits) *Engine {
	t.Helper()
	e, err := New(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []Instrument{{"binance", "btcusdt", "USDT"}, {"binance", "ethbtc", "BTC"}} {
		if _, err := e.AddInstrument(in); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func TestNewRejectsBadLimits(t *testing.T) {
	for name, mut := range map[string]func(*Limits){
		"position zero":    func(l *Limits) { l.MaxPositionUSD = d("0") },
		"drawdown over":    func(l *Limits) { l.MaxDrawdownPct = d("100.5") },
		"drawdown neg":     func(l *Limits) { l.MaxDrawdownPct = d("-1") },
		"rate zero":        func(l *Limits) { l.MaxOrderRate = d("0") },
		"rate too precise": func(l *Limits) { l.MaxOrderRate = d("0.0000001") },
		"equity zero":      func(l *Limits) { l.StartingEquityUSD = d("0") },
	} {
		l := limits()
		mut(&l)
		if _, err := New(l); !errors.Is(err, ErrLimits) {
			t.Errorf("%s: err = %v, want ErrLimits", name, err)
		}
	}
}

func TestQuoteOf(t *testing.T) {
	for in, want := range map[string]string{"BTC/USDT": "USDT", "BTCUSDT": "USDT", "ETHBTC": "BTC",
		"btcfdusd": "FDUSD", "SOL/EUR": "EUR", "XYZ": "", "USDT": ""} {
		if got, _ := QuoteOf(in); got != want {
			t.Errorf("QuoteOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCheck is one row per rule and edge.
func TestCheck(t *testing.T) {
	type step func(e *Engine)
	mark := func(id InstrumentID, p string, at int64) step {
		return func(e *Engine) { e.Mark(at, id, d(p)) }
	}
	fill := func(id InstrumentID, s Side, q, p string) step {
		return func(e *Engine) {
			if _, err := e.Fill(id, s, d(q), d(p), Amount{}); err != nil {
				panic(err)
			}
		}
	}
	accept := func(id InstrumentID, s Side, q string) step {
		return func(e *Engine) {
			if r := e.Accept(0, Order{id, s, d(q)}); !r.OK() {
				panic(r.Error())
			}
		}
	}
	for _, c := range []struct {
		name  string
		setup []step
		now   int64
		o     Order
		want  Code
		text  string // substring of the reason
	}{
		{"no mark", nil, 0, Order{0, Buy, d("0.001")}, RejectNoMark, "no mark price yet for binance:btcusdt"},
		{"under limit", []step{mark(0, "100000", 0)}, 0, Order{0, Buy, d("0.009")}, Accepted, ""},
		{"exactly at limit", []step{mark(0, "100000", 0)}, 0, Order{0, Buy, d("0.01")}, Accepted, ""},
		{"over limit", []step{mark(0, "100000", 0)}, 0, Order{0, Buy, d("0.0118")}, RejectPosition,
			"position 1,180 USD would exceed max_position_usd 1,000 on binance:btcusdt"},
		{"short over limit", []step{mark(0, "100000", 0)}, 0, Order{0, Sell, d("0.01000001")}, RejectPosition, "1,000.001 USD"},
		{"open orders count", []step{mark(0, "100000", 0), accept(0, Buy, "0.006")}, 0, Order{0, Buy, d("0.005")}, RejectPosition, "1,100 USD"},
		{"opposite open orders do not count", []step{mark(0, "100000", 0), accept(0, Sell, "0.01")}, 0, Order{0, Buy, d("0.01")}, Accepted, ""},
		{"reducing over limit allowed", []step{mark(0, "100", 0), fill(0, Buy, "5", "100"), mark(0, "300", 0)}, 0,
			Order{0, Sell, d("1")}, Accepted, ""},
		{"flip beyond limit refused", []step{mark(0, "100", 0), fill(0, Buy, "5", "100")}, 0,
			Order{0, Sell, d("16")}, RejectPosition, "1,100 USD"},
		{"flip within limit", []step{mark(0, "100", 0), fill(0, Buy, "5", "100")}, 0, Order{0, Sell, d("15")}, Accepted, ""},
		{"stale mark", []step{mark(0, "100000", 0)}, 11 * sec, Order{0, Buy, d("0.001")}, RejectStaleMark, "stale (11s old)"},
		{"mark exactly max age", []step{mark(0, "100000", 0)}, 10 * sec, Order{0, Buy, d("0.001")}, Accepted, ""},
		{"stale mark, reducing", []step{mark(0, "100", 0), fill(0, Buy, "1", "100")}, 60 * sec, Order{0, Sell, d("1")}, Accepted, ""},
		{"no rate for BTC quote", []step{mark(1, "0.05", 0)}, 0, Order{1, Buy, d("1")}, RejectNoRate, "no current USD rate for BTC, the quote currency of binance:ethbtc"},
		{"configured rate", []step{mark(1, "0.05", 60*sec), func(e *Engine) { e.SetRate("BTC", d("100000"), 0, false) }},
			60 * sec, Order{1, Buy, d("0.2")}, Accepted, ""},
		{"rate converts", []step{mark(1, "0.05", 0), func(e *Engine) { e.SetRate("BTC", d("100000"), 0, false) }},
			0, Order{1, Buy, d("0.21")}, RejectPosition, "position 1,050 USD"},
		{"stale feed rate", []step{mark(1, "0.05", 20*sec), func(e *Engine) { e.SetRate("btc", d("100000"), 0, true) }},
			20 * sec, Order{1, Buy, d("0.1")}, RejectNoRate, "BTC"},
		{"halted", []step{mark(0, "100000", 0), func(e *Engine) { e.Halt("admin halt") }}, 0, Order{0, Sell, d("0.001")}, RejectHalted, "admin halt"},
		{"venue down", []step{mark(0, "100000", 0), func(e *Engine) { e.SetVenueHealth("binance", false, "feed disconnected") }},
			0, Order{0, Sell, d("0.001")}, RejectVenue, "market data for binance is unhealthy (feed disconnected)"},
		{"zero qty", nil, 0, Order{0, Buy, d("0")}, RejectInvalid, "quantity"},
		{"bad side", nil, 0, Order{0, 7, d("1")}, RejectInvalid, "side"},
		{"unknown instrument", nil, 0, Order{9, Buy, d("1")}, RejectInvalid, "unknown instrument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, limits())
			for _, s := range c.setup {
				s(e)
			}
			r := e.Check(c.now, c.o)
			if r.Code != c.want || !strings.Contains(r.Error(), c.text) {
				t.Fatalf("Check = %v %q, want %v containing %q", r.Code, r.Error(), c.want, c.text)
			}
		})
	}
}

func TestOrderRate(t *testing.T) {
	l := limits()
	l.MaxOrderRate = d("2.5") // burst 3, one token every 400ms
	e := newEngine(t, l)
	e.Mark(0, 0, d("100"))
	o := Order{0, Buy, d("0.01")}
	at := func(ms int64) Code {
		r := e.Accept(ms*int64(time.Millisecond), o)
		if r.OK() {
			e.Release(0, Buy, o.Qty)
		}
		return r.Code
	}
	for i, c := range []struct {
		ms   int64
		want Code
	}{{0, Accepted}, {0, Accepted}, {0, Accepted}, {0, RejectOrderRate}, {399, RejectOrderRate},
		{400, Accepted}, {400, RejectOrderRate}, {799, RejectOrderRate}, {800, Accepted}, {5000, Accepted},
		{5000, Accepted}, {5000, Accepted}, {5000, RejectOrderRate}} {
		if got := at(c.ms); got != c.want {
			t.Fatalf("step %d at %dms: %v, want %v", i, c.ms, got, c.want)
		}
	}
	if r := e.Check(5000*int64(time.Millisecond), o); !strings.Contains(r.Error(), "max_order_rate 2.5 per second") {
		t.Fatal(r.Error())
	}
	// Rejected orders spend no token.
	e2 := newEngine(t, limits())
	for range 50 {
		e2.Accept(0, Order{0, Buy, d("1")}) // no mark: rejected
	}
	e2.Mark(0, 0, d("100"))
	if r := e2.Accept(0, Order{0, Buy, d("1")}); !r.OK() {
		t.Fatal(r.Error())
	}
}

func TestAccounting(t *testing.T) {
	e := newEngine(t, limits())
	fee := func(s string) Amount { return Dec(d(s)) }
	steps := []struct {
		side                Side
		qty, price, fee     string
		pos, realized, cost string
	}{
		{Buy, "2", "100", "0.2", "2", "0", "200"},
		{Buy, "1", "130", "0.13", "3", "0", "330"},
		{Sell, "2.5", "120", "0.3", "0.5", "35", "65"}, // 2x(120-100) + 0.5x(120-130)
		{Sell, "1.5", "110", "0.165", "-1", "25", "-110"},
		{Buy, "1", "90", "0.09", "0", "45", "0"},
	}
	for i, s := range steps {
		if _, err := e.Fill(0, s.side, d(s.qty), d(s.price), fee(s.fee)); err != nil {
			t.Fatal(err)
		}
		p := e.Position(0)
		if p.Qty.Cmp(Dec(d(s.pos))) != 0 || p.Realized.Cmp(Dec(d(s.realized))) != 0 || e.inst[0].cost.Cmp(Dec(d(s.cost))) != 0 {
			t.Fatalf("step %d: pos %s realized %s cost %s, want %s %s %s", i, p.Qty, p.Realized, e.inst[0].cost, s.pos, s.realized, s.cost)
		}
	}
	a := e.Account()
	// 10000 + 45 realized - 0.885 fees; the peak was after the second fill,
	// valued at the last price: 10000 + 3x130 - 330 - 0.33.
	if a.Equity.String() != "10044.115" || a.Peak.String() != "10059.67" {
		t.Fatalf("equity %s peak %s", a.Equity, a.Peak)
	}
}

func TestDrawdownHaltsAndResume(t *testing.T) {
	e := newEngine(t, limits()) // 10,000 USD, 5%
	e.Mark(0, 0, d("100"))
	if e.Accept(0, Order{0, Buy, d("10")}).Code != Accepted {
		t.Fatal("buy refused")
	}
	if h, _ := e.Fill(0, Buy, d("10"), d("100"), Amount{}); h {
		t.Fatal("halted on fill")
	}
	if e.Mark(0, 0, d("120")) { // +200: peak 10,200
		t.Fatal("halted on gain")
	}
	if e.Mark(0, 0, d("69.01")) { // 10,200 - 509.9 = 9,690.1: 4.999%
		t.Fatal("halted before the limit")
	}
	if !e.Mark(0, 0, d("69")) { // exactly 5% below 10,200
		t.Fatal("no halt at exactly max_drawdown_pct")
	}
	halted, why := e.Halted()
	if !halted || !strings.Contains(why, "drawdown 5.00% from peak equity 10,200 USD to 9,690 USD reached max_drawdown_pct 5") {
		t.Fatalf("halt reason %q", why)
	}
	if e.Mark(0, 0, d("10")) {
		t.Fatal("halted twice")
	}
	if r := e.Check(0, Order{0, Sell, d("1")}); r.Code != RejectHalted {
		t.Fatalf("halted engine accepted: %v", r.Code)
	}
	e.Mark(0, 0, d("69"))
	e.Resume()
	if r := e.Check(0, Order{0, Sell, d("1")}); !r.OK() {
		t.Fatal(r.Error())
	}
	if e.Mark(0, 0, d("68")) { // 1% below the new peak
		t.Fatal("halted again right after resume")
	}
}

func TestFillErrors(t *testing.T) {
	e := newEngine(t, limits())
	for _, c := range []struct {
		id   InstrumentID
		s    Side
		q, p string
	}{{5, Buy, "1", "1"}, {0, 0, "1", "1"}, {0, Buy, "0", "1"}, {0, Buy, "1", "-1"}} {
		if _, err := e.Fill(c.id, c.s, d(c.q), d(c.p), Amount{}); err == nil {
			t.Errorf("Fill(%v) accepted", c)
		}
	}
}
