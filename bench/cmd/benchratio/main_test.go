package main

import (
	"strings"
	"testing"
)

func TestRatios(t *testing.T) {
	in := `goos: linux
BenchmarkTrade/codec=paddock/op=encode-2   100  10.0 ns/op  0 B/op  0 allocs/op
BenchmarkTrade/codec=protobuf/op=encode-2  100  250 ns/op  0 B/op  0 allocs/op
BenchmarkTrade/codec=json/op=encode-2      100  600 ns/op  224 B/op  1 allocs/op
BenchmarkOther-2                           100  5 ns/op
PASS
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out, "codec=paddock"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"BenchmarkTrade/codec=*/op=encode  codec=protobuf  25.0x slower (250 vs 10 ns/op, 0 vs 0 allocs/op)",
		"codec=json      60.0x slower (600 vs 10 ns/op, 1 vs 0 allocs/op)",
		"BenchmarkOther-2", // passed through
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if err := run(strings.NewReader(""), &out, "nokey"); err == nil {
		t.Error("a -base without '=' was accepted")
	}
}
