package proto

import (
	"errors"
	"math"
	"math/bits"
	"strconv"
)

// Errors returned by the decimal parser. They are sentinels so that the hot path
// never allocates an error value; callers add context when they log.
var (
	ErrDecimalEmpty    = errors.New("proto: empty decimal")
	ErrDecimalSyntax   = errors.New("proto: invalid decimal syntax")
	ErrDecimalSign     = errors.New("proto: sign not allowed in unsigned decimal")
	ErrDecimalOverflow = errors.New("proto: decimal mantissa overflows int64")
	ErrDecimalScale    = errors.New("proto: decimal has more than 18 fractional digits")
)

// Exponent bounds of a Decimal on the wire. Eighteen digits either side keeps
// 10^|exp| inside int64, so any two valid decimals can be compared and rescaled
// with plain integer arithmetic.
const (
	MinExp = -18
	MaxExp = 18
)

// Decimal is an exact decimal number: Mant * 10^Exp. It is a value type with no
// hidden state; copy it freely. Prices and quantities never pass through float64
// anywhere in paddock.
//
// The parser keeps the exchange's scale: "0.00100000" is {100000, -8}, not
// {1, -3}. Two Decimals with different scales may be equal in value; use Cmp,
// not ==, to compare values.
type Decimal struct {
	Mant int64
	Exp  int8
}

var pow10 = [...]int64{
	1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000,
	1_000_000_000, 10_000_000_000, 100_000_000_000, 1_000_000_000_000,
	10_000_000_000_000, 100_000_000_000_000, 1_000_000_000_000_000,
	10_000_000_000_000_000, 100_000_000_000_000_000, 1_000_000_000_000_000_000,
}

// ParseUDecimal parses an unsigned plain decimal such as "27123.45" or
// "0.00100000" from an exchange message. It accepts digits with at most one
// '.', which must have a digit on each side. It rejects signs, exponents
// ("1e-8": no exchange paddock supports sends them, and accepting them would
// make the scale ambiguous), whitespace, more than 18 fractional digits and
// mantissas beyond int64. It does not allocate.
func ParseUDecimal[T ~string | ~[]byte](s T) (Decimal, error) {
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		return Decimal{}, ErrDecimalSign
	}
	return parseDigits(s, false)
}

// ParseDecimal is ParseUDecimal that also accepts one leading '-' (for PnL,
// cash and other signed amounts). A leading '+' is rejected: no producer sends it.
func ParseDecimal[T ~string | ~[]byte](s T) (Decimal, error) {
	if len(s) > 0 && s[0] == '-' {
		return parseDigits(s[1:], true)
	}
	if len(s) > 0 && s[0] == '+' {
		return Decimal{}, ErrDecimalSign
	}
	return parseDigits(s, false)
}

// parseDigits parses the digits after any sign; neg negates the result, which
// lets -9223372036854775808 (whose magnitude is 2^63) through.
//
// The fast path accumulates without overflow checks: 18 decimal digits are
// below 2^63, so only longer inputs take the checked path. Exchange prices and
// quantities are almost always 18 digits or fewer.
func parseDigits[T ~string | ~[]byte](s T, neg bool) (Decimal, error) {
	n := len(s)
	if n == 0 {
		return Decimal{}, ErrDecimalEmpty
	}
	if n > 19 { // 18 digits and a dot
		return parseChecked(s, neg)
	}
	var m uint64
	i := 0
	for ; i < n; i++ {
		c := s[i] - '0'
		if c > 9 {
			break
		}
		m = m*10 + uint64(c)
	}
	if i == 0 {
		return Decimal{}, badChar(s[0])
	}
	exp := 0
	if i < n {
		if s[i] != '.' {
			return Decimal{}, badChar(s[i])
		}
		i++
		start := i
		for ; i < n; i++ {
			c := s[i] - '0'
			if c > 9 {
				return Decimal{}, badChar(s[i])
			}
			m = m*10 + uint64(c)
		}
		exp = start - i
		if exp == 0 {
			return Decimal{}, ErrDecimalSyntax // "1." has no digit after the dot
		}
	} else if n == 19 {
		return parseChecked(s, neg) // 19 digits, no dot: may overflow
	}
	if neg {
		return Decimal{Mant: -int64(m), Exp: int8(exp)}, nil
	}
	return Decimal{Mant: int64(m), Exp: int8(exp)}, nil
}

func badChar(c byte) error {
	if c == '-' || c == '+' {
		return ErrDecimalSign
	}
	return ErrDecimalSyntax
}

