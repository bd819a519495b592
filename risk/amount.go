package risk

import (
	"math/big"
	"math/bits"
	"strconv"

	"github.com/paddockhq/paddock/proto"
)

// Amount is an exact signed decimal with a 128-bit magnitude: ±mag * 10^exp.
// Positions, cash, PnL and equity are Amounts, so a product of a quantity, a
// price and a rate never rounds. An operation whose result would not fit
// reports ok=false instead of wrapping; callers turn that into a rejection
// (ErrOverflow) rather than guess. It is a value type; copy freely.
type Amount struct {
	hi, lo uint64 // magnitude
	neg    bool   // never set for zero
	exp    int32
}

var pow10u = [...]uint64{
	1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
	1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
}

// Dec converts a proto.Decimal to an Amount.
func Dec(d proto.Decimal) Amount {
	if d.Mant < 0 {
		return Amount{lo: uint64(-(d.Mant + 1)) + 1, neg: true, exp: int32(d.Exp)}
	}
	return Amount{lo: uint64(d.Mant), exp: int32(d.Exp)}
}

// Int returns the Amount v * 10^exp.
func Int(v int64, exp int32) Amount {
	a := Dec(proto.Decimal{Mant: v})
	a.exp = exp
	return a
}

// IsZero reports whether a is zero.
func (a Amount) IsZero() bool { return a.hi|a.lo == 0 }

// Sign returns -1, 0 or +1.
func (a Amount) Sign() int {
	switch {
	case a.IsZero():
		return 0
	case a.neg:
		return -1
	}
	return 1
}

// Neg returns -a.
func (a Amount) Neg() Amount {
	if !a.IsZero() {
		a.neg = !a.neg
	}
	return a
}

// Abs returns |a|.
func (a Amount) Abs() Amount { a.neg = false; return a }

// MulDec returns a*d exactly.
func (a Amount) MulDec(d proto.Decimal) (Amount, bool) {
	m := Dec(d)
	r, ok := mulMag(a, m.lo)
	if !ok {
		return Amount{}, false
	}
	r.exp = a.exp + m.exp
	r.neg = a.neg != m.neg && !r.IsZero()
	return r, true
}

// mulMag multiplies a's magnitude by m, keeping a's sign and exponent.
func mulMag(a Amount, m uint64) (Amount, bool) {
	h1, l1 := bits.Mul64(a.lo, m)
	h2, l2 := bits.Mul64(a.hi, m)
	if h2 != 0 {
		return Amount{}, false
	}
	hi, c := bits.Add64(h1, l2, 0)
	if c != 0 {
		return Amount{}, false
	}
	a.hi, a.lo = hi, l1
	if a.IsZero() {
		a.neg = false
	}
	return a, true
}

// scaleTo returns a at the lower exponent exp (exp <= a.exp) with the same
// value, or ok=false when the magnitude would overflow.
func (a Amount) scaleTo(exp int32) (Amount, bool) {
	if a.IsZero() {
		return Amount{exp: exp}, true
	}
	for d := a.exp - exp; d > 0; {
		k := min(d, 19)
		var ok bool
		if a, ok = mulMag(a, pow10u[k]); !ok {
			return Amount{}, false
		}
		d -= k
	}
	a.exp = exp
	return a, true
}

// align brings a and b to the smaller of their exponents.
func align(a, b Amount) (Amount, Amount, bool) {
	var ok bool
	switch {
	case a.exp > b.exp:
		a, ok = a.scaleTo(b.exp)
	case b.exp > a.exp:
		b, ok = b.scaleTo(a.exp)
	default:
		ok = true
	}
	return a, b, ok
}

func cmpMag(a, b Amount) int {
	switch {
	case a.hi != b.hi:
		if a.hi < b.hi {
			return -1
		}
		return 1
	case a.lo != b.lo:
		if a.lo < b.lo {
			return -1
		}
		return 1
	}
	return 0
}

