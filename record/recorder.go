package record

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paddockhq/paddock/proto"
)

// The recording's wire format: each JetStream message on
// recording.<venue> is a batch of the messages the feed published, in the
// order the recorder received them:
//
//	'P' 1 (magic, version), then per message:
//	u8 subject length, subject, u32 LE length, the proto message.
//
// JetStream stores every message with its own header (~30 bytes plus the
// subject) and does its bookkeeping per message; a batch of a few hundred
// market data messages pays it once (see README "Measured").
const (
	batchMagic   = 'P'
	batchVersion = 1
	// RecordingPrefix starts recording.<venue>, the recording stream's
	// subject.
	RecordingPrefix = "recording"
)

// ErrBatch is a malformed batch.
var ErrBatch = errors.New("record: malformed batch")

// Frames calls fn for every message of a batch, in order. It checks every
// length before it slices: a damaged batch is an error, never a panic.
func Frames(batch []byte, fn func(subject string, data []byte) error) error {
	if len(batch) < 2 || batch[0] != batchMagic || batch[1] != batchVersion {
		return fmt.Errorf("%w: bad header", ErrBatch)
	}
	b := batch[2:]
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || len(b) < 1+n+4 {
			return fmt.Errorf("%w: truncated subject", ErrBatch)
		}
		subj := string(b[1 : 1+n])
		l := binary.LittleEndian.Uint32(b[1+n:])
		b = b[1+n+4:]
		if uint64(l) > uint64(len(b)) {
			return fmt.Errorf("%w: truncated message", ErrBatch)
		}
		if err := fn(subj, b[:l]); err != nil {
			return err
		}
		b = b[l:]
	}
	return nil
}

// appendFrame adds one message to a batch.
func appendFrame(batch []byte, subject string, data []byte) []byte {
	if len(batch) == 0 {
		batch = append(batch, batchMagic, batchVersion)
	}
	batch = append(batch, byte(len(subject)))
	batch = append(batch, subject...)
	batch = binary.LittleEndian.AppendUint32(batch, uint32(len(data)))
	return append(batch, data...)
}

// Metrics count the recorder's work.
type Metrics struct {
	recorded, lost *prometheus.CounterVec
	batches        *prometheus.CounterVec
}

// NewMetrics registers the recorder's metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		recorded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_record_messages_total",
			Help: "Market data messages stored in the recording, by venue."}, []string{"venue"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_record_lost_total",
			Help: "Market data messages not recorded, by venue and reason: slow (the recorder fell behind and NATS dropped them), store (JetStream refused the batch)."}, []string{"venue", "reason"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_record_batches_total",
			Help: "Batches stored in the recording, by venue."}, []string{"venue"}),
	}
	if reg != nil {
		reg.MustRegister(m.recorded, m.lost, m.batches)
	}
	return m
}

// Recorder records one venue: a subscription to market.data.<venue>.>
// (a subscriber like any other: the feed's publish path does not change)
// whose messages go into batches stored on recording.<venue> at least every
// FlushEvery. Losses are counted, never silent. Create with NewRecorder;
// Run once.
type Recorder struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	venue    string
	subject  string
	every    time.Duration
	maxBatch int
	log      *slog.Logger
	m        *Metrics

	mu    sync.Mutex
	batch []byte
	n     int
	acks  sync.WaitGroup // one per batch in flight

	subscribed chan struct{}
	recorded   atomic.Uint64
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
	return &Recorder{nc: nc, js: js, venue: venue, subject: RecordingPrefix + "." + venue, every: 50 * time.Millisecond, maxBatch: 256 << 10,
		log: log.With("component", "recorder", "venue", venue), m: m, subscribed: make(chan struct{})}, nil
}

// Subscribed is closed once the recorder's subscription is in place on
// the server: what is published after it is recorded.
func (r *Recorder) Subscribed() <-chan struct{} { return r.subscribed }

// Recorded counts the messages stored (acknowledged by JetStream).
func (r *Recorder) Recorded() uint64 { return r.recorded.Load() }

// Run records until ctx ends, then drains its subscription (what was
// published before the end is recorded, not dropped) and stores what it
// holds.
func (r *Recorder) Run(ctx context.Context) error {
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
	close(r.subscribed)
	t := time.NewTicker(r.every)
	defer t.Stop()
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
			r.flush()
			r.acks.Wait() // each ends with its ack, an error, or the connection's close
			return nil
		case <-t.C:
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
	r.mu.Lock()
	r.batch = appendFrame(r.batch, m.Subject, m.Data)
	r.n++
	full := len(r.batch) >= r.maxBatch
	r.mu.Unlock()
	if full {
		r.flush()
	}
}

// flush stores the current batch (asynchronously; a refusal is counted).
func (r *Recorder) flush() {
	r.mu.Lock()
	if r.n == 0 {
		r.mu.Unlock()
		return
	}
	batch, n := r.batch, r.n
	r.batch, r.n = make([]byte, 0, cap(batch)), 0
	r.mu.Unlock()
	f, err := r.js.PublishAsync(r.subject, batch)
	if err != nil {
		r.m.lost.WithLabelValues(r.venue, "store").Add(float64(n))
		r.log.Warn("store a batch", "messages", n, "err", err)
		return
	}
	r.acks.Go(func() {
		select {
		case <-f.Ok():
			r.m.recorded.WithLabelValues(r.venue).Add(float64(n))
			r.recorded.Add(uint64(n))
			r.m.batches.WithLabelValues(r.venue).Inc()
		case err := <-f.Err():
			r.m.lost.WithLabelValues(r.venue, "store").Add(float64(n))
			r.log.Warn("store a batch", "messages", n, "err", err)
		case <-time.After(30 * time.Second):
			r.m.lost.WithLabelValues(r.venue, "store").Add(float64(n))
			r.log.Warn("store a batch: no acknowledgement", "messages", n)
		}
	})
}
