package binance_test

import (
	"testing"
	"time"

	"github.com/paddockhq/paddock/feed/binance"
	"github.com/paddockhq/paddock/feed/sim"
)

// Every test here runs the simulator, the adapter, the service and NATS for
// real on loopback; the simulator's true book is the reference. What every
// venue guarantees (books and trades match, a gap resets one instrument, a
// lost or silent connection recovers) is feed/venues_test.go's table; these
// are Binance's own: its REST splice, rollover, serverShutdown, stream
// limit, pings and hostile frames.

func TestMalformedFramesNeverStopTheFeed(t *testing.T) {
	h := newHarness(t, harnessOpts{symbols: []string{"btcusdt"}})
	w := h.watchBook("btcusdt")
	trades := h.watchTrades("btcusdt")
	h.start()
	h.stepUntil("in sync", 10*time.Second, func() bool { ok, _ := h.svc.Ready(); return ok })
	bad := []string{
		`{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1`, // truncated
		`not json at all`, // garbage
		`{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":"1e5","q":"1","m":true}}`,                  // exponent
		`{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":"99999999999999999999","q":"1","m":true}}`, // overflow
		`{"stream":"x@ticker","data":{"e":"24hrTicker","s":"BTCUSDT"}}`,                                                   // a stream not subscribed: ignored
		`{"stream":"dogeusdt@trade","data":{"e":"trade","E":1,"s":"DOGEUSDT","t":1,"p":"1","q":"1","m":true}}`,            // unknown symbol
		`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","s":"BTCUSDT","U":1,"u":2,"b":[["1"]],"a":[]}}`,
	}
	for _, f := range bad {
		h.sim.SendRaw(false, []byte(f))
	}
	h.sim.Step(100)
	h.matches(w, "btcusdt")
	_, lastID := h.sim.Trades(false, "BTCUSDT")
	waitUntil(t, "trades after the bad frames", 5*time.Second, func() bool { return trades.last() == lastID })
	waitUntil(t, "the bad frames to be counted", 5*time.Second, func() bool {
		return h.metric("paddock_feed_parse_errors_total") == 5 && h.metric("paddock_feed_unknown_symbol_frames_total") == 1 &&
			h.metric("paddock_feed_ignored_frames_total") == 1
	})
	if len(w.resets) != 0 {
		t.Fatalf("bad frames disturbed the book: resets %v", w.resets)
	}
}

// TestPlannedRolloverLosesAndDuplicatesNothing runs the market continuously
// while the feed rolls its connection over several times before the
// simulator's compressed 24-hour cap.
func TestPlannedRolloverLosesAndDuplicatesNothing(t *testing.T) {
	h := newHarness(t, harnessOpts{
		symbols: []string{"btcusdt"},
		simCfg:  sim.Config{MaxConnAge: 3 * time.Second, TradeEvery: 1},
		cfg:     binance.Config{MaxConnAge: 400 * time.Millisecond, RolloverOverlap: 100 * time.Millisecond},
	})
	w := h.watchBook("btcusdt")
	trades := h.watchTrades("btcusdt")
	h.start()
	h.stepUntil("in sync", 10*time.Second, func() bool { ok, _ := h.svc.Ready(); return ok })
	first := trades.last()
	ctx, cancel := contextWithTimeout(t, 2*time.Second)
	h.sim.Run(ctx, 400)
	cancel()
	h.matches(w, "btcusdt")
	count, lastID := h.sim.Trades(false, "BTCUSDT")
	waitUntil(t, "the last trade", 5*time.Second, func() bool { return trades.last() == lastID })
	trades.exactlyOnce(t, lastID)
	if rolls := h.metric("paddock_feed_rollovers_total"); rolls < 3 {
		t.Fatalf("%v rollovers in 2s with a 400ms age cap", rolls)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.resets) != 0 || w.seqErrors != 0 || h.metric("paddock_feed_trade_ids_missed_total") != 0 {
		t.Fatalf("rollover was not clean: resets %v, sequence breaks %d, missed trade ids %v",
			w.resets, w.seqErrors, h.metric("paddock_feed_trade_ids_missed_total"))
	}
	t.Logf("%d trades over %v rollovers, first id %d, last %d; %v duplicates dropped",
		count, h.metric("paddock_feed_rollovers_total"), first, lastID, h.metric("paddock_feed_duplicates_dropped_total"))
}

