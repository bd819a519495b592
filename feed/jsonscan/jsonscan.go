// Package jsonscan is an allocation-free JSON scanner for exchange frames:
// it walks a document without building anything, validates what it skips
// (strings, numbers, literals, nesting), decodes unsigned integers on the
// way (eight digits at a time) and parses [["price","qty"],...] price
// levels into exact decimals. It is venue-neutral: every venue's parser in
// feed/ builds on it. A Scanner is used by one goroutine at a time and holds
// no memory of its own: B is the caller's, and results point into it.
package jsonscan

import (
	"encoding/binary"
	"errors"
	"math/bits"

	"github.com/paddockhq/paddock/proto"
)

// Errors. Their texts are the reasons feed metrics count parse errors by.
var (
	ErrSyntax       = errors.New("malformed JSON")
	ErrNesting      = errors.New("JSON nested too deeply")
	ErrEscape       = errors.New("escaped string where a plain one is expected")
	ErrLevels       = errors.New("malformed price level")
	ErrTooManyLevel = errors.New("more price levels than one message can carry")
)

// MaxDepth bounds the nesting Skip accepts, so that a hostile frame cannot
// recurse deeply.
const MaxDepth = 32

// Scanner walks a JSON document without building anything. It validates
// what it skips (strings, numbers, literals, nesting) so that a malformed
// frame is rejected rather than half-read. Set B (and I, to start
// elsewhere than at the beginning); the zero value scans nothing.
type Scanner struct {
	B   []byte // the document; never copied
	I   int    // the read position in B
	Esc bool   // the last string Str read contained an escape
}

func (s *Scanner) WS() {
	if s.I < len(s.B) && s.B[s.I] > ' ' {
		return // the common case: Binance sends no whitespace
	}
	for s.I < len(s.B) {
		switch s.B[s.I] {
		case ' ', '\t', '\n', '\r':
			s.I++
		default:
			return
		}
	}
}

func (s *Scanner) Peek() byte {
	if s.I < len(s.B) {
		return s.B[s.I]
	}
	return 0
}

func (s *Scanner) Eat(c byte) bool {
	if s.I < len(s.B) && s.B[s.I] == c {
		s.I++
		return true
	}
	return false
}

