// Package marketdata is the subscriber side of the feed (SPEC.md section 6):
// it subscribes to instruments' market data, joins each order book from a
// snapshot request spliced with the stream by sequence number, applies
// deltas, detects gaps and damaged messages and rejoins, and hands books,
// trades and venue health to handlers in arrival order. The strategy SDK
// (sandbox/client) re-exports it; the node, tools and consoles use it
// directly. A Market is run by one goroutine (see Market).
package marketdata

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/book"
	"github.com/paddockhq/paddock/proto"
)

// Instrument names one instrument as the feed does.
type Instrument struct {
	Venue  string `json:"venue"`  // binance, binance-perp, ...
	Symbol string `json:"symbol"` // btcusdt
}

func (i Instrument) String() string { return i.Venue + ":" + i.Symbol }

// Book is an instrument's exact order book, joined and kept per proto/SPEC.md
// section 6. It is owned by the Market's goroutine: read it only inside a
// handler, and copy what must outlive the call.
type Book struct {
	Instrument Instrument
	book.Book
	live     bool   // joined and in sequence
	seq      uint64 // last orderbook seq applied
	updateID uint64 // the venue's last update id
	retryAt  time.Time
	Resyncs  uint64 // times the book was discarded (Reset, gap, bad message)
}

// Live reports whether the book is joined and in sequence. While it is not,
// its contents are stale and must not be traded on.
func (b *Book) Live() bool { return b.live }

// Seq is the sequence number of the last orderbook message applied.
func (b *Book) Seq() uint64 { return b.seq }

// Mid returns (best bid + best ask) / 2, exactly.
func (b *Book) Mid() (proto.Decimal, bool) {
	bid, ok1 := b.BestBid()
	ask, ok2 := b.BestAsk()
	if !ok1 || !ok2 || !b.live {
		return proto.Decimal{}, false
	}
	if bid.Price.Exp != ask.Price.Exp || bid.Price.Exp <= proto.MinExp {
		return proto.Decimal{}, false
	}
	s := bid.Price.Mant + ask.Price.Mant
	if s < 0 { // overflow
		return proto.Decimal{}, false
	}
	if s%2 == 0 {
		return proto.Decimal{Mant: s / 2, Exp: bid.Price.Exp}, true
	}
	if s > (1<<63-1)/5 {
		return proto.Decimal{}, false
	}
	return proto.Decimal{Mant: s * 5, Exp: bid.Price.Exp - 1}, true
}

// Handlers are called from the Market's goroutine, in the order the
// messages arrived. Any may be nil. Views passed to them are valid only
// during the call.
type Handlers struct {
	// Book is called after a book was joined, replaced or updated; levels
	// lists what changed (nil after a join or a snapshot).
	Book func(b *Book, bids, asks []proto.Level)
	// Reset is called when a book becomes unusable (a Reset from the feed, a
	// sequence gap or a damaged message); it is rejoined automatically.
	Reset func(b *Book, why string)
	// Trade is called for every trade, in sequence.
	Trade func(in Instrument, t proto.TradeView)
	// Status is called for every feed health message of a venue in use.
	Status func(venue string, s proto.StatusView)
	// Error reports what was dropped and why (damaged messages, lost
	// trades); the Market carries on.
	Error func(err error)
	// Locker, when set, is held while the Market changes a book and calls
	// the handlers (never across a NATS request), so that other goroutines
	// may read the books under it.
	Locker sync.Locker
}

// Market subscribes to instruments' market data and keeps their books. Run
// it once; it is not safe for concurrent use, and everything happens on the
// goroutine that calls Run.
type Market struct {
	nc      *nats.Conn
	prefix  string // "" live; "replay.<env>." for a replay namespace
	h       Handlers
	ch      chan *nats.Msg
	books   map[string]*Book // by orderbook subject
	trades  map[string]*tradeStream
	venues  map[string]bool
	timeout time.Duration
	levels  [2][]proto.Level

	clock atomic.Int64 // the latest message time seen, ns (Now)

	subsMu   sync.Mutex
	subs     []*trackedSub // Run's, for Dropped
	reported int           // drops already reported as ErrSlow (Run's goroutine)
}

