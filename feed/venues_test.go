package feed_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/feed"
	"github.com/paddockhq/paddock/feed/binance"
	"github.com/paddockhq/paddock/feed/bybit"
	"github.com/paddockhq/paddock/feed/sim"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/sandbox/marketdata"
	"github.com/prometheus/client_golang/prometheus"
)

// The guarantees every venue gives, checked by one suite over a table of
// venues: the simulator plays each protocol on loopback, a subscriber joins
// the books over real NATS as a sandbox node does (sandbox/marketdata), and
// the simulator's true book and the trades it sent are the reference.
// Protocol-specific behaviour (Binance's REST splice and rollover, Bybit's
// acknowledgements and restarts) is tested in each venue's package.

type venueCase struct {
	name    string
	id      proto.VenueID
	futures bool // the simulator's perp markets
	// adapter makes the venue's adapter on the simulator; silence is its
	// silence timeout (0: the default).
	adapter func(sm *sim.Sim, out *feed.Outlet, silence time.Duration) (feed.Venue, error)
	// gap makes the simulator skip the next book update of symbol.
	gap func(sm *sim.Sim, symbol string)
	// sent is how many trades of symbol the simulator sent on this protocol.
	sent func(sm *sim.Sim, symbol string) uint64
}

var backoff = struct{ min, max time.Duration }{10 * time.Millisecond, 50 * time.Millisecond}

func binanceCase(futures bool) venueCase {
	c := venueCase{name: "binance", id: proto.VenueBinance, futures: futures}
	if futures {
		c.name, c.id = "binance-perp", proto.VenueBinancePerp
	}
	c.adapter = func(sm *sim.Sim, out *feed.Outlet, silence time.Duration) (feed.Venue, error) {
		ws, rest := sm.SpotWS(), sm.SpotREST()
		if futures {
			ws, rest = sm.PerpWS(), sm.PerpREST()
		}
		return binance.New(binance.Config{Futures: futures, WSURL: ws, RESTURL: rest, SilenceTimeout: silence,
			BackoffMin: backoff.min, BackoffMax: backoff.max}, out)
	}
	c.gap = func(sm *sim.Sim, symbol string) { sm.SkipNextDepth(futures, symbol) }
	c.sent = func(sm *sim.Sim, symbol string) uint64 { return sm.BinanceTradesSent(futures, symbol, false) } // the trade stream (the adapter's default)
	return c
}

func bybitCase(futures bool) venueCase {
	c := venueCase{name: "bybit", id: proto.VenueBybit, futures: futures}
	if futures {
		c.name, c.id = "bybit-perp", proto.VenueBybitPerp
	}
	c.adapter = func(sm *sim.Sim, out *feed.Outlet, silence time.Duration) (feed.Venue, error) {
		ws := sm.BybitSpotWS()
		if futures {
			ws = sm.BybitLinearWS()
		}
		return bybit.New(bybit.Config{WSURL: ws, SilenceTimeout: silence, PingEvery: max(silence/3, 0),
			BackoffMin: backoff.min, BackoffMax: backoff.max}, out)
	}
	c.gap = func(sm *sim.Sim, symbol string) { sm.SkipNextBybitDelta(futures, symbol) }
	c.sent = func(sm *sim.Sim, symbol string) uint64 { return sm.BybitTrades(futures, symbol) }
	return c
}

var venues = []venueCase{binanceCase(false), binanceCase(true), bybitCase(false), bybitCase(true)}

// suite is one venue's feed on loopback, with a subscriber.
type suite struct {
	t      *testing.T
	vc     venueCase
	sim    *sim.Sim
	outlet *feed.Outlet
	svc    *feed.Service
	reg    *prometheus.Registry

	mu      sync.Mutex // the subscriber's Locker
	books   map[string]*marketdata.Book
	resets  map[string][]string
	trades  map[string]uint64
	errors  []string
	symbols []string

	// From the raw subjects: Reset reasons by instrument, and breaks in the
	// per-subject sequence numbers (a lost or repeated message).
	rawMu     sync.Mutex
	reasons   map[string][]proto.ResetReason
	lastSeq   map[string]uint64
	seqBreaks int
}