// Str reads a string and returns its raw content (between the quotes,
// escapes untouched).
func (s *Scanner) Str() ([]byte, error) {
	if !s.Eat('"') {
		return nil, ErrSyntax
	}
	start := s.I
	s.Esc = false
	// Fast path: Binance's strings are short and plain, so one scalar pass
	// that stops at the quote beats bytes.IndexByte's per-call setup.
	i := start
	for i < len(s.B) && Plain[s.B[i]] {
		i++
	}
	if i < len(s.B) && s.B[i] == '"' {
		s.I = i + 1
		return s.B[start:i], nil
	}
	// Escapes and control characters take the checked path.
	for s.I < len(s.B) {
		c := s.B[s.I]
		switch {
		case c == '"':
			s.I++
			return s.B[start : s.I-1], nil
		case c == '\\':
			s.Esc = true
			if s.I+1 >= len(s.B) {
				return nil, ErrSyntax
			}
			switch s.B[s.I+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.I += 2
			case 'u':
				if s.I+6 > len(s.B) || !isHex4(s.B[s.I+2:s.I+6]) {
					return nil, ErrSyntax
				}
				s.I += 6
			default:
				return nil, ErrSyntax
			}
		case c < 0x20:
			return nil, ErrSyntax // control characters must be escaped
		default:
			s.I++
		}
	}
	return nil, ErrSyntax
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// skip skips one value of any type, checking its syntax.
func (s *Scanner) Skip(depth int) error {
	if depth > MaxDepth {
		return ErrNesting
	}
	switch c := s.Peek(); {
	case c == '"':
		_, err := s.Str()
		return err
	case c == '{':
		s.I++
		s.WS()
		if s.Eat('}') {
			return nil
		}
		for {
			s.WS()
			if _, err := s.Str(); err != nil {
				return err
			}
			s.WS()
			if !s.Eat(':') {
				return ErrSyntax
			}
			s.WS()
			if err := s.Skip(depth + 1); err != nil {
				return err
			}
			s.WS()
			if s.Eat(',') {
				continue
			}
			if s.Eat('}') {
				return nil
			}
			return ErrSyntax
		}
	case c == '[':
		s.I++
		s.WS()
		if s.Eat(']') {
			return nil
		}
		for {
			s.WS()
			if err := s.Skip(depth + 1); err != nil {
				return err
			}
			s.WS()
			if s.Eat(',') {
				continue
			}
			if s.Eat(']') {
				return nil
			}
			return ErrSyntax
		}
	case c == 't':
		return s.Literal("true")
	case c == 'f':
		return s.Literal("false")
	case c == 'n':
		return s.Literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.Number()
	}
	return ErrSyntax
}

func (s *Scanner) Literal(lit string) error {
	if len(s.B)-s.I < len(lit) || string(s.B[s.I:s.I+len(lit)]) != lit {
		return ErrSyntax
	}
	s.I += len(lit)
	return nil
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *Scanner) Number() error {
	s.Eat('-')
	switch {
	case s.Eat('0'):
	case s.Digits() == 0:
		return ErrSyntax
	}
	if s.Eat('.') && s.Digits() == 0 {
		return ErrSyntax
	}
	if s.Eat('e') || s.Eat('E') {
		if !s.Eat('+') {
			s.Eat('-')
		}
		if s.Digits() == 0 {
			return ErrSyntax
		}
	}
	return nil
}

func (s *Scanner) Digits() int {
	n := 0
	for s.I < len(s.B) && s.B[s.I] >= '0' && s.B[s.I] <= '9' {
		s.I++
		n++
	}
	return n
}

// ScanValue scans one value into v, decoding strings and unsigned integers on
// the way.
func (s *Scanner) ScanValue(depth int, v *Value) error {
	switch c := s.Peek(); {
	case c == '"':
		start := s.I + 1
		if _, err := s.Str(); err != nil {
			return err
		}
		v.Start, v.End, v.Kind = int32(start), int32(s.I-1), '"'
		if s.Esc {
			v.Kind = '\\'
		}
		return nil
	case c >= '0' && c <= '9' || c == '-':
		return s.NumberValue(v)
	case c == 't':
		v.Kind = 't'
		return s.Literal("true")
	case c == 'f':
		v.Kind = 'f'
		return s.Literal("false")
	}
	start := s.I
	if err := s.Skip(depth); err != nil {
		return err
	}
	v.Start, v.End, v.Kind = int32(start), int32(s.I), 'x'
	return nil
}

// NumberValue scans a JSON number; a non-negative integer that fits uint64
// comes back as kind '0' with its value, anything else as kind 'n'.
func (s *Scanner) NumberValue(v *Value) error {
	start := s.I
	neg := s.Eat('-')
	var n uint64
	digits := 0
	if s.Eat('0') {
		digits = 1
	} else {
		// Up to 19 digits cannot overflow uint64, so the loops do not check;
		// longer numbers are re-checked below. Eight digits at a time first:
		// timestamps and ids are 10 to 13 digits long.
		for s.I+8 <= len(s.B) {
			v, ok := EightDigits(s.B[s.I : s.I+8])
			if !ok {
				break
			}
			n = n*100_000_000 + v
			s.I += 8
			digits += 8
		}
		for s.I < len(s.B) {
			d := s.B[s.I] - '0'
			if d > 9 {
				break
			}
			n = n*10 + uint64(d)
			s.I++
			digits++
		}
	}
	if digits == 0 {
		return ErrSyntax
	}
	overflow := digits > 20 || digits == 20 && !FitsUint64(s.B[s.I-20:s.I])
	integer := !neg && !overflow
	if s.Eat('.') {
		integer = false
		if s.Digits() == 0 {
			return ErrSyntax
		}
	}
	if s.Eat('e') || s.Eat('E') {
		integer = false
		if !s.Eat('+') {
			s.Eat('-')
		}
		if s.Digits() == 0 {
			return ErrSyntax
		}
	}
	v.Start, v.End, v.Kind, v.Num = int32(start), int32(s.I), 'n', 0
	if integer {
		v.Kind, v.Num = '0', n
	}
	return nil
}

// FitsUint64 reports whether a 20-digit decimal is at most 2^64-1.
func FitsUint64(d []byte) bool { return string(d) <= "18446744073709551615" }

// EightDigits converts eight ASCII digits at once (SWAR), or reports that
// they are not all digits.
func EightDigits(b []byte) (uint64, bool) {
	v := binary.LittleEndian.Uint64(b)
	// Every byte must be in '0'..'9': high nibble 3, and adding 6 must not
	// carry out of the low nibble.
	if v&0xF0F0F0F0F0F0F0F0 != 0x3030303030303030 || (v+0x0606060606060606)&0xF0F0F0F0F0F0F0F0 != 0x3030303030303030 {
		return 0, false
	}
	v -= 0x3030303030303030
	v = (v * 10) + (v >> 8) // pairs of digits
	v = ((v & 0x000000FF000000FF) * (100 + (1000000 << 32))) + (((v >> 16) & 0x000000FF000000FF) * (1 + (10000 << 32)))
	return v >> 32, true
}

// Plain marks the bytes a string may contain without the checked path:
// anything but the quote, the backslash and control characters. Read only.
var Plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Value is a field's value as scanned: where it is in the frame (strings
// without their quotes) and, for integers, the number itself, so nothing is
// scanned twice. It holds offsets rather than a slice: with no pointers,
// storing it costs no GC write barrier.
type Value struct {
	Start, End int32
	Kind       byte // '"' plain string, '\\' string with escapes, '0' unsigned integer in num, 'n' other number, 't' true, 'f' false, 'x' anything else
	Num        uint64
}

// Levels parses [["price","qty"],...] and appends to dst.
func Levels(sc *Scanner, dst []proto.Level) ([]proto.Level, error) {
	if !sc.Eat('[') {
		return dst, ErrLevels
	}
	sc.WS()
	if sc.Eat(']') {
		return dst, nil
	}
	for {
		var ps, qs []byte
		if p, q, next, ok := CompactLevel(sc.B, sc.I); ok {
			ps, qs, sc.I = p, q, next
		} else {
			var err error
			if ps, qs, err = LooseLevel(sc); err != nil {
				return dst, err
			}
		}
		price, err := proto.ParseUDecimal(ps)
		if err != nil {
			return dst, err
		}
		qty, err := proto.ParseUDecimal(qs)
		if err != nil {
			return dst, err
		}
		if len(dst) >= proto.MaxLevels {
			return dst, ErrTooManyLevel
		}
		dst = append(dst, proto.Level{Price: price, Qty: qty})
		if sc.I < len(sc.B) && sc.B[sc.I] == ',' {
			sc.I++
			continue
		}
		sc.WS()
		if sc.Eat(',') {
			continue
		}
		if sc.Eat(']') {
			return dst, nil
		}
		return dst, ErrLevels
	}
}

// CompactLevel matches ["p","q"] with no whitespace or escapes at b[i], the
// form Binance sends, in one pass.
func CompactLevel(b []byte, i int) (p, q []byte, next int, ok bool) {
	if i+2 >= len(b) || b[i] != '[' || b[i+1] != '"' {
		return nil, nil, 0, false
	}
	ps := i + 2
	j := PlainEnd(b, ps)
	if j+3 >= len(b) || b[j] != '"' || b[j+1] != ',' || b[j+2] != '"' {
		return nil, nil, 0, false
	}
	pe := j
	qs := j + 3
	j = PlainEnd(b, qs)
	if j+1 >= len(b) || b[j] != '"' || b[j+1] != ']' {
		return nil, nil, 0, false
	}
	return b[ps:pe], b[qs:j], j + 2, true
}

// LooseLevel parses one ["p","q"] with any whitespace, validating strictly.
func LooseLevel(sc *Scanner) (p, q []byte, err error) {
	sc.WS()
	if !sc.Eat('[') {
		return nil, nil, ErrLevels
	}
	sc.WS()
	if p, err = sc.Str(); err != nil {
		return nil, nil, err
	}
	sc.WS()
	if !sc.Eat(',') {
		return nil, nil, ErrLevels
	}
	sc.WS()
	if q, err = sc.Str(); err != nil {
		return nil, nil, err
	}
	sc.WS()
	if !sc.Eat(']') {
		return nil, nil, ErrLevels
	}
	return p, q, nil
}

// PlainEnd returns the index of the first byte at or after i that is not
// Plain (a quote, a backslash or a control character), or len(b). It looks
// at eight bytes at a time: keys and ids are long runs of plain bytes.
func PlainEnd(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (ones * '"')
		s := x ^ (ones * '\\')
		// A zero byte in q or s is a quote or backslash; a byte below 0x20
		// is a control character. Each test sets the high bit of the bytes
		// it finds (and possibly of bytes after them, never before).
		found := ((q - ones) &^ q) | ((s - ones) &^ s) | ((x - ones*0x20) &^ x)
		if found &= highs; found != 0 {
			return i + bits.TrailingZeros64(found)/8
		}
	}
	for i < len(b) && Plain[b[i]] {
		i++
	}
	return i
}
