// Package replay delivers a recorded range of market data onto one
// environment's own subject namespace (<prefix>.market.data.<venue>.<
// instrument>.<event>, prefix replay.<env>), as the live feed would: the
// same message types with FlagReplay set, fresh per-subject sequence
// numbers, snapshot replies on <prefix>.market.snapshot... for the SPEC's
// joining procedure, and a Status heartbeat per venue. It starts from the
// checkpoint before the range, fast-forwards to the start without
// publishing, and stops exactly at the end, paced by the recorded exchange
// timestamps at a speed factor.
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paddockhq/paddock/book"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/record"
	"github.com/paddockhq/paddock/venue"
)

// Instrument is one replayed instrument.
type Instrument struct{ Venue, Symbol string }

// Config is one environment's replay.
type Config struct {
	// Prefix is the namespace, replay.<env>.
	Prefix      string
	Instruments []Instrument
	Start, End  time.Time
	// Speed is the pace against recorded time (1 = as recorded, 10 = ten
	// times faster); 0 is as fast as possible.
	Speed float64
	// Metrics, when set, counts deliveries and pacing lateness.
	Metrics *Metrics
	// Lookback is how far before Start (by store time) reading begins for
	// a venue with an instrument that has no checkpoint marker at or
	// before Start (default three checkpoint intervals of the default 1m).
	Lookback time.Duration
}

// Replayer runs one replay. Create with New; Run once; safe for concurrent
// use by its snapshot responder and Run.
type Replayer struct {
	c     Config
	m     *Metrics
	js    jetstream.JetStream
	nc    *nats.Conn
	clock clock.Clock
	log   *slog.Logger

	mu    sync.Mutex
	books map[string]*bookState // by recorded orderbook subject

	published atomic.Uint64
	now       atomic.Int64 // the replay clock: the last delivered message's time, ns
	done      chan struct{}
}

type bookState struct {
	inst    Instrument
	venueID proto.VenueID
	book    book.Book
	live    bool
	updID   uint64
	seq     uint64 // the replayed orderbook subject's last sequence number
	scratch [2][]proto.Level
}

// New prepares a replay; nc publishes (its user may publish only under
// Prefix), js reads the recording.
func New(js jetstream.JetStream, nc *nats.Conn, c Config, clk clock.Clock, log *slog.Logger) (*Replayer, error) {
	if !c.End.After(c.Start) {
		return nil, fmt.Errorf("replay: end %s is not after start %s", c.End, c.Start)
	}
	if c.Speed < 0 {
		return nil, errors.New("replay: negative speed")
	}
	if c.Lookback <= 0 {
		c.Lookback = 3 * time.Minute
	}
	if clk == nil {
		clk = clock.Real
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	r := &Replayer{c: c, m: c.Metrics, js: js, nc: nc, clock: clk, log: log.With("component", "replay"), books: map[string]*bookState{}, done: make(chan struct{})}
	for _, in := range c.Instruments {
		subj, err := proto.DataSubject(in.Venue, in.Symbol, proto.EventOrderbook)
		if err != nil {
			return nil, err
		}
		b := &bookState{inst: in}
		if v, ok := venue.ByName(in.Venue); ok {
			b.venueID = v.ID // until a recorded message says (a site-local instance's)
		}
		r.books[subj] = b
	}
	return r, nil
}

// Published counts the messages delivered.
func (r *Replayer) Published() uint64 { return r.published.Load() }

// Now is the replay clock: the recorded time of the last message
// delivered (zero before the first).
func (r *Replayer) Now() time.Time {
	if ns := r.now.Load(); ns > 0 {
		return time.Unix(0, ns).UTC()
	}
	return time.Time{}
}

// Done is closed when the replay has delivered its whole range.
func (r *Replayer) Done() <-chan struct{} { return r.done }

// cursor is one venue's recording, read in stored order: batches, split
// into the messages of the replayed instruments.
type cursor struct {
	it     jetstream.MessagesContext
	want   map[string]bool
	frames []frame // what is left of the current batch
	last   bool    // the current batch was the last one recorded when the replay began
	subj   string  // the head
	msg    proto.Message
	t      time.Time
	done   bool
}

type frame struct {
	subj string
	data []byte
}

func (c *cursor) next() {
	for {
		if len(c.frames) == 0 {
			if c.last {
				c.done = true
				return
			}
			m, err := c.it.Next()
			if err != nil {
				c.done = true
				return
			}
			_ = record.Frames(m.Data(), func(s string, d []byte) error {
				if c.want[s] {
					c.frames = append(c.frames, frame{s, d})
				}
				return nil
			})
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
				c.last = true
				c.it.Stop()
			}
			continue
		}
		f := c.frames[0]
		c.frames = c.frames[1:]
		pm, err := proto.Decode(f.data)
		if err != nil {
			continue // not a message of ours: skipped, never replayed
		}
		c.subj, c.msg, c.t = f.subj, pm, record.Time(pm)
		return
	}
}

