package proto

import (
	"errors"
	"fmt"
	"strings"
)

// Subject prefixes. Every subject paddock's market data travels on is built
// and parsed by the functions in this file and nowhere else.
const (
	// DataPrefix starts market.data.<venue>.<instrument>.<event>.
	DataPrefix = "market.data"
	// SnapshotPrefix starts market.snapshot.<venue>.<instrument>, the
	// request/reply subject that returns an instrument's current BookSnapshot.
	SnapshotPrefix = "market.snapshot"
	// HealthPrefix starts market.health.<venue>, where the feed publishes a
	// Status message for the venue every second.
	HealthPrefix = "market.health"
	// ReplayPrefix starts replay.<env>, an environment's own replay
	// namespace: every subject above, under it (ReplayNamespace).
	ReplayPrefix = "replay"
)

// ReplayNamespace is env's replay namespace, replay.<env>: its replayer
// publishes replay.<env>.market.data.<venue>.<instrument>.<event> and
// answers replay.<env>.market.snapshot.<venue>.<instrument>.
func ReplayNamespace(env string) string { return ReplayPrefix + "." + env }

// MaxTokenLen bounds venue and instrument tokens; subjects end up in NATS
// permissions, metric labels and log lines.
const MaxTokenLen = 64

var (
	ErrToken   = errors.New("proto: invalid subject token")
	ErrSubject = errors.New("proto: invalid subject")
)

// Event is the last token of a market-data subject. Each event subject has
// its own sequence numbers.
type Event uint8

const (
	EventTrades    Event = 1 // Trade messages
	EventOrderbook Event = 2 // BookDelta, BookSnapshot and Reset, in one sequence
	EventBBO       Event = 3 // BBO messages
)

var eventNames = [...]string{EventTrades: "trades", EventOrderbook: "orderbook", EventBBO: "bbo"}

func (e Event) String() string {
	if e >= EventTrades && e <= EventBBO {
		return eventNames[e]
	}
	return "unknown"
}

// EventByName parses an event token.
func EventByName(s string) (Event, bool) {
	for i, n := range eventNames {
		if n != "" && n == s {
			return Event(i), true
		}
	}
	return 0, false
}

// CheckToken reports whether tok can be a venue or instrument token: 1 to
// MaxTokenLen characters from [a-z0-9_-]. This excludes everything NATS would
// misread (dots split tokens, '*' and '>' are wildcards, whitespace ends the
// subject) and upper case, so that one instrument has exactly one subject.
func CheckToken(tok string) error {
	if tok == "" {
		return fmt.Errorf("%w: empty", ErrToken)
	}
	if len(tok) > MaxTokenLen {
		return fmt.Errorf("%w: %q longer than %d bytes", ErrToken, tok, MaxTokenLen)
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %q has %q at byte %d (allowed: a-z 0-9 - _)", ErrToken, tok, c, i)
		}
	}
	return nil
}

// AppendDataSubject appends market.data.<venue>.<instrument>.<event> to dst.
// The feed builds each subject once at start-up and reuses the bytes.
func AppendDataSubject(dst []byte, venue, instrument string, ev Event) ([]byte, error) {
	if err := checkPair(venue, instrument); err != nil {
		return dst, err
	}
	if ev < EventTrades || ev > EventBBO {
		return dst, fmt.Errorf("%w: unknown event %d", ErrSubject, ev)
	}
	dst = append(dst, DataPrefix...)
	dst = append(dst, '.')
	dst = append(dst, venue...)
	dst = append(dst, '.')
	dst = append(dst, instrument...)
	dst = append(dst, '.')
	return append(dst, eventNames[ev]...), nil
}

// DataSubject returns market.data.<venue>.<instrument>.<event>.
func DataSubject(venue, instrument string, ev Event) (string, error) {
	b, err := AppendDataSubject(nil, venue, instrument, ev)
	return string(b), err
}

// DataWildcard returns market.data.<venue>.<instrument>.*, every event of one
// instrument (for subscriptions and permissions).
func DataWildcard(venue, instrument string) (string, error) {
	if err := checkPair(venue, instrument); err != nil {
		return "", err
	}
	return DataPrefix + "." + venue + "." + instrument + ".*", nil
}

// SnapshotSubject returns market.snapshot.<venue>.<instrument>.
func SnapshotSubject(venue, instrument string) (string, error) {
	if err := checkPair(venue, instrument); err != nil {
		return "", err
	}
	return SnapshotPrefix + "." + venue + "." + instrument, nil
}

// HealthSubject returns market.health.<venue>.
func HealthSubject(venue string) (string, error) {
	if err := CheckToken(venue); err != nil {
		return "", fmt.Errorf("venue: %w", err)
	}
	return HealthPrefix + "." + venue, nil
}

func checkPair(venue, instrument string) error {
	if err := CheckToken(venue); err != nil {
		return fmt.Errorf("venue: %w", err)
	}
	if err := CheckToken(instrument); err != nil {
		return fmt.Errorf("instrument: %w", err)
	}
	return nil
}

// SubjectKind says which family a parsed subject belongs to.
type SubjectKind uint8

const (
	KindData     SubjectKind = 1
	KindSnapshot SubjectKind = 2
	KindHealth   SubjectKind = 3
)

// Subject is a parsed subject. Its strings alias the parsed input.
type Subject struct {
	Kind       SubjectKind
	Venue      string
	Instrument string // empty for KindHealth
	Event      Event  // zero unless KindData
}

// ParseSubject parses any of the three subject families. It does not allocate
// for valid input.
func ParseSubject(s string) (Subject, error) {
	var (
		rest string
		kind SubjectKind
		want int
	)
	switch {
	case strings.HasPrefix(s, DataPrefix+"."):
		kind, rest, want = KindData, s[len(DataPrefix)+1:], 3
	case strings.HasPrefix(s, SnapshotPrefix+"."):
		kind, rest, want = KindSnapshot, s[len(SnapshotPrefix)+1:], 2
	case strings.HasPrefix(s, HealthPrefix+"."):
		kind, rest, want = KindHealth, s[len(HealthPrefix)+1:], 1
	default:
		return Subject{}, fmt.Errorf("%w: %q has no market.{data,snapshot,health} prefix", ErrSubject, s)
	}
	if dots := strings.Count(rest, "."); dots != want-1 {
		return Subject{}, fmt.Errorf("%w: %q has %d tokens after the prefix, want %d", ErrSubject, s, dots+1, want)
	}
	var toks [3]string
	for i := range want - 1 {
		j := strings.IndexByte(rest, '.')
		toks[i], rest = rest[:j], rest[j+1:]
	}
	toks[want-1] = rest
	sub := Subject{Kind: kind, Venue: toks[0]}
	if err := CheckToken(sub.Venue); err != nil {
		return Subject{}, fmt.Errorf("%w: venue: %w", ErrSubject, err)
	}
	if kind == KindHealth {
		return sub, nil
	}
	sub.Instrument = toks[1]
	if err := CheckToken(sub.Instrument); err != nil {
		return Subject{}, fmt.Errorf("%w: instrument: %w", ErrSubject, err)
	}
	if kind == KindData {
		ev, ok := EventByName(toks[2])
		if !ok {
			return Subject{}, fmt.Errorf("%w: %q: unknown event %q", ErrSubject, s, toks[2])
		}
		sub.Event = ev
	}
	return sub, nil
}
