package paper

import (
	"fmt"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/book"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/risk"
)

func d(s string) proto.Decimal {
	v, err := proto.ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return v
}

func lv(p, q string) proto.Level { return proto.Level{Price: d(p), Qty: d(q)} }

// testBook: bids 99.00 x1, 98.50 x2; asks 100.00 x0.5, 100.50 x1, 101.00 x3.
func testBook(t *testing.T) *book.Book {
	var b book.Book
	if err := b.Load([]proto.Level{lv("99.00", "1.000"), lv("98.50", "2.000")},
		[]proto.Level{lv("100.00", "0.500"), lv("100.50", "1.000"), lv("101.00", "3.000")}); err != nil {
		t.Fatal(err)
	}
	return &b
}

func fees() []Fees { return []Fees{{Maker: d("0.0002"), Taker: d("0.001")}} }

func fmtFills(fs []Fill) string {
	var parts []string
	for _, f := range fs {
		liq := "T"
		if f.Maker {
			liq = "M"
		}
		parts = append(parts, fmt.Sprintf("#%d %s@%s fee %s %s", f.Order.ID, risk.Dec(f.Qty), f.Price, f.Fee, liq))
	}
	return strings.Join(parts, "; ")
}

func TestSubmit(t *testing.T) {
	for _, c := range []struct {
		name     string
		o        Order
		fills    string
		done     bool
		why      string
		avg      string // notional / filled, checked as notional
		notional string
	}{
		{"market walks levels", Order{ID: 1, Side: risk.Buy, Type: Market, Qty: d("1.2")},
			"#1 0.5@100.00 fee 0.05 T; #1 0.7@100.50 fee 0.07035 T", true, "", "", "120.35"},
		{"market sell", Order{ID: 2, Side: risk.Sell, Type: Market, Qty: d("1.5")},
			"#2 1@99.00 fee 0.099 T; #2 0.5@98.50 fee 0.04925 T", true, "", "", "148.25"},
		{"market beyond liquidity", Order{ID: 3, Side: risk.Buy, Type: Market, Qty: d("5")},
			"#3 0.5@100.00 fee 0.05 T; #3 1@100.50 fee 0.1005 T; #3 3@101.00 fee 0.303 T", true, "no more liquidity", "", "453.5"},
		{"limit crosses partly and rests", Order{ID: 4, Side: risk.Buy, Type: Limit, Price: d("100.50"), Qty: d("2")},
			"#4 0.5@100.00 fee 0.05 T; #4 1@100.50 fee 0.1005 T", false, "", "", "150.5"},
		{"limit ioc", Order{ID: 5, Side: risk.Buy, Type: Limit, TIF: IOC, Price: d("100.00"), Qty: d("2")},
			"#5 0.5@100.00 fee 0.05 T", true, "immediate-or-cancel", "", "50"},
		{"passive limit rests", Order{ID: 6, Side: risk.Sell, Type: Limit, Price: d("99.5"), Qty: d("1")},
			"", false, "", "", "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := New(fees())
			o := c.o
			fs, err := v.Submit(&o, testBook(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := fmtFills(fs); got != c.fills {
				t.Fatalf("fills\n got %s\nwant %s", got, c.fills)
			}
			if o.Done != c.done || !strings.Contains(o.Why, c.why) || o.Notional.String() != c.notional {
				t.Fatalf("done=%v why=%q notional=%s", o.Done, o.Why, o.Notional)
			}
			if resting := len(v.Resting()); resting != map[bool]int{true: 0, false: 1}[c.done] {
				t.Fatalf("%d resting", resting)
			}
		})
	}
}

func TestTakenLiquidityStaysTakenUntilTheLevelChanges(t *testing.T) {
	v := New(fees())
	b := testBook(t)
	o1 := Order{ID: 1, Side: risk.Buy, Type: Market, Qty: d("0.4")}
	o2 := Order{ID: 2, Side: risk.Buy, Type: Market, Qty: d("0.4")}
	v.Submit(&o1, b)
	fs, _ := v.Submit(&o2, b)
	if got := fmtFills(fs); got != "#2 0.1@100.00 fee 0.01 T; #2 0.3@100.50 fee 0.03015 T" {
		t.Fatal(got)
	}
	// The feed updates 100.00: its quantity is what the feed says again.
	v.BookChanged(0, nil, []proto.Level{lv("100.0", "0.5")}, false)
	o3 := Order{ID: 3, Side: risk.Buy, Type: Market, Qty: d("0.6")}
	fs, _ = v.Submit(&o3, b)
	if got := fmtFills(fs); got != "#3 0.5@100.00 fee 0.05 T; #3 0.1@100.50 fee 0.01005 T" {
		t.Fatal(got)
	}
	v.BookChanged(0, nil, nil, true)
	o4 := Order{ID: 4, Side: risk.Buy, Type: Market, Qty: d("1")}
	fs, _ = v.Submit(&o4, b)
	if got := fmtFills(fs); got != "#4 0.5@100.00 fee 0.05 T; #4 0.5@100.50 fee 0.05025 T" {
		t.Fatal(got)
	}
}

func TestRestingFillsOnTradesThrough(t *testing.T) {
	v := New(fees())
	b := testBook(t)
	orders := []*Order{
		{ID: 1, Side: risk.Buy, Type: Limit, Price: d("99.50"), Qty: d("1")},
		{ID: 2, Side: risk.Buy, Type: Limit, Price: d("99.50"), Qty: d("1")},
		{ID: 3, Side: risk.Buy, Type: Limit, Price: d("99.80"), Qty: d("0.5")},
		{ID: 4, Side: risk.Sell, Type: Limit, Price: d("100.20"), Qty: d("1")},
	}
	for _, o := range orders {
		if fs, _ := v.Submit(o, b); len(fs) != 0 {
			t.Fatalf("order %d filled at once", o.ID)
		}
	}
	for _, c := range []struct{ price, qty, fills string }{
		{"99.80", "5", ""}, // at the best price, not through it
		{"99.49", "0.8", "#3 0.5@99.80 fee 0.00998 M; #1 0.3@99.50 fee 0.00597 M"}, // price, then time priority
		{"99.40", "1", "#1 0.7@99.50 fee 0.01393 M; #2 0.3@99.50 fee 0.00597 M"},
		{"100.30", "2", "#4 1@100.20 fee 0.02004 M"},
		{"99.00", "10", "#2 0.7@99.50 fee 0.01393 M"},
		{"90", "10", ""},
	} {
		if got := fmtFills(v.Trade(0, d(c.price), d(c.qty))); got != c.fills {
			t.Fatalf("trade %s x %s:\n got %s\nwant %s", c.price, c.qty, got, c.fills)
		}
	}
	if len(v.Resting()) != 0 {
		t.Fatal("orders still resting")
	}
}

func TestCancel(t *testing.T) {
	v := New(fees())
	o := &Order{ID: 1, Side: risk.Buy, Type: Limit, Price: d("90"), Qty: d("1")}
	v.Submit(o, testBook(t))
	if !v.Cancel(o, "requested") || !o.Done || o.Why != "requested" || v.Cancel(o, "again") {
		t.Fatal("cancel")
	}
	if fs := v.Trade(0, d("1"), d("100")); len(fs) != 0 {
		t.Fatal("cancelled order filled")
	}
}

func TestBadOrders(t *testing.T) {
	v := New(fees())
	for _, o := range []Order{{Inst: 3, Qty: d("1")}, {Qty: d("0"), Type: Market}, {Qty: d("1"), Type: Limit}} {
		if _, err := v.Submit(&o, testBook(t)); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// TestDeterministic replays one order and market sequence twice.
func TestDeterministic(t *testing.T) {
	run := func() string {
		v := New(fees())
		b := testBook(t)
		var out []string
		for i := range 200 {
			side := risk.Side(1 + i%2)
			o := &Order{ID: uint64(i), Side: side, Type: Limit, Price: d(fmt.Sprintf("%d.%02d", 99+i%3, i%100)), Qty: d("0.3")}
			fs, _ := v.Submit(o, b)
			out = append(out, fmtFills(fs))
			out = append(out, fmtFills(v.Trade(0, d(fmt.Sprintf("%d.%02d", 98+i%4, (i*7)%100)), d("0.7"))))
			if i%10 == 0 {
				v.BookChanged(0, nil, nil, true)
			}
		}
		return strings.Join(out, "\n")
	}
	if a, b := run(), run(); a != b {
		t.Fatal("same inputs, different fills")
	}
}