func TestServerShutdownRollsOver(t *testing.T) {
	h := newHarness(t, harnessOpts{
		symbols: []string{"btcusdt"},
		simCfg:  sim.Config{TradeEvery: 1},
		cfg:     binance.Config{RolloverOverlap: 100 * time.Millisecond},
	})
	trades := h.watchTrades("btcusdt")
	w := h.watchBook("btcusdt")
	h.start()
	h.stepUntil("in sync", 10*time.Second, func() bool { ok, _ := h.svc.Ready(); return ok })
	ctx, cancel := contextWithTimeout(t, 1500*time.Millisecond)
	go func() {
		time.AfterFunc(200*time.Millisecond, func() { h.sim.AnnounceShutdown(800 * time.Millisecond) })
	}()
	h.sim.Run(ctx, 300)
	cancel()
	_, lastID := h.sim.Trades(false, "BTCUSDT")
	waitUntil(t, "the last trade", 5*time.Second, func() bool { return trades.last() == lastID })
	trades.exactlyOnce(t, lastID)
	h.matches(w, "btcusdt")
	if h.metric("paddock_feed_rollovers_total") < 1 || h.metric("paddock_feed_reconnects_total") != 0 {
		t.Fatalf("rollovers %v reconnects %v", h.metric("paddock_feed_rollovers_total"), h.metric("paddock_feed_reconnects_total"))
	}
}

// TestSecondConnectionOnlyPastTheStreamLimit: with a per-connection limit of
// 4 streams, three instruments of three streams each need three connections;
// every one of them carries data and no connection is opened beyond that.
func TestSecondConnectionOnlyPastTheStreamLimit(t *testing.T) {
	h := newHarness(t, harnessOpts{symbols: []string{"btcusdt", "ethusdt", "solusdt"}, cfg: binance.Config{MaxStreamsPerConn: 4}})
	if got := h.adapter.Connections(); got != 3 {
		t.Fatalf("adapter plans %d connections, want 3", got)
	}
	ws := []*bookWatcher{h.watchBook("btcusdt"), h.watchBook("ethusdt"), h.watchBook("solusdt")}
	h.start()
	h.stepUntil("all books in sync", 10*time.Second, func() bool { ok, _ := h.svc.Ready(); return ok })
	h.sim.Step(50)
	for i, s := range []string{"btcusdt", "ethusdt", "solusdt"} {
		h.matches(ws[i], s)
	}
	if open, opened := h.sim.Connections(); open != 3 || opened != 3 {
		t.Fatalf("%d connections open, %d opened; want exactly 3", open, opened)
	}

	one := newHarness(t, harnessOpts{symbols: []string{"btcusdt", "ethusdt", "solusdt"}})
	if got := one.adapter.Connections(); got != 1 {
		t.Fatalf("with Binance's 1024-stream limit the adapter plans %d connections, want 1", got)
	}
}

// TestPingsKeepAQuietConnectionAlive: no market data for many silence
// timeouts, but the venue pings and the feed answers, so the connection
// stays up and the book stays in sync.
func TestPingsKeepAQuietConnectionAlive(t *testing.T) {
	h := newHarness(t, harnessOpts{
		symbols: []string{"btcusdt"},
		simCfg:  sim.Config{PingInterval: 50 * time.Millisecond},
		cfg:     binance.Config{SilenceTimeout: 300 * time.Millisecond},
	})
	w := h.watchBook("btcusdt")
	h.start()
	h.stepUntil("in sync", 10*time.Second, func() bool { ok, _ := h.svc.Ready(); return ok })
	quiet := time.NewTimer(1500 * time.Millisecond) // five silence timeouts without data
	<-quiet.C
	h.sim.Step(10)
	h.matches(w, "btcusdt")
	if _, opened := h.sim.Connections(); opened != 1 {
		t.Fatalf("%d connections opened; pings should have kept the first alive", opened)
	}
	if p := h.sim.Pongs(); p < 10 {
		t.Fatalf("the feed answered %d pings in 1.5s of 50ms pings", p)
	}
	if len(w.resets) != 0 {
		t.Fatalf("resets during a quiet market: %v", w.resets)
	}
}
