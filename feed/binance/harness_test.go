package binance_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/book"
	"github.com/paddockhq/paddock/feed"
	"github.com/paddockhq/paddock/feed/binance"
	"github.com/paddockhq/paddock/feed/sim"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
	"github.com/prometheus/client_golang/prometheus"
)

// harness runs the real pieces on loopback: an embedded NATS server, the
// simulator, one Binance venue adapter and the feed service.
type harness struct {
	t       *testing.T
	nats    *embednats.Server
	sim     *sim.Sim
	nc      *nats.Conn // the feed's connection
	sub     *nats.Conn // the test subscriber's connection
	outlet  *feed.Outlet
	adapter *binance.Adapter
	svc     *feed.Service
	metrics *feed.Metrics
	reg     *prometheus.Registry
	futures bool
	cancel  context.CancelFunc
	done    chan error
}

type harnessOpts struct {
	futures bool
	symbols []string
	events  feed.Events
	simCfg  sim.Config
	cfg     binance.Config
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	ns := natstest.Server(t, embednats.Options{})
	for _, s := range o.symbols {
		o.simCfg.Symbols = append(o.simCfg.Symbols, sim.Symbol{Name: strings.ToUpper(s), Futures: o.futures, Price: 27123.45})
	}
	sm, err := sim.New("127.0.0.1:0", o.simCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sm.Close() })
	h := &harness{t: t, nats: ns, sim: sm, futures: o.futures, reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	h.nc = natstest.Connect(t, ns.ClientURL())
	h.sub = natstest.Connect(t, ns.ClientURL())
	h.metrics = feed.NewMetrics(h.reg)
	venue := proto.VenueBinance
	o.cfg.WSURL, o.cfg.RESTURL = sm.SpotWS(), sm.SpotREST()
	if o.futures {
		venue = proto.VenueBinancePerp
		o.cfg.WSURL, o.cfg.RESTURL = sm.PerpWS(), sm.PerpREST()
		o.cfg.Futures = true
	}
	if o.events == (feed.Events{}) {
		o.events = feed.Events{Trades: true, Orderbook: true, BBO: true}
	}
	if o.cfg.BackoffMin == 0 {
		o.cfg.BackoffMin, o.cfg.BackoffMax = 10*time.Millisecond, 100*time.Millisecond
	}
	h.outlet, err = feed.NewOutlet(venue, o.symbols, o.events, h.nc, h.metrics, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.adapter, err = binance.New(o.cfg, h.outlet)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = feed.NewService(h.nc, []feed.VenueEntry{{Outlet: h.outlet, Venue: h.adapter}}, feed.ServiceOptions{StatusInterval: 50 * time.Millisecond})
	return h
}

// start runs the service; subscribers should be created first so that they
// see every message.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.svc.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("service: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Error("service did not stop within 10s")
	}
}

// stepUntil steps the simulator until cond holds. Stepping is what makes
// progress here, so polling while stepping is the synchronization.
func (h *harness) stepUntil(what string, timeout time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		h.sim.Step(1)
		<-tick.C
	}
}

// waitUntil waits for cond without stepping.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func (h *harness) metric(name string) float64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
	}
	return sum
}

// bookWatcher rebuilds one instrument's book from the orderbook subject the
// way a subscriber must: BookSnapshot replaces, BookDelta applies, Reset
// invalidates, and every sequence number must follow the previous one.
type bookWatcher struct {
	mu        sync.Mutex
	book      book.Book
	valid     bool
	lastID    uint64
	lastSeq   uint64
	seqErrors int
	snapshots int
	deltas    int
	resets    []proto.ResetReason
	errs      []string
}