// parseChecked is the general parser with overflow and scale checks.
func parseChecked[T ~string | ~[]byte](s T, neg bool) (Decimal, error) {
	var (
		m      uint64
		exp    int
		dot    = -1
		digits int
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if dot >= 0 || digits == 0 {
				return Decimal{}, ErrDecimalSyntax
			}
			dot = i
			continue
		}
		if c < '0' || c > '9' {
			return Decimal{}, badChar(c)
		}
		digits++
		if dot >= 0 {
			exp--
		}
		hi, lo := bits.Mul64(m, 10)
		lo, carry := bits.Add64(lo, uint64(c-'0'), 0)
		if hi != 0 || carry != 0 || lo > 1<<63 {
			return Decimal{}, ErrDecimalOverflow
		}
		m = lo
	}
	if digits == 0 {
		return Decimal{}, ErrDecimalSyntax
	}
	if dot == len(s)-1 {
		return Decimal{}, ErrDecimalSyntax // "1." has no digit after the dot
	}
	if exp < MinExp {
		return Decimal{}, ErrDecimalScale
	}
	if neg {
		return Decimal{Mant: -int64(m), Exp: int8(exp)}, nil // -int64(1<<63) is MinInt64
	}
	if m == 1<<63 {
		return Decimal{}, ErrDecimalOverflow
	}
	return Decimal{Mant: int64(m), Exp: int8(exp)}, nil
}

// IsZero reports whether the value is zero, whatever its scale.
func (d Decimal) IsZero() bool { return d.Mant == 0 }

// Rescale returns d with exponent exp and the same value. ok is false when the
// value cannot be represented exactly at that exponent (it would lose digits or
// overflow int64) or exp is outside [MinExp, MaxExp].
func (d Decimal) Rescale(exp int8) (r Decimal, ok bool) {
	if exp < MinExp || exp > MaxExp || d.Exp < MinExp || d.Exp > MaxExp {
		return Decimal{}, false
	}
	diff := int(d.Exp) - int(exp)
	switch {
	case exp == d.Exp || d.Mant == 0:
		return Decimal{Mant: d.Mant, Exp: exp}, true
	case diff > 18 || diff < -18:
		return Decimal{}, false // 10^|diff| is beyond int64: nothing non-zero fits
	case exp < d.Exp:
		p := pow10[diff]
		hi, lo := bits.Mul64(uint64(abs(d.Mant)), uint64(p))
		if hi != 0 || lo > math.MaxInt64 {
			return Decimal{}, false
		}
		m := int64(lo)
		if d.Mant < 0 {
			m = -m
		}
		return Decimal{Mant: m, Exp: exp}, true
	default:
		p := pow10[-diff]
		if d.Mant%p != 0 {
			return Decimal{}, false
		}
		return Decimal{Mant: d.Mant / p, Exp: exp}, true
	}
}

// Cmp compares the values of d and o (not their representation): -1, 0 or +1.
// It is exact for every pair of decimals with exponents in [MinExp, MaxExp].
func (d Decimal) Cmp(o Decimal) int {
	if d.Exp == o.Exp {
		return cmpInt(d.Mant, o.Mant)
	}
	// Bring the one with the larger exponent down to the smaller exponent. If
	// that overflows, its magnitude exceeds anything representable at the
	// smaller exponent, so its sign decides.
	if d.Exp > o.Exp {
		if r, ok := d.Rescale(o.Exp); ok {
			return cmpInt(r.Mant, o.Mant)
		}
		return sign(d.Mant)
	}
	if r, ok := o.Rescale(d.Exp); ok {
		return cmpInt(d.Mant, r.Mant)
	}
	return -sign(o.Mant)
}

// String formats the decimal with exactly -Exp fractional digits, so that
// ParseDecimal(d.String()) == d for every d with Exp <= 0.
func (d Decimal) String() string { return string(d.AppendText(nil)) }

// AppendText appends the String form to dst. It does not allocate when dst has
// room (29 bytes always suffice).
func (d Decimal) AppendText(dst []byte) []byte {
	if d.Exp >= 0 {
		dst = strconv.AppendInt(dst, d.Mant, 10)
		for range int(d.Exp) {
			dst = append(dst, '0')
		}
		return dst
	}
	u := uint64(d.Mant)
	if d.Mant < 0 {
		dst = append(dst, '-')
		u = uint64(-d.Mant) // correct for MinInt64 too, in two's complement
	}
	var buf [40]byte
	digits := strconv.AppendUint(buf[:0], u, 10)
	frac := int(-d.Exp)
	if len(digits) <= frac {
		dst = append(dst, '0', '.')
		for range frac - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[:len(digits)-frac]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-frac:]...)
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sign(v int64) int { return cmpInt(v, 0) }
