package bybit_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paddockhq/paddock/feed"
	"github.com/paddockhq/paddock/feed/bybit"
	"github.com/paddockhq/paddock/feed/sim"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/sandbox/marketdata"
	"github.com/prometheus/client_golang/prometheus"
)

// rig runs the real pieces on loopback: an embedded NATS server, the
// simulator's Bybit v5 endpoint, the adapter and feed service, and a
// subscriber joining the books as a sandbox node does (sandbox/marketdata).
type rig struct {
	t       *testing.T
	sim     *sim.Sim
	futures bool
	outlet  *feed.Outlet
	svc     *feed.Service
	reg     *prometheus.Registry

	mu         sync.Mutex
	trades     int
	books      map[string]*marketdata.Book
	statusGaps uint64 // from the venue's Status heartbeat
	perMillion uint32
}

func newRig(t *testing.T, futures bool, prepare func(*sim.Sim), cfg bybit.Config) *rig {
	t.Helper()
	ns := natstest.Server(t, embednats.Options{})
	sm, err := sim.New("127.0.0.1:0", sim.Config{Symbols: []sim.Symbol{{Name: "BTCUSDT", Futures: futures, Price: 27123.45}}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sm.Close() })
	if prepare != nil {
		prepare(sm)
	}
	r := &rig{t: t, sim: sm, futures: futures, reg: prometheus.NewRegistry(), books: map[string]*marketdata.Book{}}
	venue, url := proto.VenueBybit, sm.BybitSpotWS()
	if futures {
		venue, url = proto.VenueBybitPerp, sm.BybitLinearWS()
	}
	nc := natstest.Connect(t, ns.ClientURL())
	r.outlet, err = feed.NewOutlet(venue, []string{"btcusdt"}, feed.Events{Trades: true, Orderbook: true, BBO: true}, nc, feed.NewMetrics(r.reg), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.WSURL = url
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	}
	a, err := bybit.New(cfg, r.outlet)
	if err != nil {
		t.Fatal(err)
	}
	r.svc = feed.NewService(nc, []feed.VenueEntry{{Outlet: r.outlet, Venue: a}}, feed.ServiceOptions{StatusInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("feed: %v", err)
		}
	})
	// The subscriber: joined books and every trade, as a node sees them.
	sub := natstest.Connect(t, ns.ClientURL())
	m, err := marketdata.NewMarket(sub, []marketdata.Instrument{{Venue: venue.String(), Symbol: "btcusdt"}}, marketdata.Handlers{
		Locker: &r.mu,
		Book:   func(b *marketdata.Book, _, _ []proto.Level) { r.books[b.Instrument.Symbol] = b },
		Trade:  func(marketdata.Instrument, proto.TradeView) { r.trades++ },
		Status: func(_ string, st proto.StatusView) { r.statusGaps, r.perMillion = st.Gaps(), st.GapsPerMillion() },
	})
	if err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(context.Background())
	mdone := make(chan struct{})
	go func() { defer close(mdone); _ = m.Run(mctx) }()
	t.Cleanup(func() { stop(); <-mdone })
	return r
}

// stepUntil steps the simulator until cond holds: stepping is what makes
// progress here, so polling while stepping is the synchronization.
func (r *rig) stepUntil(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		r.sim.Step(1)
		<-tick.C
	}
}

// booksMatch reports whether the feed's book equals the simulator's true
// book, and the subscriber's joined book is live at the same update.
func (r *rig) booksMatch() bool {
	bids, asks, _, ok := r.outlet.Instrument("btcusdt").Book()
	tb, ta, _ := r.sim.Book(r.futures, "BTCUSDT")
	return ok && equal(bids, tb) && equal(asks, ta)
}

func equal(a, b []proto.Level) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Price.Cmp(b[i].Price) != 0 || a[i].Qty.Cmp(b[i].Qty) != 0 {
			return false
		}
	}
	return true
}