func newSuite(t *testing.T, vc venueCase, silence time.Duration, symbols ...string) *suite {
	t.Helper()
	ns := natstest.Server(t, embednats.Options{})
	var syms []sim.Symbol
	for _, s := range symbols {
		syms = append(syms, sim.Symbol{Name: strings.ToUpper(s), Futures: vc.futures, Price: 27123.45})
	}
	sm, err := sim.New("127.0.0.1:0", sim.Config{Symbols: syms, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sm.Close() })
	s := &suite{t: t, vc: vc, sim: sm, reg: prometheus.NewRegistry(), books: map[string]*marketdata.Book{},
		resets: map[string][]string{}, trades: map[string]uint64{}, symbols: symbols}
	nc := natstest.Connect(t, ns.ClientURL())
	if s.outlet, err = feed.NewOutlet(vc.id, symbols, feed.Events{Trades: true, Orderbook: true, BBO: true}, nc, feed.NewMetrics(s.reg), nil); err != nil {
		t.Fatal(err)
	}
	a, err := vc.adapter(sm, s.outlet, silence)
	if err != nil {
		t.Fatal(err)
	}
	s.svc = feed.NewService(nc, []feed.VenueEntry{{Outlet: s.outlet, Venue: a}}, feed.ServiceOptions{StatusInterval: 50 * time.Millisecond})

	// The raw subjects: every message in sequence, and why books were reset.
	s.reasons, s.lastSeq = map[string][]proto.ResetReason{}, map[string]uint64{}
	raw := natstest.Connect(t, ns.ClientURL())
	for _, ev := range []string{"orderbook", "trades"} {
		if _, err := raw.Subscribe("market.data."+vc.name+".*."+ev, func(msg *nats.Msg) {
			m, err := proto.Decode(msg.Data)
			s.rawMu.Lock()
			defer s.rawMu.Unlock()
			if err != nil {
				s.seqBreaks++
				return
			}
			if m.Seq() != s.lastSeq[msg.Subject]+1 {
				s.seqBreaks++
			}
			s.lastSeq[msg.Subject] = m.Seq()
			if r, err := m.AsReset(); err == nil {
				sub, _ := proto.ParseSubject(msg.Subject)
				s.reasons[sub.Instrument] = append(s.reasons[sub.Instrument], r.Reason())
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}

	// The subscriber first, so that it sees every trade the feed publishes.
	var ins []marketdata.Instrument
	for _, sym := range symbols {
		ins = append(ins, marketdata.Instrument{Venue: vc.name, Symbol: sym})
	}
	m, err := marketdata.NewMarket(natstest.Connect(t, ns.ClientURL()), ins, marketdata.Handlers{
		Locker: &s.mu,
		Book:   func(b *marketdata.Book, _, _ []proto.Level) { s.books[b.Instrument.Symbol] = b },
		Reset: func(b *marketdata.Book, why string) {
			s.resets[b.Instrument.Symbol] = append(s.resets[b.Instrument.Symbol], why)
		},
		Trade: func(in marketdata.Instrument, _ proto.TradeView) { s.trades[in.Symbol]++ },
		Error: func(err error) { s.errors = append(s.errors, err.Error()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	mctx, stopMarket := context.WithCancel(context.Background())
	mdone := make(chan struct{})
	go func() { defer close(mdone); _ = m.Run(mctx) }()
	t.Cleanup(func() { stopMarket(); <-mdone })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("feed: %v", err)
		}
	})
	return s
}

// stepUntil steps the simulator until cond holds: stepping is what makes
// progress here, so polling while stepping is the synchronization.
func (s *suite) stepUntil(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: timed out waiting for %s", s.vc.name, what)
		}
		s.sim.Step(1)
		<-tick.C
	}
}

// waitUntil waits for cond without stepping.
func (s *suite) waitUntil(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: timed out waiting for %s", s.vc.name, what)
		}
		time.Sleep(2 * time.Millisecond) // polls: the feed and the subscriber run in other goroutines
	}
}

func (s *suite) ready() bool { ok, _ := s.svc.Ready(); return ok }

// joined reports whether the subscriber's book of symbol is live and equal,
// level for level, to the simulator's true book.
func (s *suite) joined(symbol string) bool {
	tb, ta, _ := s.sim.Book(s.vc.futures, strings.ToUpper(symbol))
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.books[symbol]
	return b != nil && b.Live() && same(b.AppendBids(nil, 0), tb) && same(b.AppendAsks(nil, 0), ta)
}

