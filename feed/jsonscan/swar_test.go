package jsonscan

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestEightDigits(t *testing.T) {
	for i := 0; i < 200000; i++ {
		n := rand.Uint64N(100_000_000)
		s := []byte(strconv.FormatUint(n+100_000_000, 10)[1:])
		got, ok := EightDigits(s)
		if !ok || got != n {
			t.Fatalf("%s: %d %v", s, got, ok)
		}
	}
	for _, bad := range []string{"1234567a", "/2345678", ":2345678", "1234 678", "12345678"[:7] + "\x00"} {
		if _, ok := EightDigits([]byte(bad)); ok {
			t.Fatalf("%q accepted", bad)
		}
	}
}