func (h *harness) watchBook(symbol string) *bookWatcher {
	w := &bookWatcher{}
	subj, _ := proto.DataSubject(h.outlet.Venue.String(), symbol, proto.EventOrderbook)
	_, err := h.sub.Subscribe(subj, func(msg *nats.Msg) {
		w.mu.Lock()
		defer w.mu.Unlock()
		m, err := proto.Decode(msg.Data)
		if err != nil {
			w.errs = append(w.errs, err.Error())
			return
		}
		if m.Seq() != w.lastSeq+1 {
			w.seqErrors++
		}
		w.lastSeq = m.Seq()
		switch m.Type() {
		case proto.TypeBookSnapshot:
			v, _ := m.AsBookSnapshot()
			bids, asks := levelsOf(v)
			if err := w.book.Load(bids, asks); err != nil {
				w.errs = append(w.errs, err.Error())
			}
			w.valid, w.lastID = true, v.UpdateID()
			w.snapshots++
		case proto.TypeBookDelta:
			v, _ := m.AsBookDelta()
			if !w.valid {
				w.errs = append(w.errs, "delta while the book is invalid")
				return
			}
			bids, asks := levelsOf(v)
			if err := w.book.Apply(bids, asks); err != nil {
				w.errs = append(w.errs, err.Error())
			}
			w.lastID = v.LastUpdateID()
			w.deltas++
		case proto.TypeReset:
			v, _ := m.AsReset()
			w.valid = false
			w.resets = append(w.resets, v.Reason())
		default:
			w.errs = append(w.errs, "unexpected "+m.Type().String())
		}
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.sub.Flush(); err != nil {
		h.t.Fatal(err)
	}
	return w
}

func levelsOf(v proto.BookView) (bids, asks []proto.Level) {
	for i := range v.NumBids() {
		bids = append(bids, v.Bid(i))
	}
	for i := range v.NumAsks() {
		asks = append(asks, v.Ask(i))
	}
	return bids, asks
}

// at reports whether the watcher's book is valid at exchange update id id.
func (w *bookWatcher) at(id uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.valid && w.lastID == id
}

// matches compares the watcher's book with the simulator's true book once
// both are at the same update id.
func (h *harness) matches(w *bookWatcher, symbol string) {
	h.t.Helper()
	upper := strings.ToUpper(symbol)
	var bids, asks []proto.Level
	var id uint64
	waitUntil(h.t, "the subscriber's book to reach the simulator's update id", 5*time.Second, func() bool {
		bids, asks, id = h.sim.Book(h.futures, upper)
		return w.at(id)
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	gotB, gotA := w.book.AppendBids(nil, 0), w.book.AppendAsks(nil, 0)
	if err := sameLevels(gotB, bids); err != nil {
		h.t.Fatalf("%s bids at update %d: %v", symbol, id, err)
	}
	if err := sameLevels(gotA, asks); err != nil {
		h.t.Fatalf("%s asks at update %d: %v", symbol, id, err)
	}
	if len(w.errs) > 0 {
		h.t.Fatalf("subscriber errors: %v", w.errs)
	}
}

func sameLevels(got, want []proto.Level) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d levels, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Price.Cmp(want[i].Price) != 0 || got[i].Qty.Cmp(want[i].Qty) != 0 {
			return fmt.Errorf("level %d is %v@%v, want %v@%v", i, got[i].Qty, got[i].Price, want[i].Qty, want[i].Price)
		}
	}
	return nil
}

// tradeWatcher records every trade published for one instrument.
type tradeWatcher struct {
	mu        sync.Mutex
	ids       []uint64
	seqErrors int
	lastSeq   uint64
	prices    []proto.Decimal
}

func (h *harness) watchTrades(symbol string) *tradeWatcher {
	w := &tradeWatcher{}
	subj, _ := proto.DataSubject(h.outlet.Venue.String(), symbol, proto.EventTrades)
	_, err := h.sub.Subscribe(subj, func(msg *nats.Msg) {
		tv, err := proto.DecodeTrade(msg.Data)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			w.seqErrors++
			return
		}
		if tv.Seq() != w.lastSeq+1 {
			w.seqErrors++
		}
		w.lastSeq = tv.Seq()
		w.ids = append(w.ids, tv.TradeID())
		w.prices = append(w.prices, tv.Price())
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.sub.Flush(); err != nil {
		h.t.Fatal(err)
	}
	return w
}

func (w *tradeWatcher) last() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ids) == 0 {
		return 0
	}
	return w.ids[len(w.ids)-1]
}

// exactlyOnce checks ids are consecutive, each exactly once, from the first
// received to want.
func (w *tradeWatcher) exactlyOnce(t *testing.T, want uint64) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ids) == 0 {
		t.Fatal("no trades received")
	}
	for i := 1; i < len(w.ids); i++ {
		if w.ids[i] != w.ids[i-1]+1 {
			t.Fatalf("trade %d has id %d after %d: lost or duplicated", i, w.ids[i], w.ids[i-1])
		}
	}
	if w.ids[len(w.ids)-1] != want {
		t.Fatalf("last trade id %d, want %d", w.ids[len(w.ids)-1], want)
	}
	if w.seqErrors != 0 {
		t.Fatalf("%d sequence-number breaks on the trades subject", w.seqErrors)
	}
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
