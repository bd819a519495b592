//go:build race

package bybit

// The race detector's instrumentation allocates, so allocation counts are
// meaningless under -race; `make test` runs the allocation tests in a
// separate pass without it.
const raceEnabled = true