func (r *rig) count(name string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestBybitEndToEnd, for spot and linear: books match the venue level for
// level and the subscriber joins them; every trade of batched pushes is
// published, in order, once; a hole in u resets that book and re-subscribes
// for a fresh snapshot (one gap counted); the venue restarting its book
// service (u == 1) is a snapshot, not a gap.
func TestBybitEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		futures bool
	}{{"category=spot", false}, {"category=linear", true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.futures, nil, bybit.Config{})
			r.stepUntil("books in sync and matching the venue", r.booksMatch)
			r.stepUntil("the subscriber's book live", func() bool {
				r.mu.Lock()
				defer r.mu.Unlock()
				b := r.books["btcusdt"]
				return b != nil && b.Live()
			})

			// Batched trades: 50 to a push, each published as its own Trade.
			r.sim.BatchBybitTrades(tc.futures, "BTCUSDT", 50)
			r.stepUntil("batched trades", func() bool { return r.sim.BybitTrades(tc.futures, "BTCUSDT") >= 150 })
			sent := r.sim.BybitTrades(tc.futures, "BTCUSDT")
			r.stepUntil("every trade published", func() bool {
				r.mu.Lock()
				defer r.mu.Unlock()
				return uint64(r.trades) >= sent
			})
			if dup := r.count("paddock_feed_duplicates_dropped_total"); dup != 0 {
				t.Fatalf("%v duplicates on one connection", dup)
			}

			// A hole in u: Reset, re-subscribe, a fresh snapshot; one gap.
			r.sim.SkipNextBybitDelta(tc.futures, "BTCUSDT")
			r.stepUntil("a gap", func() bool { return r.count("paddock_feed_book_gaps_total") == 1 })
			r.stepUntil("the book back in sync after the gap", r.booksMatch)
			r.stepUntil("the gap in the Status heartbeat", func() bool {
				r.mu.Lock()
				defer r.mu.Unlock()
				return r.statusGaps == 1 && r.perMillion > 0
			})
			if g := r.count("paddock_feed_gaps_per_million_messages"); g <= 0 {
				t.Fatalf("gaps per million %v", g)
			}

			// The venue restarts its book service: u starts over at 1.
			r.sim.RestartBybitBook(tc.futures, "BTCUSDT")
			r.stepUntil("the book in sync after the venue's restart", r.booksMatch)
			for range 20 {
				r.sim.Step(1)
			}
			r.stepUntil("the book matching", r.booksMatch)
			if gaps := r.count("paddock_feed_book_gaps_total"); gaps != 1 {
				t.Fatalf("%v gaps: a restart snapshot (u == 1) was counted as one", gaps)
			}
			if bad := r.count("paddock_feed_parse_errors_total"); bad != 0 {
				t.Fatalf("%v frames dropped as bad", bad)
			}
		})
	}
}

// TestBybitRefusedSubscriptionIsNoSilentHole: a subscription the venue
// refuses is counted, and /readyz names it.
func TestBybitRefusedSubscriptionIsNoSilentHole(t *testing.T) {
	r := newRig(t, true, func(s *sim.Sim) { s.RejectBybitTopic("orderbook.50.BTCUSDT") }, bybit.Config{})
	r.stepUntil("the refusal", func() bool { return r.count("paddock_feed_subscription_errors_total") == 1 })
	ok, why := r.svc.Ready()
	if ok || !strings.Contains(strings.Join(why, "; "), "subscription orderbook.50.BTCUSDT refused") {
		t.Fatalf("ready %v: %v", ok, why)
	}
}

// TestBybitMissedPongsReplaceTheConnection: with the data quiet and pongs
// not coming back, the connection is declared dead and replaced.
func TestBybitMissedPongsReplaceTheConnection(t *testing.T) {
	r := newRig(t, false, nil, bybit.Config{PingEvery: 50 * time.Millisecond, SilenceTimeout: 300 * time.Millisecond})
	r.stepUntil("books in sync", r.booksMatch)
	_, opened := r.sim.Connections()
	r.sim.StallBybitPongs(true)
	deadline := time.Now().Add(10 * time.Second)
	for { // polls: the silence is measured on the real clock here
		if _, n := r.sim.Connections(); n > opened {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the silent connection was never replaced")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.sim.StallBybitPongs(false)
	r.stepUntil("books in sync again", r.booksMatch)
	if n := r.count("paddock_feed_reconnects_total"); n < 1 {
		t.Fatalf("reconnects %v", n)
	}
}

// TestBybitMalformedFramesNeverStopTheFeed: damaged and hostile frames are
// counted and dropped; the book and the trade tape carry on untouched.
func TestBybitMalformedFramesNeverStopTheFeed(t *testing.T) {
	r := newRig(t, true, nil, bybit.Config{})
	r.stepUntil("books in sync", r.booksMatch)
	for _, f := range []string{
		`{"topic":"publicTrade.BTCUSDT","data":[{"T":1`, // truncated
		`not json at all`,
		`{"topic":"publicTrade.BTCUSDT","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"1","p":"-5","i":"x"}]}`,      // negative price
		`{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"ETHUSDT","b":[],"a":[],"u":1}}`,             // another symbol's payload
		`{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["1"]],"a":[],"u":99999999}}`, // a broken level
	} {
		r.sim.SendRaw(true, []byte(f))
	}
	r.stepUntil("the bad frames counted", func() bool { return r.count("paddock_feed_parse_errors_total") == 5 })
	r.stepUntil("the book still matching", r.booksMatch)
	if g := r.count("paddock_feed_book_gaps_total"); g != 0 {
		t.Fatalf("bad frames caused %v gaps", g)
	}
}