// trackedSub remembers a subscription's drop count past its Unsubscribe, so
// that Dropped never goes down.
type trackedSub struct {
	s    *nats.Subscription
	last int
}

// Pending is the most market data messages a Market buffers between NATS
// and its goroutine. Past it NATS drops messages for this subscriber:
// counted (Dropped), reported as ErrSlow, and the books concerned resync
// through the sequence gap.
const Pending = 65536

type tradeStream struct {
	in  Instrument
	seq uint64
}

// ErrSlow is reported when the Market fell behind and NATS dropped
// messages for it; the books concerned are rejoined.
var ErrSlow = errors.New("client: market data consumer too slow; messages were dropped")

// NewMarket prepares a Market for the given instruments; Run subscribes.
func NewMarket(nc *nats.Conn, instruments []Instrument, h Handlers) (*Market, error) {
	return NewMarketAt(nc, "", instruments, h)
}

// NewMarketAt is NewMarket on a namespace: prefix "replay.<env>" reads an
// environment's replay (every subject, snapshot requests included, under
// it); "" is the live feed.
func NewMarketAt(nc *nats.Conn, prefix string, instruments []Instrument, h Handlers) (*Market, error) {
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	m := &Market{nc: nc, prefix: prefix, h: h, ch: make(chan *nats.Msg, Pending), books: map[string]*Book{},
		trades: map[string]*tradeStream{}, venues: map[string]bool{}, timeout: 2 * time.Second}
	for _, in := range instruments {
		ob, err := proto.DataSubject(in.Venue, in.Symbol, proto.EventOrderbook)
		if err != nil {
			return nil, fmt.Errorf("instrument %s: %w", in, err)
		}
		tr, _ := proto.DataSubject(in.Venue, in.Symbol, proto.EventTrades)
		m.books[prefix+ob] = &Book{Instrument: in}
		m.trades[prefix+tr] = &tradeStream{in: in}
		m.venues[in.Venue] = true
	}
	return m, nil
}

// Run subscribes, joins every book and delivers market data to the
// handlers until ctx ends. All subscriptions feed one channel, so handlers
// see one interleaving, in arrival order.
func (m *Market) Run(ctx context.Context) error {
	var subs []*nats.Subscription
	defer func() {
		m.Dropped() // keep the final counts
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for ob := range m.books {
		b := m.books[ob]
		w, _ := proto.DataWildcard(b.Instrument.Venue, b.Instrument.Symbol)
		w = m.prefix + w
		s, err := m.nc.ChanSubscribe(w, m.ch)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", w, err)
		}
		_ = s.SetPendingLimits(-1, -1) // the channel is the bound
		subs = append(subs, s)
		m.track(s)
	}
	for v := range m.venues {
		hs, err := proto.HealthSubject(v)
		if err != nil {
			return err
		}
		hs = m.prefix + hs
		s, err := m.nc.ChanSubscribe(hs, m.ch)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", hs, err)
		}
		subs = append(subs, s)
		m.track(s)
	}
	// The subscriptions exist before any snapshot is requested, as the
	// joining procedure requires; what arrives meanwhile waits in m.ch.
	if err := m.nc.Flush(); err != nil {
		return err
	}
	for _, b := range m.books {
		m.join(ctx, b)
	}
	var rejoin []*Book
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg := <-m.ch:
			m.lock()
			rejoin = m.handle(msg, rejoin[:0])
			m.unlock()
			for _, b := range rejoin {
				m.join(ctx, b)
			}
		case <-tick.C:
			if d := m.Dropped(); d > m.reported {
				m.report(fmt.Errorf("%w (%d since the last report)", ErrSlow, d-m.reported))
				m.reported = d
			}
			for _, b := range m.books {
				if !b.live && !b.retryAt.IsZero() && time.Now().After(b.retryAt) {
					m.join(ctx, b)
				}
			}
		}
	}
}

