package risk

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

func d(s string) proto.Decimal {
	v, err := proto.ParseDecimal(s)
	if err != nil {
		panic(s + ": " + err.Error())
	}
	return v
}

func TestAmountText(t *testing.T) {
	for _, c := range []struct {
		a    Amount
		sep  bool
		want string
	}{
		{Amount{}, false, "0"},
		{Dec(d("1180.00000")), true, "1,180"},
		{Dec(d("-1234567.891")), true, "-1,234,567.891"},
		{Dec(d("0.00012300")), false, "0.000123"},
		{Int(12, 3), true, "12,000"},
		{Int(-5, -1), false, "-0.5"},
		{Dec(d("999")), true, "999"},
		{Dec(d("1000")), true, "1,000"},
	} {
		if got := string(c.a.AppendText(nil, c.sep)); got != c.want {
			t.Errorf("AppendText(%+v, %v) = %q, want %q", c.a, c.sep, got, c.want)
		}
	}
}

func rat(a Amount) *big.Rat {
	r, ok := new(big.Rat).SetString(a.String())
	if !ok {
		panic(a.String())
	}
	return r
}

// TestAmountArithmetic checks Add, Sub, MulDec and Cmp against math/big on
// random decimals of every scale, including overflow reporting.
func TestAmountArithmetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randDec := func() proto.Decimal {
		m := rng.Int64N(1_000_000_000_000) - 500_000_000_000
		if rng.IntN(10) == 0 {
			m = rng.Int64() - rng.Int64()
		}
		return proto.Decimal{Mant: m, Exp: int8(rng.IntN(19) - 12)}
	}
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	fits := func(r *big.Rat, exp int32) bool {
		// r * 10^-exp must be an integer below 2^128 in magnitude.
		s := new(big.Rat).Mul(r, new(big.Rat).SetFrac(pow(-exp), big.NewInt(1)))
		if exp > 0 {
			s = new(big.Rat).Quo(r, new(big.Rat).SetFrac(pow(exp), big.NewInt(1)))
		}
		return s.IsInt() && new(big.Int).Abs(s.Num()).Cmp(limit) < 0
	}
	for range 20000 {
		x, y, z := randDec(), randDec(), randDec()
		a, ok := Dec(x).MulDec(y)
		if !ok {
			t.Fatalf("%s*%s overflowed", x, y)
		}
		ra := new(big.Rat).Mul(rat(Dec(x)), rat(Dec(y)))
		if rat(a).Cmp(ra) != 0 {
			t.Fatalf("%s*%s = %s", x, y, a)
		}
		b := Dec(z)
		sum, ok := a.Add(b)
		want := new(big.Rat).Add(ra, rat(b))
		if ok && rat(sum).Cmp(want) != 0 {
			t.Fatalf("%s+%s = %s, want %s", a, b, sum, want.FloatString(30))
		}
		if !ok && fits(want, min(a.exp, b.exp)) {
			t.Fatalf("%s+%s reported overflow", a, b)
		}
		diff, ok := a.Sub(b)
		if ok && rat(diff).Cmp(new(big.Rat).Sub(ra, rat(b))) != 0 {
			t.Fatalf("%s-%s = %s", a, b, diff)
		}
		if got, want := a.Cmp(b), ra.Cmp(rat(b)); got != want {
			t.Fatalf("Cmp(%s, %s) = %d, want %d", a, b, got, want)
		}
		if dd, ok := a.Decimal(); ok && rat(Dec(dd)).Cmp(ra) != 0 {
			t.Fatalf("Decimal(%s) = %s", a, dd)
		}
	}
}

func pow(e int32) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(e, 0))), nil)
}

func TestAmountOverflowIsReported(t *testing.T) {
	big := Dec(proto.Decimal{Mant: 1<<63 - 1})
	a, ok := big.MulDec(proto.Decimal{Mant: 1<<63 - 1})
	if !ok {
		t.Fatal("2^126 should fit")
	}
	if _, ok := a.MulDec(proto.Decimal{Mant: 5}); ok {
		t.Fatal("5 * 2^126 must overflow")
	}
	b, ok := a.MulDec(proto.Decimal{Mant: 4})
	if !ok {
		t.Fatal("just under 2^128 should fit")
	}
	if _, ok := b.Add(b); ok {
		t.Fatal("2^129 must overflow")
	}
	if _, ok := b.Sub(b.Neg()); ok {
		t.Fatal("2^129 must overflow")
	}
	// Cmp resolves even when alignment overflows.
	tiny := Dec(proto.Decimal{Mant: 1, Exp: -18})
	if a.Cmp(tiny) != 1 || tiny.Cmp(a) != -1 || a.Neg().Cmp(tiny) != -1 {
		t.Fatal("Cmp across unalignable exponents")
	}
}
