package binance_test

import (
	"fmt"
	"testing"
	"time"
)

// TestCorruptUpdateIDsConverge: a hostile or buggy update id cannot wedge a
// book. On the first wave's code one diff with U = u = 9e18 kept the book out
// of sync until a reconnect (every snapshot refused as older than it), and a
// diff that pushed the book far ahead froze it (every later diff covered).
func TestCorruptUpdateIDsConverge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		frame    func(id uint64) string // id: the simulator's current update id
		restarts float64                // resyncs started over
		parseErr float64
	}{
		{"diff far in the future", func(uint64) string {
			return depthFrame(9_000_000_000_000_000_000, 9_000_000_000_000_000_000)
		}, 1, 0},
		{"book pushed ahead", func(id uint64) string { return depthFrame(id+1, id+1<<31) }, 1, 0},
		{"span over 2^32 refused at parse", func(uint64) string { return depthFrame(1, 9_000_000_000_000_000_000) }, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{symbols: []string{"btcusdt"}})
			w := h.watchBook("btcusdt")
			h.start()
			h.stepUntil("in sync", 10*time.Second, func() bool { ok, _ := h.svc.Ready(); return ok })
			h.sim.Step(5)
			h.matches(w, "btcusdt")
			_, _, id := h.sim.Book(false, "BTCUSDT")
			h.sim.SendRaw(false, []byte(tc.frame(id)))
			h.stepUntil("the book to converge", 20*time.Second, func() bool {
				_, _, id := h.sim.Book(false, "BTCUSDT")
				ok, _ := h.svc.Ready()
				return ok && w.at(id) && h.metric("paddock_feed_book_resync_restarts_total") == tc.restarts &&
					h.metric("paddock_feed_parse_errors_total") == tc.parseErr
			})
			h.matches(w, "btcusdt")
			if got := h.metric("paddock_feed_parse_errors_total"); got != tc.parseErr {
				t.Fatalf("parse errors %v, want %v", got, tc.parseErr)
			}
		})
	}
}

func depthFrame(first, last uint64) string {
	return fmt.Sprintf(`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":%d,"u":%d,"b":[],"a":[]}}`, first, last)
}
