package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paddockhq/paddock/proto"
)

// The recording's index: for every batch that holds a checkpoint (a whole
// book: the feed's periodic BookSnapshot, or the snapshot after a resync)
// of an instrument, the recorder stores a small marker on
// checkpoints.<venue>.<instrument> in the same stream, saying when the
// book was (exchange time) and which batch holds it. A replay seeks to
// the last checkpoint at or before its start by exchange time with a
// binary search over the markers (a few direct reads, however long the
// recording), and coverage is answered per instrument, never by the venue
// as a whole.
const CheckpointPrefix = "checkpoints"

// CheckpointSubject is where instrument's checkpoint markers are stored.
func CheckpointSubject(venue, instrument string) string {
	return CheckpointPrefix + "." + venue + "." + instrument
}

// Checkpoint is one marker: the stream sequence of the batch (on
// recording.<venue>) that holds a whole book of the instrument as of Time.
type Checkpoint struct {
	Time time.Time `json:"t"`
	Seq  uint64    `json:"seq"`
}

// ErrMarker is a marker that cannot be read.
var ErrMarker = errors.New("record: malformed checkpoint marker")

// ParseCheckpoint reads a marker; anything but a positive sequence and a
// time is an error.
func ParseCheckpoint(b []byte) (Checkpoint, error) {
	var c Checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrMarker, err)
	}
	if c.Seq == 0 || c.Time.IsZero() {
		return c, fmt.Errorf("%w: no sequence or time", ErrMarker)
	}
	c.Time = c.Time.UTC()
	return c, nil
}

func (c Checkpoint) marshal() []byte {
	b, _ := json.Marshal(c)
	return b
}

// marker is a stored marker with its own stream sequence.
type marker struct {
	Checkpoint
	at uint64 // the marker's stream sequence
}

// nextMarker is the first marker of subj at or after stream sequence seq
// whose batch is still stored (first: the stream's first sequence).
func nextMarker(ctx context.Context, s jetstream.Stream, subj string, seq, first uint64) (marker, bool, error) {
	for {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return marker{}, false, nil
		}
		if err != nil {
			return marker{}, false, err
		}
		c, err := ParseCheckpoint(m.Data)
		if err == nil && c.Seq >= first {
			return marker{c, m.Sequence}, true, nil
		}
		seq = m.Sequence + 1 // a damaged marker, or its batch aged out
	}
}

// Seek is the last checkpoint of venue's instrument at or before at, found
// by binary search over its markers (their times grow with their
// sequence: the recorder stores them in order).
func Seek(ctx context.Context, s jetstream.Stream, venue, instrument string, at time.Time) (Checkpoint, error) {
	subj := CheckpointSubject(venue, instrument)
	info, err := s.Info(ctx)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("seek %s %s: %w", venue, instrument, err)
	}
	first := info.State.FirstSeq
	best, ok, err := nextMarker(ctx, s, subj, first, first)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("seek %s %s: %w", venue, instrument, err)
	}
	if !ok || best.Time.After(at) {
		return Checkpoint{}, fmt.Errorf("no checkpoint of %s %s at or before %s: %w", venue, instrument, at.UTC().Format(time.RFC3339), ErrNotRecorded)
	}
	lo, hi := best.at+1, info.State.LastSeq
	for lo <= hi {
		mid := lo + (hi-lo)/2
		m, ok, err := nextMarker(ctx, s, subj, mid, first)
		if err != nil {
			return Checkpoint{}, fmt.Errorf("seek %s %s: %w", venue, instrument, err)
		}
		if !ok || m.Time.After(at) {
			hi = mid - 1
			continue
		}
		best, lo = m, m.at+1
	}
	return best.Checkpoint, nil
}

// lastFrameTime is the time of a batch's last decodable message.
func lastFrameTime(batch []byte, want func(subject string) bool) (first, last time.Time) {
	_ = Frames(batch, func(subj string, data []byte) error {
		if want != nil && !want(subj) {
			return nil
		}
		if m, err := proto.Decode(data); err == nil {
			t := Time(m)
			if first.IsZero() {
				first = t
			}
			last = t
		}
		return nil
	})
	return first, last
}
