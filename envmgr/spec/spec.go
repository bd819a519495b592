// Package spec parses and validates .dev-env.yaml, the file in which a
// strategy developer declares a sandbox environment. Parsing is strict:
// unknown fields, duplicate keys, wrong types, YAML aliases and custom tags
// are errors carrying the line and the field path, and every problem in a
// file is reported at once. dev-env.schema.json in this directory is the
// same contract for editors; a corpus test keeps the two in agreement.
package spec

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// Limits of version 1.
const (
	Version             = 1
	DefaultTTLHours     = 48
	MaxTTLHours         = 96  // beyond this an admin must approve
	MaxApprovedTTLHours = 720 // the ceiling even with approval (30 days)
	MaxNameLen          = 40  // names end up in subjects, tags and hostnames with prefixes
	MaxReplayDays       = 31  // the longest replay range
	MaxFileBytes        = 64 << 10
	MaxPRNumber         = 1 << 30 // GitHub's numbers are far below; a bound before any arithmetic
)

// Upper bounds of risk_config values: far beyond any sandbox, and well
// inside what the risk gate's 128-bit arithmetic handles.
var (
	MaxUSD       = proto.Decimal{Mant: 1_000_000_000_000} // max_position_usd, starting_equity_usd
	MaxOrderRate = proto.Decimal{Mant: 10_000}            // orders per second
)

// DefaultStartingEquityUSD is the paper account's equity when
// risk_config.starting_equity_usd is not given.
var DefaultStartingEquityUSD = proto.Decimal{Mant: 10000}

// Spec is a validated environment declaration. Its values are plain data;
// copy freely.
type Spec struct {
	Version    int
	Name       string // DNS-label safe; from the file, else the PR number, else the branch
	Exchanges  []Exchange
	MarketData MarketData
	Risk       Risk
	Strategy   Strategy
	TTLHours   int
}

// Exchange is one sandbox exchange and its instruments.
type Exchange struct {
	Name        string // binance | bybit
	Type        string // spot | perpetual
	Venue       string // the feed's venue: binance, binance-perp, bybit, bybit-perp
	Instruments []Instrument
}

// Instrument is an instrument as written and as the feed names it.
type Instrument struct {
	Written string // BTC/USDT
	Symbol  string // btcusdt: the subject token
}

// MarketData says where the node's market data comes from.
type MarketData struct {
	Mode        string    // live | replay | both
	ReplayStart time.Time // zero unless replay or both
	ReplayEnd   time.Time
	// ReplaySpeed is the pace against recorded time (1 by default; 10 is
	// ten times faster); 0 means as fast as possible ("max").
	ReplaySpeed float64
}

// Risk holds the per-environment limits as exact decimals.
type Risk struct {
	MaxPositionUSD proto.Decimal // per instrument
	MaxDrawdownPct proto.Decimal // in (0, 100]
	MaxOrderRate   proto.Decimal // orders per second
	// StartingEquityUSD is the paper account's equity at start, the base of
	// the drawdown limit; DefaultStartingEquityUSD when the file has none.
	StartingEquityUSD proto.Decimal
}

// Strategy is the strategy binary and its config, relative to the repository.
type Strategy struct {
	Binary string
	Config string // optional
}

// Options carry what the file itself does not say.
type Options struct {
	PRNumber    int       // the name defaults to pr-<n> when the file has none
	Branch      string    // else to a slug of the branch
	Now         time.Time // replay ranges must lie before it; zero means time.Now()
	TTLApproved bool      // an admin approved a ttl_hours beyond MaxTTLHours
	// LiveOnly refuses market_data.mode replay and both: what an
	// installation without recorded market data must do, rather than run
	// them live.
	LiveOnly bool
}

// FieldError is one problem in a file.
type FieldError struct {
	Line, Column int    // 1-based; 0 when the problem is not at one place
	Path         string // e.g. exchanges[1].instruments[0]
	Msg          string
}

func (e FieldError) Error() string {
	loc := ""
	if e.Line > 0 {
		loc = fmt.Sprintf("line %d: ", e.Line)
	}
	if e.Path != "" {
		return loc + e.Path + ": " + e.Msg
	}
	return loc + e.Msg
}

// ErrInvalid is wrapped by every *Errors, for errors.Is.
var ErrInvalid = errors.New("spec: invalid .dev-env.yaml")

// Errors is every problem found in a file, in line order.
type Errors struct{ List []FieldError }

func (e *Errors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid .dev-env.yaml (%d problem", len(e.List))
	if len(e.List) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, fe := range e.List {
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

func (e *Errors) Unwrap() error { return ErrInvalid }

func (e *Errors) add(line, col int, path, format string, args ...any) {
	e.List = append(e.List, FieldError{Line: line, Column: col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (e *Errors) err() error {
	if len(e.List) == 0 {
		return nil
	}
	sort.SliceStable(e.List, func(i, j int) bool { return e.List[i].Line < e.List[j].Line })
	return e
}
