package record

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
	leader         *prometheus.GaugeVec
	takeovers      *prometheus.CounterVec
}

// NewMetrics registers the recorder's metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		recorded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_record_messages_total",
			Help: "Market data messages stored in the recording, by venue."}, []string{"venue"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_record_lost_total",
			Help: "Market data messages not recorded, by venue and reason: slow (the recorder fell behind and NATS dropped them), store (JetStream refused the batch), failover (a new leader's recording begins after a hole), marker (a checkpoint's index entry, counted once per marker)."}, []string{"venue", "reason"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_record_batches_total",
			Help: "Batches stored in the recording, by venue."}, []string{"venue"}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_record_leader",
			Help: "1 while this replica is the venue's recorder (one replica per venue records; the others stand by)."}, []string{"venue"}),
		takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_record_takeovers_total",
			Help: "Times this replica became the venue's recorder."}, []string{"venue"}),
	}
	if reg != nil {
		reg.MustRegister(m.recorded, m.lost, m.batches, m.leader, m.takeovers)
	}
	return m
}
