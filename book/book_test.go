package book

import (
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

func d(m int64, e int8) proto.Decimal { return proto.Decimal{Mant: m, Exp: e} }
func l(p, q int64) proto.Level        { return proto.Level{Price: d(p, -2), Qty: d(q, -3)} }

func TestApplyOrdersAndRemoves(t *testing.T) {
	var b Book
	if err := b.Load([]proto.Level{l(100, 1), l(102, 2), l(101, 3)}, []proto.Level{l(105, 1), l(103, 2), l(104, 3)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply([]proto.Level{l(101, 0), l(99, 7), l(98, 0)}, []proto.Level{l(103, 5)}); err != nil {
		t.Fatal(err)
	}
	bids := b.AppendBids(nil, 0)
	asks := b.AppendAsks(nil, 0)
	wantBids := []proto.Level{l(102, 2), l(100, 1), l(99, 7)}
	wantAsks := []proto.Level{l(103, 5), l(104, 3), l(105, 1)}
	if !equal(bids, wantBids) || !equal(asks, wantAsks) {
		t.Fatalf("bids %v asks %v", bids, asks)
	}
	if bb, _ := b.BestBid(); bb != l(102, 2) {
		t.Errorf("best bid %v", bb)
	}
	if ba, _ := b.BestAsk(); ba != l(103, 5) {
		t.Errorf("best ask %v", ba)
	}
	if got := b.AppendBids(nil, 2); len(got) != 2 {
		t.Errorf("depth 2 gave %d levels", len(got))
	}
}

func TestScaleRefinesExactly(t *testing.T) {
	var b Book
	// "27123.4" then "27123.45": the book refines to two decimals.
	if err := b.Load([]proto.Level{{Price: d(271234, -1), Qty: d(1, 0)}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply([]proto.Level{{Price: d(2712345, -2), Qty: d(15, -1)}}, nil); err != nil {
		t.Fatal(err)
	}
	got := b.AppendBids(nil, 0)
	if len(got) != 2 || got[0].Price != d(2712345, -2) || got[1].Price != d(2712340, -2) || got[1].Qty != d(10, -1) {
		t.Fatalf("got %v", got)
	}
	// A coarser value is rescaled onto the book's scale.
	if err := b.Apply([]proto.Level{{Price: d(27124, 0), Qty: d(2, 0)}}, nil); err != nil {
		t.Fatal(err)
	}
	if bb, _ := b.BestBid(); bb.Price != d(2712400, -2) || bb.Qty != d(20, -1) {
		t.Fatalf("best bid %v", bb)
	}
	if err := b.Apply([]proto.Level{{Price: d(9_000_000_000_000_000_000, 0), Qty: d(1, 0)}}, nil); err != ErrScale {
		t.Fatalf("overflowing rescale: %v", err)
	}
	if err := b.Apply([]proto.Level{{Price: d(-1, 0), Qty: d(1, 0)}}, nil); err != ErrNegative {
		t.Fatalf("negative price: %v", err)
	}
}

// TestAgainstMap applies random updates to a Book and to a map and compares.
func TestAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var b Book
	bids, asks := map[int64]int64{}, map[int64]int64{}
	for range 20000 {
		var bl, al []proto.Level
		for range r.IntN(5) {
			p, q := 1000+r.Int64N(100), r.Int64N(4)
			bl = append(bl, l(p, q))
			bids[p] = q
		}
		for range r.IntN(5) {
			p, q := 1100+r.Int64N(100), r.Int64N(4)
			al = append(al, l(p, q))
			asks[p] = q
		}
		if err := b.Apply(bl, al); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := b.AppendBids(nil, 0), fromMap(bids, true); !equal(got, want) {
		t.Fatalf("bids differ: %d vs %d levels", len(got), len(want))
	}
	if got, want := b.AppendAsks(nil, 0), fromMap(asks, false); !equal(got, want) {
		t.Fatalf("asks differ: %d vs %d levels", len(got), len(want))
	}
}

func fromMap(m map[int64]int64, desc bool) []proto.Level {
	var out []proto.Level
	for p, q := range m {
		if q != 0 {
			out = append(out, l(p, q))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if desc {
			return out[i].Price.Mant > out[j].Price.Mant
		}
		return out[i].Price.Mant < out[j].Price.Mant
	})
	return out
}

func equal(a, b []proto.Level) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Price.Cmp(b[i].Price) != 0 || a[i].Qty.Cmp(b[i].Qty) != 0 {
			return false
		}
	}
	return true
}

func TestApplyAllocs(t *testing.T) {
	var b Book
	var bids, asks []proto.Level
	for i := range 1000 {
		bids = append(bids, l(int64(10000-i), 5))
		asks = append(asks, l(int64(10001+i), 5))
	}
	if err := b.Load(bids, asks); err != nil {
		t.Fatal(err)
	}
	upd := []proto.Level{l(10000, 7), l(9990, 0), l(9990, 3)}
	if n := testing.AllocsPerRun(1000, func() { _ = b.Apply(upd, upd[:1]) }); n != 0 {
		t.Fatalf("Apply allocates %v times", n)
	}
}

func BenchmarkApply(b *testing.B) {
	for _, depth := range []int{100, 1000, 5000} {
		b.Run("depth="+strconv.Itoa(depth), func(b *testing.B) {
			var bk Book
			var bids, asks []proto.Level
			for i := range depth {
				bids = append(bids, l(int64(100000-i), 5))
				asks = append(asks, l(int64(100001+i), 5))
			}
			_ = bk.Load(bids, asks)
			// Ten changes near the top, as a 10-level depthUpdate carries.
			upd := make([]proto.Level, 10)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				for k := range upd {
					upd[k] = l(int64(100000-(i+k)%20), int64((i+k)%3))
				}
				_ = bk.Apply(upd[:5], upd[5:])
				i++
			}
		})
	}
}