func (m *Market) track(s *nats.Subscription) {
	m.subsMu.Lock()
	m.subs = append(m.subs, &trackedSub{s: s})
	m.subsMu.Unlock()
}

// Now is the market's clock: the time of the latest message it received
// (the exchange's event time). On a replay it is the replay clock, which
// a strategy uses instead of the wall clock. Zero before any message.
func (m *Market) Now() time.Time {
	if t := m.clock.Load(); t > 0 {
		return time.Unix(0, t).UTC()
	}
	return time.Time{}
}

// Dropped is how many messages NATS dropped for this Market because it fell
// Pending messages behind. Safe from any goroutine.
func (m *Market) Dropped() int {
	m.subsMu.Lock()
	defer m.subsMu.Unlock()
	n := 0
	for _, t := range m.subs {
		if d, err := t.s.Dropped(); err == nil && d > t.last {
			t.last = d
		}
		n += t.last
	}
	return n
}

func (m *Market) lock() {
	if m.h.Locker != nil {
		m.h.Locker.Lock()
	}
}

func (m *Market) unlock() {
	if m.h.Locker != nil {
		m.h.Locker.Unlock()
	}
}

func (m *Market) report(err error) {
	if m.h.Error != nil {
		m.h.Error(err)
	}
}

// join requests a snapshot and loads it (SPEC.md 6, steps 2-3); buffered
// messages with seq <= S are then skipped by handle.
func (m *Market) join(ctx context.Context, b *Book) {
	subj, _ := proto.SnapshotSubject(b.Instrument.Venue, b.Instrument.Symbol)
	subj = m.prefix + subj
	rctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	m.lock()
	b.retryAt = time.Now().Add(time.Second) // unless this succeeds
	m.unlock()
	reply, err := m.nc.RequestWithContext(rctx, subj, nil)
	if err != nil {
		if ctx.Err() == nil {
			m.report(fmt.Errorf("snapshot %s: %w", b.Instrument, err))
		}
		return
	}
	m.lock()
	defer m.unlock()
	msg, err := proto.Decode(reply.Data)
	if err != nil {
		m.report(fmt.Errorf("snapshot %s: %w", b.Instrument, err))
		return
	}
	if msg.Type() == proto.TypeReset {
		return // the feed is resynchronizing: its next stream snapshot (or a retry) joins
	}
	if b.live && msg.Seq() <= b.seq {
		return // a stream snapshot joined meanwhile
	}
	m.load(b, msg)
}

func (m *Market) load(b *Book, msg proto.Message) {
	v, err := msg.AsBookSnapshot()
	if err == nil {
		m.levels[0], m.levels[1] = m.levels[0][:0], m.levels[1][:0]
		for i := range v.NumBids() {
			m.levels[0] = append(m.levels[0], v.Bid(i))
		}
		for i := range v.NumAsks() {
			m.levels[1] = append(m.levels[1], v.Ask(i))
		}
		err = b.Load(m.levels[0], m.levels[1])
	}
	if err != nil {
		b.Reset()
		m.report(fmt.Errorf("snapshot %s: %w", b.Instrument, err))
		return
	}
	b.live, b.seq, b.updateID, b.retryAt = true, msg.Seq(), v.LastUpdateID(), time.Time{}
	if m.h.Book != nil {
		m.h.Book(b, nil, nil)
	}
}

func (m *Market) invalidate(b *Book, why string) {
	wasLive := b.live
	b.live = false
	b.Resyncs++
	if m.h.Reset != nil && wasLive {
		m.h.Reset(b, why)
	}
}