// Add returns a+b exactly.
func (a Amount) Add(b Amount) (Amount, bool) {
	a, b, ok := align(a, b)
	if !ok {
		return Amount{}, false
	}
	if a.neg == b.neg || a.IsZero() || b.IsZero() {
		neg := a.neg || b.neg
		if a.IsZero() {
			neg = b.neg
		} else if b.IsZero() {
			neg = a.neg
		}
		lo, c := bits.Add64(a.lo, b.lo, 0)
		hi, c := bits.Add64(a.hi, b.hi, c)
		if c != 0 {
			return Amount{}, false
		}
		return Amount{hi: hi, lo: lo, neg: neg && hi|lo != 0, exp: a.exp}, true
	}
	// Opposite signs: subtract the smaller magnitude from the larger.
	if cmpMag(a, b) < 0 {
		a, b = b, a
	}
	lo, br := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, br)
	return Amount{hi: hi, lo: lo, neg: a.neg && hi|lo != 0, exp: a.exp}, true
}

// Sub returns a-b exactly.
func (a Amount) Sub(b Amount) (Amount, bool) { return a.Add(b.Neg()) }

// Cmp compares values: -1, 0 or +1. It never fails: when bringing one side
// to the other's exponent overflows, that side's magnitude is beyond anything
// the other can hold, so its sign decides.
func (a Amount) Cmp(b Amount) int {
	if sa, sb := a.Sign(), b.Sign(); sa != sb {
		if sa < sb {
			return -1
		}
		return 1
	}
	x, y, ok := align(a, b)
	if !ok {
		if a.exp > b.exp { // a could not be scaled: |a| is larger
			return a.Sign()
		}
		return -b.Sign()
	}
	c := cmpMag(x, y)
	if a.neg {
		return -c
	}
	return c
}

// Decimal returns a as a proto.Decimal when it fits exactly, dropping
// trailing zeros first.
func (a Amount) Decimal() (proto.Decimal, bool) {
	for a.exp < proto.MinExp || (a.hi != 0 && a.exp < proto.MaxExp) {
		if q, r := divMag(a, 10); r == 0 {
			a = q
			a.exp++
			continue
		}
		break
	}
	if a.hi != 0 || a.lo > 1<<63-1 || a.exp < proto.MinExp || a.exp > proto.MaxExp {
		return proto.Decimal{}, false
	}
	m := int64(a.lo)
	if a.neg {
		m = -m
	}
	return proto.Decimal{Mant: m, Exp: int8(a.exp)}, true
}

func divMag(a Amount, d uint64) (Amount, uint64) {
	qhi := a.hi / d
	r := a.hi % d
	qlo, r := bits.Div64(r, a.lo, d)
	return Amount{hi: qhi, lo: qlo, neg: a.neg, exp: a.exp}, r
}

// String formats a exactly, with no trailing fractional zeros.
func (a Amount) String() string { return string(a.AppendText(nil, false)) }

// AppendText appends a exactly, without trailing fractional zeros; sep adds
// thousands separators to the integer part ("1,180.5"), for human reasons.
func (a Amount) AppendText(dst []byte, sep bool) []byte {
	// Digits of the magnitude, most significant first; 128 bits is at most
	// 39 digits, and a positive exponent adds zeros.
	var buf [40]byte
	i := len(buf)
	for m := a; m.hi|m.lo != 0; {
		var r uint64
		m, r = divMag(m, 10)
		i--
		buf[i] = byte('0' + r)
	}
	ds := buf[i:]
	nInt := len(ds) + int(a.exp) // digits before the point, counting appended zeros
	if a.neg {
		dst = append(dst, '-')
	}
	if nInt <= 0 || len(ds) == 0 {
		dst = append(dst, '0')
	}
	for j := 0; j < nInt && len(ds) > 0; j++ {
		if sep && j > 0 && (nInt-j)%3 == 0 {
			dst = append(dst, ',')
		}
		if j < len(ds) {
			dst = append(dst, ds[j])
		} else {
			dst = append(dst, '0')
		}
	}
	if nInt >= len(ds) {
		return dst
	}
	frac := ds[max(nInt, 0):]
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if len(frac) == 0 {
		return dst
	}
	dst = append(dst, '.')
	for range -nInt {
		dst = append(dst, '0')
	}
	return append(dst, frac...)
}

// float is for display ratios only (drawdown percentages in messages), never
// for accounting.
func (a Amount) float() float64 {
	f, _ := strconv.ParseFloat(a.String(), 64)
	return f
}

// Rat returns a as a big.Rat, for display arithmetic (averages, ratios).
func (a Amount) Rat() *big.Rat {
	r, _ := new(big.Rat).SetString(a.String())
	return r
}
