// Package record keeps the feed's market data in NATS JetStream: one
// stream per venue captures everything published on market.data.<venue>.>
// on the server side, so recording adds no work to the feed's publish path
// and scales with the NATS cluster. The feed's periodic checkpoints (whole
// books on the orderbook subjects) let a replay start at any instant.
package record

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paddockhq/paddock/proto"
)

// Config is how long and how much is kept.
type Config struct {
	// MaxAge (default 30 days) and MaxBytes (0: no limit) bound each
	// venue's recording; the oldest messages go first.
	MaxAge   time.Duration `yaml:"max_age"`
	MaxBytes int64         `yaml:"max_bytes"`
	// Replicas on a cluster (default 1).
	Replicas int `yaml:"replicas"`
	// Uncompressed turns S2 block compression off (it is on by default:
	// see README "Measured" for the bytes per message either way).
	Uncompressed bool `yaml:"uncompressed"`
	// CheckpointInterval is how often the feed publishes every book whole
	// (default 1m).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// Defaults fills in the zero values.
func (c *Config) Defaults() {
	if c.MaxAge <= 0 {
		c.MaxAge = 30 * 24 * time.Hour
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = time.Minute
	}
}

// StreamName is venue's recording stream: MD_<VENUE>, upper case, '-' as
// '_' (binance-perp -> MD_BINANCE_PERP).
func StreamName(venue string) string {
	return "MD_" + strings.ToUpper(strings.ReplaceAll(venue, "-", "_"))
}

// Ensure creates (or updates) venue's recording stream.
func Ensure(ctx context.Context, js jetstream.JetStream, venue string, c Config) (jetstream.Stream, error) {
	if err := proto.CheckToken(venue); err != nil {
		return nil, err
	}
	c.Defaults()
	comp := jetstream.S2Compression
	if c.Uncompressed {
		comp = jetstream.NoCompression
	}
	maxBytes := c.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: StreamName(venue),
		Subjects: []string{RecordingPrefix + "." + venue, ImportedPrefix + "." + venue + ".>"},
		Storage:  jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld, MaxAge: c.MaxAge, MaxBytes: maxBytes,
		Replicas: c.Replicas, Compression: comp, Description: "paddock market data recording of " + venue})
	if err != nil {
		return nil, fmt.Errorf("recording stream for %s: %w", venue, err)
	}
	return s, nil
}

// Open returns venue's recording stream, creating it with the defaults
// when there is none (an existing one keeps its retention).
func Open(ctx context.Context, js jetstream.JetStream, venue string) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, StreamName(venue))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return Ensure(ctx, js, venue, Config{})
	}
	return s, err
}

// Time is a recorded message's time: the exchange's event time, else the
// feed's receive time.
func Time(m proto.Message) time.Time {
	if t := m.EventTime(); t > 0 {
		return time.Unix(0, t).UTC()
	}
	return time.Unix(0, m.RecvTime()).UTC()
}

// Range is what is recorded of a venue.
type Range struct {
	Venue, Symbol string
	First, Last   time.Time
}

func (r Range) String() string {
	return fmt.Sprintf("%s %s recorded %s .. %s", r.Venue, r.Symbol, r.First.Format("2006-01-02T15:04:05Z"), r.Last.Format("2006-01-02T15:04:05Z"))
}

// ErrNotRecorded: nothing of the venue is recorded.
var ErrNotRecorded = errors.New("record: not recorded")

// Coverage is the recorded range of venue: from the earliest to the latest
// message, recorded live or imported. (A replay needs a checkpoint of an
// instrument's book before it; the feed writes one every
// CheckpointInterval; imported days carry trades or best prices only.)
func Coverage(ctx context.Context, js jetstream.JetStream, venue, symbol string) (Range, error) {
	r := Range{Venue: venue, Symbol: symbol}
	if err := proto.CheckToken(venue); err != nil {
		return r, err
	}
	s, err := js.Stream(ctx, StreamName(venue))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return r, fmt.Errorf("%w: no recording of venue %s", ErrNotRecorded, venue)
	}
	if err != nil {
		return r, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(ImportedPrefix+"."+venue+".>"))
	if err != nil {
		return r, err
	}
	var lo, hi string // the first and last imported day's subjects
	for subj := range info.State.Subjects {
		if lo == "" || subj < lo {
			lo = subj
		}
		if subj > hi {
			hi = subj
		}
	}
	widen := func(m *jetstream.RawStreamMsg, first bool) error {
		return Frames(m.Data, func(_ string, data []byte) error {
			pm, err := proto.Decode(data)
			if err != nil {
				return nil
			}
			t := Time(pm)
			if r.First.IsZero() || t.Before(r.First) {
				r.First = t
			}
			if t.After(r.Last) {
				r.Last = t
			}
			return nil
		})
	}
	live := RecordingPrefix + "." + venue
	for _, subj := range []string{live, lo, hi} {
		if subj == "" {
			continue
		}
		if m, err := s.GetMsg(ctx, info.State.FirstSeq, jetstream.WithGetMsgSubject(subj)); err == nil {
			if err := widen(m, true); err != nil {
				return r, err
			}
		} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return r, err
		}
		if m, err := s.GetLastMsgForSubject(ctx, subj); err == nil {
			if err := widen(m, false); err != nil {
				return r, err
			}
		} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return r, err
		}
	}
	if r.First.IsZero() {
		return r, fmt.Errorf("%w: the recording of %s is empty", ErrNotRecorded, venue)
	}
	return r, nil
}
