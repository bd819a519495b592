package binance

import "encoding/binary"

// scanner walks a JSON document without building anything. It validates
// what it skips (strings, numbers, literals, nesting) so that a malformed
// frame is rejected rather than half-read. The zero value is not usable; set b.
type scanner struct {
	b   []byte
	i   int
	esc bool // the last string str read contained an escape
}

func (s *scanner) ws() {
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return // the common case: Binance sends no whitespace
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string and returns its raw content (between the quotes,
// escapes untouched).
func (s *scanner) str() ([]byte, error) {
	if !s.eat('"') {
		return nil, ErrSyntax
	}
	start := s.i
	s.esc = false
	// Fast path: Binance's strings are short and plain, so one scalar pass
	// that stops at the quote beats bytes.IndexByte's per-call setup.
	i := start
	for i < len(s.b) && plain[s.b[i]] {
		i++
	}
	if i < len(s.b) && s.b[i] == '"' {
		s.i = i + 1
		return s.b[start:i], nil
	}
	// Escapes and control characters take the checked path.
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], nil
		case c == '\\':
			s.esc = true
			if s.i+1 >= len(s.b) {
				return nil, ErrSyntax
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !isHex4(s.b[s.i+2:s.i+6]) {
					return nil, ErrSyntax
				}
				s.i += 6
			default:
				return nil, ErrSyntax
			}
		case c < 0x20:
			return nil, ErrSyntax // control characters must be escaped
		default:
			s.i++
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
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return ErrNesting
	}
	switch c := s.peek(); {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{':
		s.i++
		s.ws()
		if s.eat('}') {
			return nil
		}
		for {
			s.ws()
			if _, err := s.str(); err != nil {
				return err
			}
			s.ws()
			if !s.eat(':') {
				return ErrSyntax
			}
			s.ws()
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				return nil
			}
			return ErrSyntax
		}
	case c == '[':
		s.i++
		s.ws()
		if s.eat(']') {
			return nil
		}
		for {
			s.ws()
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat(']') {
				return nil
			}
			return ErrSyntax
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return ErrSyntax
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return ErrSyntax
	}
	s.i += len(lit)
	return nil
}

// number skips a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.digits() == 0:
		return ErrSyntax
	}
	if s.eat('.') && s.digits() == 0 {
		return ErrSyntax
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if s.digits() == 0 {
			return ErrSyntax
		}
	}
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// value scans one value into v, decoding strings and unsigned integers on
// the way.
func (s *scanner) value(depth int, v *value) error {
	switch c := s.peek(); {
	case c == '"':
		start := s.i + 1
		if _, err := s.str(); err != nil {
			return err
		}
		v.start, v.end, v.kind = int32(start), int32(s.i-1), '"'
		if s.esc {
			v.kind = '\\'
		}
		return nil
	case c >= '0' && c <= '9' || c == '-':
		return s.numberValue(v)
	case c == 't':
		v.kind = 't'
		return s.literal("true")
	case c == 'f':
		v.kind = 'f'
		return s.literal("false")
	}
	start := s.i
	if err := s.skip(depth); err != nil {
		return err
	}
	v.start, v.end, v.kind = int32(start), int32(s.i), 'x'
	return nil
}

// numberValue scans a JSON number; a non-negative integer that fits uint64
// comes back as kind '0' with its value, anything else as kind 'n'.
func (s *scanner) numberValue(v *value) error {
	start := s.i
	neg := s.eat('-')
	var n uint64
	digits := 0
	if s.eat('0') {
		digits = 1
	} else {
		// Up to 19 digits cannot overflow uint64, so the loops do not check;
		// longer numbers are re-checked below. Eight digits at a time first:
		// timestamps and ids are 10 to 13 digits long.
		for s.i+8 <= len(s.b) {
			v, ok := eightDigits(s.b[s.i : s.i+8])
			if !ok {
				break
			}
			n = n*100_000_000 + v
			s.i += 8
			digits += 8
		}
		for s.i < len(s.b) {
			d := s.b[s.i] - '0'
			if d > 9 {
				break
			}
			n = n*10 + uint64(d)
			s.i++
			digits++
		}
	}
	if digits == 0 {
		return ErrSyntax
	}
	overflow := digits > 20 || digits == 20 && !fitsUint64(s.b[s.i-20:s.i])
	integer := !neg && !overflow
	if s.eat('.') {
		integer = false
		if s.digits() == 0 {
			return ErrSyntax
		}
	}
	if s.eat('e') || s.eat('E') {
		integer = false
		if !s.eat('+') {
			s.eat('-')
		}
		if s.digits() == 0 {
			return ErrSyntax
		}
	}
	v.start, v.end, v.kind, v.num = int32(start), int32(s.i), 'n', 0
	if integer {
		v.kind, v.num = '0', n
	}
	return nil
}

// fitsUint64 reports whether a 20-digit decimal is at most 2^64-1.
func fitsUint64(d []byte) bool { return string(d) <= "18446744073709551615" }

// eightDigits converts eight ASCII digits at once (SWAR), or reports that
// they are not all digits.
func eightDigits(b []byte) (uint64, bool) {
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

// plain marks the bytes a string may contain without the checked path:
// anything but the quote, the backslash and control characters.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
