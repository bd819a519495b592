package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/paddockhq/paddock/proto"
)

// LeaseBucket is the key-value bucket where each venue's recorder holds
// its lease (key: the venue).
const LeaseBucket = "paddock_recorders"

// Recorder records one venue: a subscription to market.data.<venue>.>
// (a subscriber like any other: the feed's publish path does not change)
// whose messages go into batches stored on recording.<venue> every 50 ms.
// Losses are counted, never silent.
//
// Several replicas (feeds) may each run a venue's Recorder: one records,
// elected by a lease in LeaseBucket; the others stand by, keeping the last
// 3 leases' worth of messages in a ring. A replica that takes over reads
// the last stored batch and stores what followed it from its ring, so a
// failover neither loses nor repeats a message; and every store expects
// the recording's last sequence to be the one this replica stored last,
// so two replicas never both store (the loser of a race steps down).
//
// Create with NewRecorder, set Lease and ID if needed, then Run once. Its
// methods are safe for concurrent use.
type Recorder struct {
	// Lease is how long a leader's lease lasts without renewal (default
	// 10s): the longest a dead leader's venue goes unrecorded before a
	// standby takes over (from its ring: nothing is lost).
	Lease time.Duration
	// ID names this replica in the lease (default host-pid-random).
	ID string

	nc       *nats.Conn
	js       jetstream.JetStream
	venue    string
	subject  string
	every    time.Duration
	maxBatch int
	ringMax  int // bytes
	log      *slog.Logger
	m        *Metrics

	mu     sync.Mutex
	leader bool
	epoch  uint64   // counts leaderships: a batch of an ended one is not stored
	batch  *pending // the leader's batch being filled
	ring   []ringFrame
	head   int        // ring[head:] is held
	held   int        // bytes in ring[head:]
	queue  []*pending // batches for the writer, in order
	queued int        // bytes in queue
	wake   chan struct{}
	ending bool // Run is ending: the writer stores what is queued and returns

	subscribed chan struct{}
	started    time.Time
	recorded   atomic.Uint64
	isLeader   atomic.Bool
}

type pending struct {
	data  []byte
	n     int
	cps   map[string]time.Time // the batch's checkpoints: instrument -> first book's time
	epoch uint64
	// first marks a leadership's first batch, with the recording's last
	// sequence as read at the takeover: the writer's fence from then on.
	first   bool
	lastSeq uint64
}

type ringFrame struct {
	subj string
	data []byte
	at   time.Time
}

// NewRecorder prepares venue's recorder; the stream must exist (Ensure).
func NewRecorder(nc *nats.Conn, js jetstream.JetStream, venue string, log *slog.Logger, m *Metrics) (*Recorder, error) {
	if err := proto.CheckToken(venue); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	host, _ := os.Hostname()
	return &Recorder{Lease: 10 * time.Second, ID: host + "-" + strconv.Itoa(os.Getpid()) + "-" + nuid.Next()[:6],
		nc: nc, js: js, venue: venue, subject: RecordingPrefix + "." + venue, every: 50 * time.Millisecond, maxBatch: 1 << 20, ringMax: 256 << 20,
		log: log.With("component", "recorder", "venue", venue), m: m, subscribed: make(chan struct{}), wake: make(chan struct{}, 1)}, nil
}

// Subscribed is closed once the recorder's subscription is in place on
// the server (what is published after it is recorded) and it has taken
// the lease or stands by, watching for its handover.
func (r *Recorder) Subscribed() <-chan struct{} { return r.subscribed }

// Recorded counts the messages this replica stored (acknowledged by
// JetStream).
func (r *Recorder) Recorded() uint64 { return r.recorded.Load() }

// Leader reports whether this replica is the venue's recorder.
func (r *Recorder) Leader() bool { return r.isLeader.Load() }

