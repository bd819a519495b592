package feed

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/book"
	"github.com/paddockhq/paddock/proto"
	"github.com/prometheus/client_golang/prometheus"
)

var errNotInSync = errors.New("feed: book is not in sync")

// ErrCrossed is ApplyDelta's or LoadSnapshot's answer when the book would be
// crossed (best bid at or above best ask): corruption the sequence numbers
// did not reveal. Nothing is published; the adapter must Reset and resync.
var ErrCrossed = errors.New("feed: the book is crossed (best bid >= best ask)")

// Publisher is the part of *nats.Conn the feed publishes through. Publish must
// copy data before returning (nats.go does): the feed reuses its buffers.
type Publisher interface {
	Publish(subject string, data []byte) error
}

// Events says which event streams an instrument publishes.
type Events struct {
	Trades, Orderbook, BBO bool
}

// Times are the two header timestamps of a message, ns since the epoch.
type Times struct {
	Event int64 // exchange event time (0 = unknown)
	Recv  int64 // local receive time of the exchange frame
}

// Instrument is one instrument's publishing state: its exact book, the
// sequence numbers of its three subjects, and the buffer messages are
// encoded into. All methods lock the instrument, so a venue adapter and the
// snapshot service may call them concurrently; the adapter is still expected
// to serialize its own calls so that messages keep exchange order.
type Instrument struct {
	Venue  proto.VenueID
	Symbol string // subject token, lower case (btcusdt)
	Events Events

	pub     Publisher
	metrics *instrumentMetrics
	now     func() time.Time

	subjTrades, subjBook, subjBBO string

	mu       sync.Mutex
	book     book.Book
	inSync   bool
	lastID   uint64 // exchange update id the book is at
	lastTime Times  // the times of the last book update applied
	venueSeq uint64 // the venue's own sequence at lastID (Bybit's seq), 0 = none
	seqTrade uint64
	seqBook  uint64
	seqBBO   uint64
	buf      []byte
	bids     []proto.Level // scratch for snapshots
	asks     []proto.Level

	synced    atomic.Bool   // mirrors inSync for lock-free readiness checks
	published atomic.Uint64 // messages published, for the Status heartbeat
	gaps      atomic.Uint64 // book gaps, for the Status heartbeat
}

func newInstrument(venue proto.VenueID, name, symbol string, ev Events, pub Publisher, m *instrumentMetrics, now func() time.Time) (*Instrument, error) {
	in := &Instrument{Venue: venue, Symbol: symbol, Events: ev, pub: pub, metrics: m, now: now, buf: make([]byte, 0, 4096)}
	var err error
	if in.subjTrades, err = proto.DataSubject(name, symbol, proto.EventTrades); err != nil {
		return nil, err
	}
	if in.subjBook, err = proto.DataSubject(name, symbol, proto.EventOrderbook); err != nil {
		return nil, err
	}
	if in.subjBBO, err = proto.DataSubject(name, symbol, proto.EventBBO); err != nil {
		return nil, err
	}
	return in, nil
}

// publish sends in.buf on subject; the caller holds in.mu.
func (in *Instrument) publish(subject string, c prometheus.Counter, t Times) {
	if err := in.pub.Publish(subject, in.buf); err != nil {
		in.metrics.publishErrors.Inc()
		return
	}
	c.Inc()
	in.published.Add(1)
	if t.Event > 0 {
		in.metrics.latency.Observe(float64(in.now().UnixNano()-t.Event) / 1e9)
	}
}

func (in *Instrument) header(seq uint64, t Times) proto.Header {
	return proto.Header{Venue: in.Venue, Seq: seq, EventTime: t.Event, RecvTime: t.Recv}
}

// PublishTrade publishes a Trade on the trades subject.
func (in *Instrument) PublishTrade(t Times, tr *proto.Trade) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.seqTrade++
	h := in.header(in.seqTrade, t)
	var err error
	if in.buf, err = proto.AppendTrade(in.buf[:0], &h, tr); err != nil {
		in.seqTrade--
		return err
	}
	in.publish(in.subjTrades, in.metrics.trades, t)
	return nil
}

// PublishBBO publishes a BBO on the bbo subject.
func (in *Instrument) PublishBBO(t Times, q *proto.BBO) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.seqBBO++
	h := in.header(in.seqBBO, t)
	var err error
	if in.buf, err = proto.AppendBBO(in.buf[:0], &h, q); err != nil {
		in.seqBBO--
		return err
	}
	in.publish(in.subjBBO, in.metrics.bbos, t)
	return nil
}