// handle processes one message with the lock held; it returns the books
// that must be rejoined (appended to rejoin) once the lock is released.
func (m *Market) handle(nm *nats.Msg, rejoin []*Book) []*Book {
	msg, err := proto.Decode(nm.Data)
	// The clock follows market data only: a Status heartbeat is stamped
	// with the wall clock (a replayer's too), which is not the market's.
	if err == nil && msg.Flags()&proto.FlagSnapshotReply == 0 && msg.Type() != proto.TypeStatus {
		t := msg.EventTime()
		if t <= 0 {
			t = msg.RecvTime()
		}
		if t > m.clock.Load() {
			m.clock.Store(t)
		}
	}
	if err != nil {
		m.report(fmt.Errorf("%s: %w", nm.Subject, err))
		if b := m.books[nm.Subject]; b != nil && b.live {
			m.invalidate(b, "damaged orderbook message")
			b.retryAt = time.Now()
		}
		return rejoin
	}
	if b := m.books[nm.Subject]; b != nil {
		if m.onBook(b, msg) {
			rejoin = append(rejoin, b)
		}
		return rejoin
	}
	if ts := m.trades[nm.Subject]; ts != nil {
		t, err := msg.AsTrade()
		if err != nil {
			return rejoin // other types on the trades subject are not for this client version
		}
		if ts.seq != 0 && msg.Seq() != ts.seq+1 && msg.Seq() > ts.seq {
			m.report(fmt.Errorf("trades %s: %d lost (seq %d after %d)", ts.in, msg.Seq()-ts.seq-1, msg.Seq(), ts.seq))
		}
		if msg.Seq() <= ts.seq {
			return rejoin // a duplicate
		}
		ts.seq = msg.Seq()
		if m.h.Trade != nil {
			m.h.Trade(ts.in, t)
		}
		return rejoin
	}
	if st, err := msg.AsStatus(); err == nil && m.h.Status != nil {
		m.h.Status(msg.Venue().String(), st)
	}
	return rejoin
}

// onBook applies one orderbook message (SPEC.md 6, steps 3-4); true means
// the book must be rejoined.
func (m *Market) onBook(b *Book, msg proto.Message) bool {
	switch msg.Type() {
	case proto.TypeReset:
		if b.live || b.retryAt.IsZero() {
			m.invalidate(b, "the feed reset the book (resynchronizing with the venue)")
		}
		b.live, b.seq = false, msg.Seq()
		b.retryAt = time.Now().Add(2 * time.Second) // a stream snapshot should come first
		return false
	case proto.TypeBookSnapshot: // a stream snapshot replaces the book
		if !b.live || msg.Seq() > b.seq {
			m.load(b, msg)
		}
		return false
	case proto.TypeBookDelta:
	default:
		return false
	}
	if !b.live {
		return false // not joined: a retry or a stream snapshot will join
	}
	switch s := msg.Seq(); {
	case s <= b.seq:
		return false // covered by the snapshot
	case s != b.seq+1:
		m.invalidate(b, fmt.Sprintf("sequence gap: %d after %d", s, b.seq))
		return true
	}
	v, _ := msg.AsBookDelta()
	m.levels[0], m.levels[1] = m.levels[0][:0], m.levels[1][:0]
	for i := range v.NumBids() {
		m.levels[0] = append(m.levels[0], v.Bid(i))
	}
	for i := range v.NumAsks() {
		m.levels[1] = append(m.levels[1], v.Ask(i))
	}
	if err := b.Apply(m.levels[0], m.levels[1]); err != nil {
		m.invalidate(b, "delta does not apply: "+err.Error())
		return true
	}
	b.seq, b.updateID = msg.Seq(), v.LastUpdateID()
	if m.h.Book != nil {
		m.h.Book(b, m.levels[0], m.levels[1])
	}
	return false
}

// MarkLive marks a book loaded by hand as joined, for tests and benchmarks
// that drive a consumer without a feed.
func MarkLive(b *Book) { b.live = true }