// Run records (or stands by) until ctx ends, then drains its subscription
// (what was published before the end is recorded, not dropped), stores
// what it holds and hands its lease over.
func (r *Recorder) Run(ctx context.Context) error {
	if r.Lease <= 0 {
		r.Lease = 10 * time.Second
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	kv, err := r.js.CreateOrUpdateKeyValue(lctx, jetstream.KeyValueConfig{Bucket: LeaseBucket, TTL: r.Lease, History: 1,
		Description: "paddock: which replica records each venue"})
	cancel()
	if err != nil {
		return fmt.Errorf("record %s: lease bucket: %w", r.venue, err)
	}
	sub, err := r.nc.Subscribe(proto.DataPrefix+"."+r.venue+".>", r.add)
	if err != nil {
		return fmt.Errorf("record %s: %w", r.venue, err)
	}
	_ = sub.SetPendingLimits(1<<20, 512<<20)
	closed := sub.StatusChanged(nats.SubscriptionClosed)
	defer func() { _ = sub.Unsubscribe() }()
	if err := r.nc.Flush(); err != nil {
		return fmt.Errorf("record %s: %w", r.venue, err)
	}
	r.started = time.Now()
	// Batches as large as the server allows (fewer stores, better
	// compression), under the default 1 MiB.
	if mp := int(r.nc.MaxPayload()) - 8<<10; mp > 0 && mp < r.maxBatch {
		r.maxBatch = mp
	}

	var wg sync.WaitGroup
	wg.Go(r.write)
	l := &lease{r: r, kv: kv}
	// A lease handed over (deleted) is taken at once, not at the next
	// tick: the watch is in place before the first try.
	var handover <-chan jetstream.KeyValueEntry
	if w, err := kv.Watch(ctx, r.venue, jetstream.UpdatesOnly()); err == nil {
		defer func() { _ = w.Stop() }()
		handover = w.Updates()
	} else {
		r.log.Warn("watch the recording lease; a handover waits for the next tick", "err", err)
	}
	l.tick(ctx) // the first replica up takes the lease at once
	close(r.subscribed)
	flushT := time.NewTicker(r.every)
	defer flushT.Stop()
	leaseT := time.NewTicker(r.Lease / 4)
	defer leaseT.Stop()
	var lastDropped int
	for {
		select {
		case <-ctx.Done():
			if err := sub.Drain(); err == nil {
				select {
				case <-closed:
				case <-time.After(10 * time.Second):
					r.log.Warn("the recorder's subscription did not drain; what it held was not recorded")
				}
			}
			if !r.Leader() && l.rev != 0 {
				l.tick(context.WithoutCancel(ctx)) // stepped down on a backlog: take over again to store the ring
			}
			r.flush()
			r.mu.Lock()
			r.ending = true
			r.mu.Unlock()
			r.notify()
			wg.Wait()
			l.release()
			return nil
		case <-leaseT.C:
			l.tick(ctx)
		case e, ok := <-handover:
			if !ok {
				handover = nil // the watch ended: the ticks remain
				continue
			}
			if e != nil && e.Operation() != jetstream.KeyValuePut {
				l.tick(ctx)
			}
		case <-flushT.C:
			if d, err := sub.Dropped(); err == nil && d > lastDropped {
				r.m.lost.WithLabelValues(r.venue, "slow").Add(float64(d - lastDropped))
				r.log.Warn("the recorder fell behind; messages were not recorded", "lost", d-lastDropped)
				lastDropped = d
			}
			r.flush()
		}
	}
}

func (r *Recorder) add(m *nats.Msg) {
	if len(m.Subject) > 255 {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring = append(r.ring, ringFrame{m.Subject, m.Data, now})
	r.held += len(m.Data)
	for r.head < len(r.ring) && (r.held > r.ringMax || now.Sub(r.ring[r.head].at) > 3*r.Lease) {
		r.held -= len(r.ring[r.head].data)
		r.ring[r.head] = ringFrame{}
		r.head++
	}
	if r.head > 4096 && r.head > len(r.ring)/2 {
		r.ring = append(r.ring[:0], r.ring[r.head:]...)
		r.head = 0
	}
	if r.leader {
		r.batch.add(m.Subject, m.Data)
		if len(r.batch.data) >= r.maxBatch {
			r.flushLocked()
		}
	}
}

func (p *pending) add(subj string, data []byte) {
	p.data = appendFrame(p.data, subj, data)
	p.n++
	if pm, err := proto.Decode(data); err == nil && pm.Type() == proto.TypeBookSnapshot && pm.Flags()&proto.FlagSnapshotReply == 0 {
		if s, err := proto.ParseSubject(subj); err == nil && s.Kind == proto.KindData {
			if p.cps == nil {
				p.cps = map[string]time.Time{}
			}
			if _, ok := p.cps[s.Instrument]; !ok {
				p.cps[s.Instrument] = Time(pm)
			}
		}
	}
}

// flush hands the leader's batch to the writer.
func (r *Recorder) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
}

func (r *Recorder) flushLocked() {
	if !r.leader || r.batch.n == 0 {
		return
	}
	r.enqueueLocked(r.batch)
	if r.leader {
		r.batch = &pending{data: make([]byte, 0, cap(r.batch.data)), epoch: r.epoch}
	}
}

// queueMax bounds what waits for the store; past it the recorder steps
// down rather than drop (the next lease tick takes over again, this
// replica or another, and resumes after the last stored batch from the
// ring).
const queueMax = 512 << 20

func (r *Recorder) enqueueLocked(p *pending) {
	if r.queued+len(p.data) > queueMax {
		r.log.Warn("the recording store is behind; stepping down to resume from the ring", "queued_bytes", r.queued)
		r.stepDownLocked(r.epoch)
		return
	}
	r.queue = append(r.queue, p)
	r.queued += len(p.data)
	r.notify()
}

func (r *Recorder) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// write stores the queued batches in order, one at a time, each fenced by
// the sequence the last one got; a failure steps this replica down (its
// successor resumes after the last stored batch, from its ring). It
// returns once Run is ending and the queue is empty.
func (r *Recorder) write() {
	var last, epoch uint64
	marked := map[string]uint64{}
	for {
		r.mu.Lock()
		q, ending := r.queue, r.ending
		r.queue, r.queued = nil, 0
		r.mu.Unlock()
		if len(q) == 0 {
			if ending {
				return
			}
			<-r.wake
			continue
		}
		for _, p := range q {
			if p.first {
				last, epoch = p.lastSeq, p.epoch
			}
			if p.epoch != epoch {
				continue // a batch of a leadership that ended
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			ack, err := r.js.Publish(ctx, r.subject, p.data, jetstream.WithExpectLastSequencePerSubject(last))
			cancel()
			if err != nil {
				r.m.lost.WithLabelValues(r.venue, "store").Add(float64(p.n))
				r.log.Warn("store a batch; stepping down (the next recorder resumes after the last stored batch)", "messages", p.n, "err", err)
				r.stepDown(p.epoch)
				epoch = 0 // the rest of this leadership's batches are not stored
				continue
			}
			last = ack.Sequence
			r.mark(marked, p.cps, ack.Sequence)
			r.m.recorded.WithLabelValues(r.venue).Add(float64(p.n))
			r.recorded.Add(uint64(p.n))
			r.m.batches.WithLabelValues(r.venue).Inc()
		}
	}
}

// mark stores the checkpoint markers of the batch stored at seq (see
// CheckpointPrefix). A marker that cannot be stored is counted: a replay
// then seeks to an earlier checkpoint, which is slower, not wrong.
func (r *Recorder) mark(marked map[string]uint64, cps map[string]time.Time, seq uint64) {
	for in, t := range cps {
		if marked[in] >= seq {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := r.js.Publish(ctx, CheckpointSubject(r.venue, in), Checkpoint{Time: t, Seq: seq}.marshal())
		cancel()
		if err != nil {
			r.m.lost.WithLabelValues(r.venue, "marker").Inc()
			r.log.Warn("store a checkpoint marker", "instrument", in, "err", err)
			continue
		}
		marked[in] = seq
	}
}

// stepDown ends leadership epoch (if it is still the current one).
func (r *Recorder) stepDown(epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stepDownLocked(epoch)
}

func (r *Recorder) stepDownLocked(epoch uint64) {
	if !r.leader || r.epoch != epoch {
		return
	}
	r.leader, r.batch = false, nil
	r.queue, r.queued = nil, 0 // the writer skips them anyway: free them now
	r.epoch++
	r.isLeader.Store(false)
	r.m.leader.WithLabelValues(r.venue).Set(0)
}

// takeOver makes this replica the recorder: what its ring holds after the
// last stored message becomes its first batch.
func (r *Recorder) takeOver(ctx context.Context) error {
	var lastSeq uint64
	var lastSubj string
	var lastData []byte
	st, err := r.js.Stream(ctx, StreamName(r.venue))
	if err != nil {
		return err
	}
	m, err := st.GetLastMsgForSubject(ctx, r.subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return err
	default:
		lastSeq = m.Sequence
		_ = Frames(m.Data, func(s string, d []byte) error { lastSubj, lastData = s, d; return nil })
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	from := r.head
	if lastData != nil {
		found := false
		for i := len(r.ring) - 1; i >= r.head; i-- {
			if f := r.ring[i]; f.subj == lastSubj && bytes.Equal(f.data, lastData) {
				from, found = i+1, true
				break
			}
		}
		switch {
		case found:
		case time.Since(r.started) > 3*r.Lease:
			// A full ring that does not reach back to the last stored
			// message: what came between is lost.
			r.m.lost.WithLabelValues(r.venue, "failover").Inc()
			r.log.Warn("taking over after a hole: the last stored message is older than this replica's ring", "ring_frames", len(r.ring)-r.head)
		default:
			r.log.Info("starting after the last stored batch; what was published while no recorder ran is not recorded")
		}
	}
	r.epoch++
	r.leader = true
	r.batch = &pending{epoch: r.epoch, first: true, lastSeq: lastSeq}
	for _, f := range r.ring[from:] {
		r.batch.add(f.subj, f.data)
		if len(r.batch.data) >= r.maxBatch {
			r.flushLocked()
		}
	}
	r.isLeader.Store(true)
	r.m.leader.WithLabelValues(r.venue).Set(1)
	r.m.takeovers.WithLabelValues(r.venue).Inc()
	r.log.Info("recording (this replica holds the lease)", "id", r.ID, "resumed_after_seq", lastSeq, "from_ring", len(r.ring)-from)
	return nil
}

// lease is a Recorder's hold on LeaseBucket's key for its venue. Used by
// Run's goroutine only.
type lease struct {
	r       *Recorder
	kv      jetstream.KeyValue
	rev     uint64
	renewed time.Time
	epoch   uint64
}

// tick takes the lease when it is free, or renews it; a renewal refused
// (another replica holds it) or missing for a whole lease steps down.
func (l *lease) tick(ctx context.Context) {
	r := l.r
	ctx, cancel := context.WithTimeout(ctx, r.Lease/2)
	defer cancel()
	if !r.Leader() {
		if l.rev != 0 {
			// This replica stepped down on its own (a store failed): free
			// its lease now rather than when it expires.
			_ = l.kv.Delete(ctx, r.venue, jetstream.LastRevision(l.rev))
			l.rev = 0
		}
		rev, err := l.kv.Create(ctx, r.venue, []byte(r.ID))
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				r.log.Debug("take the recording lease", "err", err)
			}
			return
		}
		l.rev, l.renewed = rev, time.Now()
		if err := r.takeOver(ctx); err != nil {
			r.log.Warn("take over the recording", "err", err)
			_ = l.kv.Delete(context.Background(), r.venue, jetstream.LastRevision(l.rev))
			return
		}
		r.mu.Lock()
		l.epoch = r.epoch
		r.mu.Unlock()
		return
	}
	rev, err := l.kv.Update(ctx, r.venue, []byte(r.ID), l.rev)
	switch {
	case err == nil:
		l.rev, l.renewed = rev, time.Now()
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyNotFound), time.Since(l.renewed) > r.Lease:
		r.log.Warn("lost the recording lease; standing by", "err", err)
		r.stepDown(l.epoch)
	}
}

// release hands the lease over at shutdown, so a standby takes over at
// its next tick rather than after the lease expires.
func (l *lease) release() {
	if l.rev == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.kv.Delete(ctx, l.r.venue, jetstream.LastRevision(l.rev))
	l.rev = 0
	l.r.stepDown(l.epoch)
}
