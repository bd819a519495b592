package proto

import (
	"errors"
	"math"
	"testing"
)

func TestParseUDecimal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Decimal
		err  error
	}{
		{"0", dec(0, 0), nil},
		{"27123.45", dec(2712345, -2), nil},
		{"0.00100000", dec(100000, -8), nil}, // the exchange's scale is kept
		{"000123", dec(123, 0), nil},
		{"1.000000000000000000", dec(1_000_000_000_000_000_000, -18), nil},
		{"9223372036854775807", dec(math.MaxInt64, 0), nil},
		{"922337203.6854775807", dec(math.MaxInt64, -10), nil},
		{"0.000000000000000001", dec(1, -18), nil},
		{"9223372036854775808", Decimal{}, ErrDecimalOverflow},
		{"99999999999999999999", Decimal{}, ErrDecimalOverflow},
		{"0.0000000000000000001", Decimal{}, ErrDecimalScale},
		{"", Decimal{}, ErrDecimalEmpty},
		{".", Decimal{}, ErrDecimalSyntax},
		{".5", Decimal{}, ErrDecimalSyntax},
		{"5.", Decimal{}, ErrDecimalSyntax},
		{"1.2.3", Decimal{}, ErrDecimalSyntax},
		{"1e-8", Decimal{}, ErrDecimalSyntax},
		{"1E8", Decimal{}, ErrDecimalSyntax},
		{" 1", Decimal{}, ErrDecimalSyntax},
		{"1 ", Decimal{}, ErrDecimalSyntax},
		{"0x10", Decimal{}, ErrDecimalSyntax},
		{"NaN", Decimal{}, ErrDecimalSyntax},
		{"-1", Decimal{}, ErrDecimalSign},
		{"+1", Decimal{}, ErrDecimalSign},
		{"1-", Decimal{}, ErrDecimalSign},
		{"１", Decimal{}, ErrDecimalSyntax}, // full-width digit
	} {
		got, err := ParseUDecimal(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("ParseUDecimal(%q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
		// The []byte instantiation must agree with the string one.
		gotB, errB := ParseUDecimal([]byte(tc.in))
		if gotB != got || errB != err {
			t.Errorf("ParseUDecimal([]byte(%q)) = %v, %v; string form gave %v, %v", tc.in, gotB, errB, got, err)
		}
	}
}

func TestParseDecimalSigned(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Decimal
		err  error
	}{
		{"-27123.45", dec(-2712345, -2), nil},
		{"-0", dec(0, 0), nil},
		{"-9223372036854775808", dec(math.MinInt64, 0), nil},
		{"-9223372036854775809", Decimal{}, ErrDecimalOverflow},
		{"9223372036854775808", Decimal{}, ErrDecimalOverflow},
		{"-", Decimal{}, ErrDecimalEmpty},
		{"--1", Decimal{}, ErrDecimalSign},
		{"+1", Decimal{}, ErrDecimalSign},
		{"-.5", Decimal{}, ErrDecimalSyntax},
	} {
		got, err := ParseDecimal(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("ParseDecimal(%q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestDecimalString(t *testing.T) {
	for _, tc := range []struct {
		d    Decimal
		want string
	}{
		{dec(2712345, -2), "27123.45"},
		{dec(100000, -8), "0.00100000"},
		{dec(-5, -3), "-0.005"},
		{dec(0, -2), "0.00"},
		{dec(5, 2), "500"},
		{dec(math.MinInt64, -1), "-922337203685477580.8"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestDecimalCmpRescale(t *testing.T) {
	for _, tc := range []struct {
		a, b Decimal
		cmp  int
	}{
		{dec(100000, -8), dec(1, -3), 0},
		{dec(1, -3), dec(100000, -8), 0},
		{dec(2712345, -2), dec(2712346, -2), -1},
		{dec(1, 18), dec(math.MaxInt64, -18), 1}, // rescale overflows; magnitude decides
		{dec(-1, 18), dec(math.MaxInt64, -18), -1},
		{dec(math.MaxInt64, -18), dec(-1, 18), 1},
		{dec(0, 18), dec(0, -18), 0},
		{dec(-1, 0), dec(0, 0), -1},
	} {
		if got := tc.a.Cmp(tc.b); got != tc.cmp {
			t.Errorf("%v.Cmp(%v) = %d, want %d", tc.a, tc.b, got, tc.cmp)
		}
	}
	for _, tc := range []struct {
		d    Decimal
		exp  int8
		want Decimal
		ok   bool
	}{
		{dec(15, -1), -3, dec(1500, -3), true},
		{dec(1500, -3), -1, dec(15, -1), true},
		{dec(1501, -3), -1, Decimal{}, false}, // would lose a digit
		{dec(math.MaxInt64, 0), -1, Decimal{}, false},
		{dec(-7, 0), -2, dec(-700, -2), true},
		{dec(1, 18), -18, Decimal{}, false}, // 36 orders of magnitude
		{dec(0, 18), -18, dec(0, -18), true},
		{dec(1, 0), 19, Decimal{}, false},
	} {
		got, ok := tc.d.Rescale(tc.exp)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%v.Rescale(%d) = %v, %v; want %v, %v", tc.d, tc.exp, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseUDecimalAllocs(t *testing.T) {
	in := []byte("27123.45000000")
	if n := testing.AllocsPerRun(1000, func() { _, _ = ParseUDecimal(in) }); n != 0 {
		t.Fatalf("ParseUDecimal allocates %v times per call, want 0", n)
	}
	bad := []byte("27123.45e3")
	if n := testing.AllocsPerRun(1000, func() { _, _ = ParseUDecimal(bad) }); n != 0 {
		t.Fatalf("ParseUDecimal on bad input allocates %v times per call, want 0", n)
	}
}

// FuzzParseDecimal checks that the parser never panics and that whatever it
// accepts formats back to the same text and value.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"0", "27123.45", "0.00100000", "-1", "1e-8", "9223372036854775808", ".5", "5.", "0.000000000000000001", "1234567890123456789", "0.12345678901234567"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The fast path must agree with the fully checked parser everywhere.
		for _, neg := range []bool{false, true} {
			fd, ferr := parseDigits(s, neg)
			cd, cerr := parseChecked(s, neg)
			if fd != cd || (ferr == nil) != (cerr == nil) {
				t.Fatalf("%q neg=%v: fast %v, %v; checked %v, %v", s, neg, fd, ferr, cd, cerr)
			}
		}
		d, err := ParseDecimal(s)
		if err != nil {
			return
		}
		again, err := ParseDecimal(d.String())
		if err != nil || again != d {
			t.Fatalf("%q parsed to %#v, whose String %q parses to %#v, %v", s, d, d.String(), again, err)
		}
		if d.Exp > 0 || d.Exp < MinExp {
			t.Fatalf("%q parsed to exponent %d", s, d.Exp)
		}
	})
}
