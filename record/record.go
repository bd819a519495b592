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
	"sort"
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
	// Lease is the recorder's lease when feeds run as replicas (default
	// 10s): the longest a venue goes unrecorded after its recorder dies
	// (a standby then stores what it missed from its ring).
	Lease time.Duration `yaml:"lease"`
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
	if c.Lease <= 0 {
		c.Lease = 10 * time.Second
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
		Subjects: []string{RecordingPrefix + "." + venue, CheckpointSubject(venue, "*"), ImportedPrefix + "." + venue + ".>"},
		Metadata: map[string]string{metaCheckpointEvery: c.CheckpointInterval.String()},
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

// Range is what is recorded of an instrument: its live recording, from its
// first checkpoint (a replay needs a whole book to start from) to the
// latest message, or its imported days (trades or best prices, no books).
type Range struct {
	Venue, Symbol string
	First, Last   time.Time
	Imported      bool
	days          map[string]bool // imported: the days stored, yyyymmdd
}

func (r Range) String() string {
	s := fmt.Sprintf("%s %s recorded %s .. %s", r.Venue, r.Symbol, r.First.Format("2006-01-02T15:04:05Z"), r.Last.Format("2006-01-02T15:04:05Z"))
	if r.Imported {
		s += fmt.Sprintf(" (imported, %d days, no books)", len(r.days))
	}
	return s
}

// Covers reports whether [start, end) lies within the range (for imported
// data: and every day it touches was imported).
func (r Range) Covers(start, end time.Time) bool {
	if start.Before(r.First) || end.After(r.Last) || !end.After(start) {
		return false
	}
	if r.Imported {
		for d := start.UTC().Truncate(24 * time.Hour); d.Before(end); d = d.Add(24 * time.Hour) {
			if !r.days[d.Format("20060102")] {
				return false
			}
		}
	}
	return true
}

// ErrNotRecorded: nothing (or not the range asked for) is recorded; the
// error is a *NotCovered.
var ErrNotRecorded = errors.New("record: not recorded")

// NotCovered says what is recorded of an instrument when a range (or
// anything at all) is not.
type NotCovered struct {
	Venue, Symbol string
	Start, End    time.Time // zero: anything at all
	Have          []Range
}

func (e *NotCovered) Error() string {
	if len(e.Have) == 0 {
		return fmt.Sprintf("nothing of %s %s is recorded", e.Venue, e.Symbol)
	}
	have := make([]string, len(e.Have))
	for i, r := range e.Have {
		have[i] = r.String()
	}
	return fmt.Sprintf("%s .. %s is not covered: %s", e.Start.UTC().Format(time.RFC3339), e.End.UTC().Format(time.RFC3339), strings.Join(have, "; "))
}

// Is makes errors.Is(err, ErrNotRecorded) hold.
func (e *NotCovered) Is(target error) bool { return target == ErrNotRecorded }

// Coverage is what is recorded of venue's instrument: its live range and
// its imported range, whichever exist; ErrNotRecorded when neither does.
func Coverage(ctx context.Context, js jetstream.JetStream, venue, symbol string) ([]Range, error) {
	if err := proto.CheckToken(venue); err != nil {
		return nil, err
	}
	if err := proto.CheckToken(symbol); err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, StreamName(venue))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, &NotCovered{Venue: venue, Symbol: symbol}
	}
	if err != nil {
		return nil, err
	}
	var out []Range
	live, ok, err := liveRange(ctx, s, venue, symbol)
	if err != nil {
		return nil, err
	}
	if ok {
		out = append(out, live)
	}
	imp, ok, err := importedRange(ctx, s, venue, symbol)
	if err != nil {
		return nil, err
	}
	if ok {
		out = append(out, imp)
	}
	if len(out) == 0 {
		return nil, &NotCovered{Venue: venue, Symbol: symbol}
	}
	return out, nil
}

// Check is nil when [start, end) of venue's instrument lies within one
// recorded range; else an ErrNotRecorded that says what is recorded.
func Check(ctx context.Context, js jetstream.JetStream, venue, symbol string, start, end time.Time) error {
	rs, err := Coverage(ctx, js, venue, symbol)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Covers(start, end) {
			return nil
		}
	}
	return &NotCovered{Venue: venue, Symbol: symbol, Start: start, End: end, Have: rs}
}

// metaCheckpointEvery is the stream metadata key holding the feed's
// checkpoint interval (Ensure writes it).
const metaCheckpointEvery = "paddock_checkpoint_interval"

// liveRange runs from the instrument's first checkpoint still stored to
// the venue's latest message while the instrument is still checkpointed
// (its last checkpoint within two intervals of that message), else to its
// last checkpoint: what came after it is not claimed.
func liveRange(ctx context.Context, s jetstream.Stream, venue, symbol string) (Range, bool, error) {
	r := Range{Venue: venue, Symbol: symbol}
	info, err := s.Info(ctx)
	if err != nil {
		return r, false, err
	}
	subj := CheckpointSubject(venue, symbol)
	first, ok, err := nextMarker(ctx, s, subj, info.State.FirstSeq, info.State.FirstSeq)
	if err != nil || !ok {
		return r, false, err
	}
	lm, err := s.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return r, false, err
	}
	last, err := ParseCheckpoint(lm.Data)
	if err != nil {
		return r, false, err
	}
	r.First, r.Last = first.Time, last.Time
	every := time.Minute
	if d, err := time.ParseDuration(info.Config.Metadata[metaCheckpointEvery]); err == nil && d > 0 {
		every = d
	}
	if m, err := s.GetLastMsgForSubject(ctx, RecordingPrefix+"."+venue); err == nil {
		if _, t := lastFrameTime(m.Data, nil); t.After(r.Last) && t.Sub(r.Last) <= 2*every+10*time.Second {
			r.Last = t
		}
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return r, false, err
	}
	return r, true, nil
}

// importedRange is the instrument's imported days.
func importedRange(ctx context.Context, s jetstream.Stream, venue, symbol string) (Range, bool, error) {
	r := Range{Venue: venue, Symbol: symbol, Imported: true, days: map[string]bool{}}
	prefix := ImportedPrefix + "." + venue + "." + symbol + "."
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix+"*"))
	if err != nil {
		return r, false, err
	}
	var lo, hi string
	for subj := range info.State.Subjects {
		day := strings.TrimPrefix(subj, prefix)
		r.days[day] = true
		if lo == "" || subj < lo {
			lo = subj
		}
		if subj > hi {
			hi = subj
		}
	}
	if lo == "" {
		return r, false, nil
	}
	m, err := s.GetMsg(ctx, info.State.FirstSeq, jetstream.WithGetMsgSubject(lo))
	if err != nil {
		return r, false, err
	}
	r.First, _ = lastFrameTime(m.Data, nil)
	if m, err = s.GetLastMsgForSubject(ctx, hi); err != nil {
		return r, false, err
	}
	_, r.Last = lastFrameTime(m.Data, nil)
	return r, !r.First.IsZero(), nil
}

// Instruments lists the instruments of venue with anything recorded (a
// checkpoint or an imported day), sorted.
func Instruments(ctx context.Context, js jetstream.JetStream, venue string) ([]string, error) {
	if err := proto.CheckToken(venue); err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, StreamName(venue))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, f := range []string{CheckpointSubject(venue, "*"), ImportedPrefix + "." + venue + ".*.*"} {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(f))
		if err != nil {
			return nil, err
		}
		for subj := range info.State.Subjects {
			if parts := strings.Split(subj, "."); len(parts) >= 3 {
				seen[parts[2]] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}
