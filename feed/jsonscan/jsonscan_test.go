package jsonscan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

func TestScanValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind byte
		num  uint64
		err  error
	}{
		{`"abc"`, '"', 0, nil},
		{`"a\"b"`, '\\', 0, nil},
		{`0`, '0', 0, nil},
		{`1700000000123`, '0', 1700000000123, nil},
		{`18446744073709551615`, '0', 1<<64 - 1, nil},
		{`18446744073709551616`, 'n', 0, nil},
		{`-5`, 'n', 0, nil},
		{`1.5e-3`, 'n', 0, nil},
		{`true`, 't', 0, nil},
		{`false`, 'f', 0, nil},
		{`null`, 'x', 0, nil},
		{`[1,{"a":[2]}]`, 'x', 0, nil},
		{`"unterminated`, 0, 0, ErrSyntax},
		{`1.`, 0, 0, ErrSyntax},
		{`tru`, 0, 0, ErrSyntax},
		{`[1,2`, 0, 0, ErrSyntax},
		{`"\u12"`, 0, 0, ErrSyntax},
		{strings.Repeat("[", 40) + strings.Repeat("]", 40), 0, 0, ErrNesting},
	} {
		sc := Scanner{B: []byte(tc.in)}
		var v Value
		err := sc.ScanValue(0, &v)
		switch {
		case tc.err != nil:
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: %v, want %v", tc.in, err, tc.err)
			}
		case err != nil || v.Kind != tc.kind || v.Num != tc.num || sc.I != len(tc.in):
			t.Errorf("%s: kind %q num %d at %d, %v", tc.in, v.Kind, v.Num, sc.I, err)
		}
	}
}

func TestLevels(t *testing.T) {
	d := func(s string) proto.Decimal { x, _ := proto.ParseUDecimal(s); return x }
	for _, tc := range []struct {
		in   string
		want []proto.Level
		err  error
	}{
		{`[]`, nil, nil},
		{`[["27123.45","0.001"],["27123.40","2"]]`, []proto.Level{{Price: d("27123.45"), Qty: d("0.001")}, {Price: d("27123.40"), Qty: d("2")}}, nil},
		{`[ [ "1.5" , "2" ] ]`, []proto.Level{{Price: d("1.5"), Qty: d("2")}}, nil}, // the loose path
		{`[["1","2","3"]]`, nil, ErrLevels},
		{`[["1"]]`, nil, ErrLevels},
		{`[["-1","2"]]`, nil, proto.ErrDecimalSign},
		{`[["1e5","2"]]`, nil, proto.ErrDecimalSyntax},
		{`{"a":1}`, nil, ErrLevels},
	} {
		sc := Scanner{B: []byte(tc.in)}
		got, err := Levels(&sc, nil)
		switch {
		case tc.err != nil:
			if err == nil {
				t.Errorf("%s: accepted %v", tc.in, got)
			}
		case err != nil || len(got) != len(tc.want):
			t.Errorf("%s: %v %v", tc.in, got, err)
		default:
			for i := range got {
				if got[i].Price.Cmp(tc.want[i].Price) != 0 || got[i].Qty.Cmp(tc.want[i].Qty) != 0 {
					t.Errorf("%s: level %d %v, want %v", tc.in, i, got[i], tc.want[i])
				}
			}
		}
	}
	// More levels than one message carries is refused, not truncated.
	many := "[" + strings.Repeat(`["1","1"],`, proto.MaxLevels) + `["1","1"]]`
	if _, err := Levels(&Scanner{B: []byte(many)}, nil); !errors.Is(err, ErrTooManyLevel) {
		t.Errorf("%d levels: %v", proto.MaxLevels+1, err)
	}
}

const depth10 = `[["27123.45","0.00100000"],["27123.44","1.20000000"],["27123.43","0.50000000"],["27123.42","3.00000000"],["27123.41","0.01000000"],["27123.40","2.50000000"],["27123.39","0.75000000"],["27123.38","1.00000000"],["27123.37","0.20000000"],["27123.36","4.00000000"]]`

// TestLevelsAllocs locks the level parser (the depth hot path) at zero
// allocations into a reused slice.
func TestLevelsAllocs(t *testing.T) {
	dst := make([]proto.Level, 0, 16)
	b := []byte(depth10)
	if n := testing.AllocsPerRun(1000, func() {
		sc := Scanner{B: b}
		var err error
		if dst, err = Levels(&sc, dst[:0]); err != nil || len(dst) != 10 {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per parse, want 0", n)
	}
}

func BenchmarkLevels(b *testing.B) {
	dst := make([]proto.Level, 0, 16)
	in := []byte(depth10)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		sc := Scanner{B: in}
		dst, _ = Levels(&sc, dst[:0])
	}
}

// FuzzSkip: Skip accepts exactly what encoding/json calls valid (within
// MaxDepth), never panics, and stops at the end of the value it accepted.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{`{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.0","q":"2","m":true}`, `[1,2,[3]]`, `"x"`, `-0.5e+3`,
		`{"a":{"b":null}}`, `[`, `{"a"}`, `"\ud800"`, `01`, depth10} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sc := Scanner{B: b}
		sc.WS()
		err := sc.Skip(0)
		sc.WS()
		ours := err == nil && sc.I == len(b)
		theirs := json.Valid(b)
		if ours && !theirs {
			t.Fatalf("Skip accepted invalid JSON %q", b)
		}
		if theirs && !ours && !errors.Is(err, ErrNesting) && err != nil {
			t.Fatalf("Skip refused valid JSON %q: %v", b, err)
		}
	})
}

// TestPlainEnd agrees with the byte-at-a-time definition at every offset,
// for every byte value placed anywhere in a word.
func TestPlainEnd(t *testing.T) {
	slow := func(b []byte, i int) int {
		for i < len(b) && Plain[b[i]] {
			i++
		}
		return i
	}
	base := []byte(`abcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJ`)
	for c := 0; c < 256; c++ {
		for pos := 0; pos < len(base); pos++ {
			b := append([]byte(nil), base...)
			b[pos] = byte(c)
			for i := 0; i <= len(b); i++ {
				if got, want := PlainEnd(b, i), slow(b, i); got != want {
					t.Fatalf("byte %#x at %d, from %d: %d, want %d", c, pos, i, got, want)
				}
			}
		}
	}
}