func same(a, b []proto.Level) bool {
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

// allTrades reports whether the subscriber has every trade of symbol the
// simulator sent.
func (s *suite) allTrades(symbol string) bool {
	sent := s.vc.sent(s.sim, symbol)
	s.mu.Lock()
	defer s.mu.Unlock()
	return sent > 0 && s.trades[symbol] == sent
}

func (s *suite) count(name string) float64 {
	mfs, err := s.reg.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// resetReasons returns why symbol's book was reset, in order.
func (s *suite) resetReasons(symbol string) []proto.ResetReason {
	s.rawMu.Lock()
	defer s.rawMu.Unlock()
	return append([]proto.ResetReason(nil), s.reasons[symbol]...)
}

func (s *suite) noSequenceBreaks() {
	s.t.Helper()
	s.rawMu.Lock()
	defer s.rawMu.Unlock()
	if s.seqBreaks != 0 {
		s.t.Fatalf("%s: %d breaks in the subjects' sequence numbers", s.vc.name, s.seqBreaks)
	}
}

func (s *suite) noSubscriberErrors() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.errors {
		// Snapshot requests made before the feed subscribed its snapshot
		// subjects find no responder and are retried: that is no fault.
		if !strings.Contains(e, "no responders") {
			s.t.Fatalf("%s: the subscriber saw %v", s.vc.name, s.errors)
		}
	}
}

// TestEveryVenueBooksAndTradesMatchTheVenue: books equal the venue's level
// for level as a subscriber joins them; every trade sent is published,
// once; no gap on a clean run.
func TestEveryVenueBooksAndTradesMatchTheVenue(t *testing.T) {
	for _, vc := range venues {
		t.Run("venue="+vc.name, func(t *testing.T) {
			s := newSuite(t, vc, 0, "btcusdt", "ethusdt")
			s.stepUntil("ready", s.ready)
			for range 300 {
				s.sim.Step(1)
			}
			for _, sym := range s.symbols {
				s.stepUntil(sym+" joined and matching", func() bool { return s.joined(sym) })
				s.waitUntil(sym+": every trade", func() bool { return s.allTrades(sym) })
			}
			if g := s.count("paddock_feed_book_gaps_total"); g != 0 {
				t.Fatalf("%v gaps on a clean run", g)
			}
			for _, sym := range s.symbols {
				if r := s.resetReasons(sym); len(r) != 0 {
					t.Fatalf("%s reset on a clean run: %v", sym, r)
				}
			}
			s.noSequenceBreaks()
			s.noSubscriberErrors()
		})
	}
}

// TestEveryVenueGapResetsOneInstrument: a lost book update Resets that
// instrument only, which resyncs; the other carries on untouched.
func TestEveryVenueGapResetsOneInstrument(t *testing.T) {
	for _, vc := range venues {
		t.Run("venue="+vc.name, func(t *testing.T) {
			s := newSuite(t, vc, 0, "btcusdt", "ethusdt")
			s.stepUntil("joined", func() bool { return s.joined("btcusdt") && s.joined("ethusdt") })
			vc.gap(s.sim, "BTCUSDT")
			s.stepUntil("one gap", func() bool { return s.count("paddock_feed_book_gaps_total") == 1 })
			s.stepUntil("btcusdt joined again", func() bool { return s.joined("btcusdt") })
			s.stepUntil("ethusdt matching", func() bool { return s.joined("ethusdt") })
			if r := s.resetReasons("btcusdt"); len(r) != 1 || r[0] != proto.ResetGap {
				t.Fatalf("btcusdt resets %v, want one gap", r)
			}
			if r := s.resetReasons("ethusdt"); len(r) != 0 {
				t.Fatalf("the other instrument was reset: %v", r)
			}
			s.noSequenceBreaks()
		})
	}
}

// TestEveryVenueRecoversFromALostConnection: a dropped connection Resets
// the books, reconnects (counted) and resyncs.
func TestEveryVenueRecoversFromALostConnection(t *testing.T) {
	for _, vc := range venues {
		t.Run("venue="+vc.name, func(t *testing.T) {
			s := newSuite(t, vc, 0, "btcusdt")
			s.stepUntil("joined", func() bool { return s.joined("btcusdt") })
			s.sim.DropConnections()
			s.stepUntil("reconnected", func() bool { _, opened := s.sim.Connections(); return opened >= 2 })
			s.stepUntil("joined again", func() bool { return s.joined("btcusdt") })
			if s.count("paddock_feed_reconnects_total") < 1 {
				t.Fatal("the reconnect was not counted")
			}
			if r := s.resetReasons("btcusdt"); len(r) == 0 || r[0] != proto.ResetDisconnect {
				t.Fatalf("resets %v, want a disconnect Reset first", r)
			}
			s.noSequenceBreaks()
		})
	}
}

// TestEveryVenueReplacesASilentConnection: a connection that goes quiet is
// replaced, and the books resync.
func TestEveryVenueReplacesASilentConnection(t *testing.T) {
	for _, vc := range venues {
		t.Run("venue="+vc.name, func(t *testing.T) {
			s := newSuite(t, vc, 300*time.Millisecond, "btcusdt")
			s.stepUntil("joined", func() bool { return s.joined("btcusdt") })
			s.sim.Stall()
			s.waitUntil("a new connection", func() bool { _, opened := s.sim.Connections(); return opened >= 2 })
			s.stepUntil("joined again", func() bool { return s.joined("btcusdt") })
			if r := s.resetReasons("btcusdt"); len(r) == 0 || r[0] != proto.ResetStale {
				t.Fatalf("resets %v, want a stale Reset first", r)
			}
		})
	}
}

// TestEveryVenueCountsAndDropsBadFrames: damaged frames are counted by
// reason and dropped; books and trades carry on.
func TestEveryVenueCountsAndDropsBadFrames(t *testing.T) {
	for _, vc := range venues {
		t.Run("venue="+vc.name, func(t *testing.T) {
			s := newSuite(t, vc, 0, "btcusdt")
			s.stepUntil("joined", func() bool { return s.joined("btcusdt") })
			for _, f := range []string{`{"truncated":`, `not json at all`, `[1,2,3]`, "{\"a\":\"\x01\"}"} {
				s.sim.SendRaw(vc.futures, []byte(f))
			}
			s.stepUntil("the bad frames counted", func() bool { return s.count("paddock_feed_parse_errors_total") == 4 })
			for range 50 {
				s.sim.Step(1)
			}
			s.stepUntil("still matching", func() bool { return s.joined("btcusdt") })
			s.waitUntil("every trade", func() bool { return s.allTrades("btcusdt") })
			if g := s.count("paddock_feed_book_gaps_total"); g != 0 {
				t.Fatalf("bad frames caused %v gaps", g)
			}
		})
	}
}
