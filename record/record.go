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
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: StreamName(venue), Subjects: []string{proto.DataPrefix + "." + venue + ".>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld, MaxAge: c.MaxAge, MaxBytes: maxBytes,
		Replicas: c.Replicas, Compression: comp, Description: "paddock market data recording of " + venue})
	if err != nil {
		return nil, fmt.Errorf("recording stream for %s: %w", venue, err)
	}
	return s, nil
}

// Time is a recorded message's time: the exchange's event time, else the
// feed's receive time.
func Time(m proto.Message) time.Time {
	if t := m.EventTime(); t > 0 {
		return time.Unix(0, t).UTC()
	}
	return time.Unix(0, m.RecvTime()).UTC()
}

// Range is what is recorded of one instrument's book.
type Range struct {
	Venue, Symbol string
	First, Last   time.Time
}

func (r Range) String() string {
	return fmt.Sprintf("%s %s recorded %s .. %s", r.Venue, r.Symbol, r.First.Format("2006-01-02T15:04:05Z"), r.Last.Format("2006-01-02T15:04:05Z"))
}

// ErrNotRecorded: nothing of the instrument is recorded.
var ErrNotRecorded = errors.New("record: not recorded")

// Coverage is the recorded range of an instrument's book (its orderbook
// subject): the first and the last message's times.
func Coverage(ctx context.Context, js jetstream.JetStream, venue, symbol string) (Range, error) {
	r := Range{Venue: venue, Symbol: symbol}
	subj, err := proto.DataSubject(venue, symbol, proto.EventOrderbook)
	if err != nil {
		return r, err
	}
	s, err := js.Stream(ctx, StreamName(venue))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return r, fmt.Errorf("%w: no recording of venue %s", ErrNotRecorded, venue)
	}
	if err != nil {
		return r, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return r, err
	}
	first, err := s.GetMsg(ctx, info.State.FirstSeq, jetstream.WithGetMsgSubject(subj))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return r, fmt.Errorf("%w: %s %s", ErrNotRecorded, venue, symbol)
	}
	if err != nil {
		return r, err
	}
	last, err := s.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return r, err
	}
	for _, x := range []struct {
		raw []byte
		t   *time.Time
	}{{first.Data, &r.First}, {last.Data, &r.Last}} {
		m, err := proto.Decode(x.raw)
		if err != nil {
			return r, fmt.Errorf("recorded message on %s: %w", subj, err)
		}
		*x.t = Time(m)
	}
	return r, nil
}