// ApplyDelta applies an exchange diff that the adapter has checked for
// continuity, and publishes it as a BookDelta (with the venue's own
// sequence, venueSeq, where it has one; 0 otherwise). An error means the book could
// not take the update; the adapter must Reset and resync.
func (in *Instrument) ApplyDelta(t Times, firstID, lastID, venueSeq uint64, bids, asks []proto.Level) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.inSync {
		return errNotInSync
	}
	if err := in.book.Apply(bids, asks); err != nil {
		return err
	}
	if in.book.Crossed() {
		in.metrics.crossed.Inc()
		return ErrCrossed
	}
	in.lastID, in.venueSeq, in.lastTime = lastID, venueSeq, t
	d := proto.BookDelta{FirstUpdateID: firstID, LastUpdateID: lastID, Bids: bids, Asks: asks, VenueSeq: venueSeq}
	in.seqBook++
	h := in.header(in.seqBook, t)
	var err error
	if in.buf, err = proto.AppendBookDelta(in.buf[:0], &h, &d); err != nil {
		in.seqBook--
		return err
	}
	in.publish(in.subjBook, in.metrics.deltas, t)
	return nil
}

// LoadSnapshot replaces the book with an exchange snapshot, marks it in sync
// and publishes it as a BookSnapshot on the orderbook stream.
func (in *Instrument) LoadSnapshot(t Times, updateID, venueSeq uint64, bids, asks []proto.Level) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := in.book.Load(bids, asks); err != nil {
		in.book.Reset()
		return err
	}
	if in.book.Crossed() {
		in.book.Reset()
		in.metrics.crossed.Inc()
		return ErrCrossed
	}
	in.inSync, in.lastID, in.venueSeq, in.lastTime = true, updateID, venueSeq, t
	in.synced.Store(true)
	in.seqBook++
	if err := in.appendSnapshot(in.header(in.seqBook, t), updateID); err != nil {
		in.seqBook--
		in.inSync = false
		in.synced.Store(false)
		return err
	}
	in.publish(in.subjBook, in.metrics.snapshots, t)
	return nil
}

// appendSnapshot encodes the whole book into in.buf; the caller holds in.mu.
func (in *Instrument) appendSnapshot(h proto.Header, updateID uint64) error {
	in.bids = in.book.AppendBids(in.bids[:0], 0)
	in.asks = in.book.AppendAsks(in.asks[:0], 0)
	bids, asks := in.bids, in.asks
	// A book deeper than one message can carry is cut to the best levels;
	// Binance snapshots (<= 5000 per side) always fit.
	if n := proto.MaxLevels / 2; len(bids) > n || len(asks) > n {
		bids, asks = bids[:min(len(bids), n)], asks[:min(len(asks), n)]
	}
	var err error
	in.buf, err = proto.AppendBookSnapshot(in.buf[:0], &h, &proto.BookSnapshot{UpdateID: updateID, Bids: bids, Asks: asks, VenueSeq: in.venueSeq})
	return err
}

// Reset invalidates the book and publishes a Reset, unless the book was not
// in sync already (subscribers were told then).
func (in *Instrument) Reset(t Times, reason proto.ResetReason) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.inSync {
		return
	}
	in.inSync = false
	in.synced.Store(false)
	in.book.Reset()
	in.seqBook++
	h := in.header(in.seqBook, t)
	in.buf, _ = proto.AppendReset(in.buf[:0], &h, &proto.Reset{Reason: reason, LastUpdateID: in.lastID})
	in.publish(in.subjBook, in.metrics.resets, t)
}

// Checkpoint publishes the whole book as a BookSnapshot on the orderbook
// subject (a subscriber replaces its book with it, SPEC section 6), so that
// a recording can be replayed from any instant without reading the day
// from its start. Its times are the last update's: the book is that
// instant's. A book not in sync publishes nothing.
func (in *Instrument) Checkpoint() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.inSync {
		return
	}
	in.seqBook++
	if err := in.appendSnapshot(in.header(in.seqBook, in.lastTime), in.lastID); err != nil {
		in.seqBook--
		return
	}
	in.publish(in.subjBook, in.metrics.checkpoints, Times{})
}

// InSync reports whether the book is in sync with the exchange.
func (in *Instrument) InSync() bool { return in.synced.Load() }

// SnapshotReply encodes the reply to a snapshot request into dst: the current
// BookSnapshot flagged as a reply, with the stream sequence number it is
// consistent with, or a Reset flagged as a reply when the book is not in sync.
func (in *Instrument) SnapshotReply(dst []byte, recv int64) []byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	h := proto.Header{Flags: proto.FlagSnapshotReply, Venue: in.Venue, Seq: in.seqBook, RecvTime: recv}
	if !in.inSync {
		dst, _ = proto.AppendReset(dst, &h, &proto.Reset{Reason: proto.ResetResync, LastUpdateID: in.lastID})
		return dst
	}
	if err := in.appendSnapshot(h, in.lastID); err != nil {
		dst, _ = proto.AppendReset(dst, &h, &proto.Reset{Reason: proto.ResetResync, LastUpdateID: in.lastID})
		return dst
	}
	return append(dst, in.buf...)
}

// Book copies the current book (bids best first, asks best first) and its
// update id, for tests and diagnostics.
func (in *Instrument) Book() (bids, asks []proto.Level, updateID uint64, inSync bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.book.AppendBids(nil, 0), in.book.AppendAsks(nil, 0), in.lastID, in.inSync
}