// Run delivers the range and returns when it is done or ctx ends; the
// snapshot responder keeps answering (with the final books) until ctx ends.
func (r *Replayer) Run(ctx context.Context) error {
	sub, err := r.nc.Subscribe(r.c.Prefix+"."+proto.SnapshotPrefix+".>", r.snapshot)
	if err != nil {
		return fmt.Errorf("replay snapshot responder: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	var wg sync.WaitGroup
	defer wg.Wait()
	hctx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	wg.Go(func() { r.health(hctx) })

	cursors, err := r.open(ctx)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range cursors {
			c.it.Stop()
		}
	}()
	seqs := map[string]uint64{}
	started := false
	var wallStart time.Time
	buf := make([]byte, 0, 4096)
	for ctx.Err() == nil {
		c := earliest(cursors)
		if c == nil || !c.t.Before(r.c.End) {
			break
		}
		subj, msg, t := c.subj, c.msg, c.t
		c.next()
		if !started && t.Before(r.c.Start) {
			r.apply(subj, msg) // fast-forward: books only
			continue
		}
		// The range is the recorded order from the first message at or
		// after Start to the first at or after End; the books are
		// snapshotted as they were just before it.
		if !started {
			started, wallStart = true, r.clock.Now()
			r.startSnapshots(seqs)
		}
		r.apply(subj, msg)
		if r.c.Speed > 0 {
			due := wallStart.Add(time.Duration(float64(t.Sub(r.c.Start)) / r.c.Speed))
			if !clock.SleepUntil(r.clock, due, ctx.Done()) {
				break
			}
			r.m.late.Observe(r.clock.Now().Sub(due).Seconds())
		}
		seqs[subj]++
		buf = append(buf[:0], msg.Bytes()...)
		_ = proto.Restamp(buf, seqs[subj], proto.FlagReplay)
		if b := r.bookOf(subj); b != nil {
			r.mu.Lock()
			b.seq = seqs[subj]
			r.mu.Unlock()
		}
		if err := r.nc.Publish(r.c.Prefix+"."+subj, buf); err != nil {
			return fmt.Errorf("replay publish: %w", err)
		}
		r.published.Add(1)
		r.m.delivered.Inc()
		r.now.Store(t.UnixNano())
	}
	if err := r.nc.Flush(); err != nil && ctx.Err() == nil {
		return err
	}
	if ctx.Err() == nil {
		close(r.done)
		r.log.Info("replay done", "messages", r.Published())
		<-ctx.Done() // the books stay answerable for the node
	}
	return nil
}

// open starts two ordered consumers per venue: its live recording, from
// the batch of the last checkpoint at or before Start of every replayed
// instrument (record.Seek; by store time Lookback before Start when an
// instrument has none), and its imported days that the range touches.
func (r *Replayer) open(ctx context.Context) ([]*cursor, error) {
	want := map[string]map[string]bool{}
	symbols := map[string][]string{}
	for _, in := range r.c.Instruments {
		if want[in.Venue] == nil {
			want[in.Venue] = map[string]bool{}
		}
		symbols[in.Venue] = append(symbols[in.Venue], in.Symbol)
		for _, ev := range []proto.Event{proto.EventTrades, proto.EventOrderbook, proto.EventBBO} {
			subj, _ := proto.DataSubject(in.Venue, in.Symbol, ev)
			want[in.Venue][subj] = true
		}
	}
	venues := make([]string, 0, len(want))
	for v := range want {
		venues = append(venues, v)
	}
	sort.Strings(venues)
	var out []*cursor
	for _, v := range venues {
		live, err := r.liveStart(ctx, v, symbols[v])
		if err != nil {
			return nil, err
		}
		var days []string
		for d := r.c.Start.UTC().Truncate(24 * time.Hour); d.Before(r.c.End); d = d.Add(24 * time.Hour) {
			for _, sym := range symbols[v] {
				days = append(days, record.ImportedSubject(v, sym, d))
			}
		}
		for _, cfg := range []jetstream.OrderedConsumerConfig{live, {FilterSubjects: days}} {
			c, err := r.cursor(ctx, v, cfg, want[v])
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// liveStart is where venue's live recording is read from: the earliest of
// its instruments' checkpoints at or before Start.
func (r *Replayer) liveStart(ctx context.Context, venue string, symbols []string) (jetstream.OrderedConsumerConfig, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{record.RecordingPrefix + "." + venue}}
	st, err := r.js.Stream(ctx, record.StreamName(venue))
	if err != nil {
		return cfg, fmt.Errorf("read the recording of %s: %w", venue, err)
	}
	var from uint64
	for _, sym := range symbols {
		cp, err := record.Seek(ctx, st, venue, sym, r.c.Start)
		if err != nil {
			r.log.Warn("no checkpoint to start from; reading by time", "venue", venue, "instrument", sym, "lookback", r.c.Lookback, "err", err)
			t := r.c.Start.Add(-r.c.Lookback)
			cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
			return cfg, nil
		}
		if from == 0 || cp.Seq < from {
			from = cp.Seq
		}
	}
	cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	return cfg, nil
}

func (r *Replayer) cursor(ctx context.Context, venue string, cfg jetstream.OrderedConsumerConfig, want map[string]bool) (*cursor, error) {
	cons, err := r.js.OrderedConsumer(ctx, record.StreamName(venue), cfg)
	if err != nil {
		return nil, fmt.Errorf("read the recording of %s: %w", venue, err)
	}
	it, err := cons.Messages(jetstream.PullMaxBytes(4 << 20)) // a few batches ahead: 256 of up to 1 MiB each would arrive in bursts that delay what the node receives on the same connection
	if err != nil {
		return nil, fmt.Errorf("read the recording of %s: %w", venue, err)
	}
	c := &cursor{it: it, want: want}
	if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 {
		c.done = true
		it.Stop()
	} else {
		c.next()
	}
	return c, nil
}

// earliest is the cursor whose head comes first (venues interleave by
// recorded time; within one venue the stored order stands).
func earliest(cs []*cursor) *cursor {
	var best *cursor
	for _, c := range cs {
		if !c.done && (best == nil || c.t.Before(best.t)) {
			best = c
		}
	}
	return best
}

func (r *Replayer) bookOf(subj string) *bookState { return r.books[subj] }

// apply keeps the replayer's copy of a book: a snapshot (checkpoint)
// loads it, a delta updates it, a Reset invalidates it until the next
// snapshot, exactly as a subscriber does.
func (r *Replayer) apply(subj string, m proto.Message) {
	b := r.books[subj]
	if b == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b.venueID = m.Venue()
	switch m.Type() {
	case proto.TypeBookSnapshot:
		v, _ := m.AsBookSnapshot()
		b.live = b.load(v, false) == nil
		b.updID = v.LastUpdateID()
	case proto.TypeBookDelta:
		if !b.live {
			return
		}
		v, _ := m.AsBookDelta()
		if b.load(v, true) != nil {
			b.live = false
			return
		}
		b.updID = v.LastUpdateID()
	case proto.TypeReset:
		b.live = false
		b.book.Reset()
	}
}

func (b *bookState) load(v proto.BookView, delta bool) error {
	b.scratch[0], b.scratch[1] = b.scratch[0][:0], b.scratch[1][:0]
	for i := range v.NumBids() {
		b.scratch[0] = append(b.scratch[0], v.Bid(i))
	}
	for i := range v.NumAsks() {
		b.scratch[1] = append(b.scratch[1], v.Ask(i))
	}
	if delta {
		return b.book.Apply(b.scratch[0], b.scratch[1])
	}
	return b.book.Load(b.scratch[0], b.scratch[1])
}

// startSnapshots publishes every live book, fast-forwarded to Start, as
// the first message of its replayed orderbook subject.
func (r *Replayer) startSnapshots(seqs map[string]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for subj, b := range r.books {
		if !b.live {
			continue
		}
		seqs[subj]++
		b.seq = seqs[subj]
		raw, err := b.encode(proto.Header{Flags: proto.FlagReplay, Venue: b.venueID, Seq: b.seq, EventTime: r.c.Start.UnixNano(), RecvTime: r.c.Start.UnixNano()})
		if err != nil {
			continue
		}
		if err := r.nc.Publish(r.c.Prefix+"."+subj, raw); err == nil {
			r.published.Add(1)
		}
	}
}

func (b *bookState) encode(h proto.Header) ([]byte, error) {
	bids, asks := b.book.AppendBids(nil, 0), b.book.AppendAsks(nil, 0)
	if n := proto.MaxLevels / 2; len(bids) > n || len(asks) > n {
		bids, asks = bids[:min(len(bids), n)], asks[:min(len(asks), n)]
	}
	return proto.AppendBookSnapshot(nil, &h, &proto.BookSnapshot{UpdateID: b.updID, Bids: bids, Asks: asks})
}

// snapshot answers <prefix>.market.snapshot.<venue>.<instrument> with the
// replayed book and the replayed sequence it is consistent with (a Reset
// reply while the book is not live), as the feed does live.
func (r *Replayer) snapshot(m *nats.Msg) {
	s, err := proto.ParseSubject(strings.TrimPrefix(m.Subject, r.c.Prefix+"."))
	if err != nil || s.Kind != proto.KindSnapshot || m.Reply == "" {
		return
	}
	subj, _ := proto.DataSubject(s.Venue, s.Instrument, proto.EventOrderbook)
	r.mu.Lock()
	b := r.books[subj]
	if b == nil {
		r.mu.Unlock()
		return
	}
	now := r.now.Load()
	h := proto.Header{Flags: proto.FlagSnapshotReply | proto.FlagReplay, Venue: b.venueID, Seq: b.seq, EventTime: now, RecvTime: now}
	var raw []byte
	if b.live && b.seq > 0 {
		raw, err = b.encode(h)
	} else {
		raw, err = proto.AppendReset(nil, &h, &proto.Reset{Reason: proto.ResetResync, LastUpdateID: b.updID})
	}
	r.mu.Unlock()
	if err == nil {
		_ = m.Respond(raw)
	}
}

// health publishes a Status per venue every second, as the feed does, so
// that a node's feed-health check sees the replayed venue up.
func (r *Replayer) health(ctx context.Context) {
	t := r.clock.NewTicker(time.Second)
	defer t.Stop()
	for {
		r.mu.Lock()
		byVenue := map[string]*proto.Status{}
		ids := map[string]proto.VenueID{}
		for _, b := range r.books {
			st := byVenue[b.inst.Venue]
			if st == nil {
				st = &proto.Status{State: proto.StateConnected, Connections: 1}
				byVenue[b.inst.Venue] = st
			}
			st.Instruments++
			if b.live {
				st.InSync++
			}
			if b.venueID != 0 {
				ids[b.inst.Venue] = b.venueID
			}
		}
		r.mu.Unlock()
		now := r.clock.Now().UnixNano()
		for v, st := range byVenue {
			st.LastData, st.Messages = now, r.published.Load()
			h := proto.Header{Flags: proto.FlagReplay, Venue: ids[v], EventTime: now, RecvTime: now}
			if raw, err := proto.AppendStatus(nil, &h, st); err == nil {
				_ = r.nc.Publish(r.c.Prefix+"."+proto.HealthPrefix+"."+v, raw)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}
