package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/paddockhq/paddock/venue"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/risk"
	"github.com/paddockhq/paddock/sandbox/paper"
)

// Config is the node's configuration file, written by the provisioner (the
// local provisioner's node.json, the Terraform module's user data). Decimals
// are strings so that no float64 sits between the developer's file and the
// risk gate.
type Config struct {
	Name         string       `json:"name"`
	NATSURL      string       `json:"nats_url"`
	NATSCreds    string       `json:"nats_creds,omitempty"`
	InboxPrefix  string       `json:"inbox_prefix,omitempty"` // the environment's private reply inbox
	AdminListen  string       `json:"admin_listen"`           // default :8080
	EndpointFile string       `json:"endpoint_file"`          // where the admin URL is written once listening
	Instruments  []Instrument `json:"instruments"`
	Risk         RiskConfig   `json:"risk"`
	// Fees per venue as fractions of notional; a venue not listed gets
	// DefaultFees.
	Fees map[string]FeeConfig `json:"fees,omitempty"`
	// USDRates values quote currencies that are not USD-like and have no
	// <QUOTE>USDT instrument among the declared ones ("BTC": "97000").
	USDRates map[string]string `json:"usd_rates,omitempty"`
	// APIKeyFile holds the environment's API key (status, orders, halt);
	// AdminKeyFile the admin key (also resume). Both required.
	APIKeyFile   string `json:"api_key_file"`
	AdminKeyFile string `json:"admin_key_file"`
	// FeedStaleSeconds: without a Status from the feed for this long, a
	// venue counts as down; default 3.
	FeedStaleSeconds int `json:"feed_stale_seconds,omitempty"`
	// StatusEverySeconds is the NodeStatus heartbeat's period; default 5.
	StatusEverySeconds int             `json:"status_every_seconds,omitempty"`
	Strategy           *StrategyConfig `json:"strategy,omitempty"`
	// Deadline is the environment's expiry, the node's dead man's switch:
	// at it the node refuses orders, and DeadlineGraceSeconds (default 900)
	// later, with no extension heard of, it exits (ErrDeadlinePassed), which
	// on AWS powers the instance off and terminates it. An extension moves
	// it through DeadlineFile (RFC 3339, rewritten by the local provisioner)
	// or the re-issued NATS credentials, whose expiry is the deadline; the
	// latest of the three wins. Zero: no deadline.
	// Replay, when set, delivers recorded market data into the node's own
	// namespace (proto.ReplayNamespace): in mode replay the node trades on
	// it; in mode both it trades live and the strategy also gets the
	// replay (client.EnvReplayNamespace).
	Replay               *ReplayConfig `json:"replay,omitempty"`
	Deadline             time.Time     `json:"deadline,omitzero"`
	DeadlineFile         string        `json:"deadline_file,omitempty"`
	DeadlineGraceSeconds int           `json:"deadline_grace_seconds,omitempty"`
}

// ReplayConfig is market_data's replay: the range, its pace (0: as fast as
// possible) and whether live data runs beside it.
type ReplayConfig struct {
	Mode  string    `json:"mode"` // replay | both
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Speed float64   `json:"speed"`
}

// Instrument is one declared instrument.
type Instrument struct {
	Venue  string `json:"venue"`
	Symbol string `json:"symbol"`
	Quote  string `json:"quote,omitempty"` // derived from the symbol when empty
}

// RiskConfig is risk_config from .dev-env.yaml.
type RiskConfig struct {
	MaxPositionUSD    string `json:"max_position_usd"`
	MaxDrawdownPct    string `json:"max_drawdown_pct"`
	MaxOrderRate      string `json:"max_order_rate"`
	StartingEquityUSD string `json:"starting_equity_usd,omitempty"` // default 10000
	MaxMarkAgeSeconds int    `json:"max_mark_age_seconds,omitempty"`
}

// FeeConfig is a venue's paper fee schedule.
type FeeConfig struct {
	Maker string `json:"maker"`
	Taker string `json:"taker"`
}

// DefaultFees are the venues' default retail schedules, from the venue
// registry.
var DefaultFees = func() map[string]FeeConfig {
	m := map[string]FeeConfig{}
	for _, v := range venue.All() {
		m[v.Name] = FeeConfig{Maker: v.MakerFee, Taker: v.TakerFee}
	}
	return m
}()

// StrategyConfig is the strategy the node runs and supervises.
type StrategyConfig struct {
	Command []string `json:"command"`          // the binary and its arguments
	Config  string   `json:"config,omitempty"` // passed as PADDOCK_STRATEGY_CONFIG
	Dir     string   `json:"dir,omitempty"`    // working directory
	// Backoff between restarts after a crash: doubling from min to max
	// (defaults 1s and 30s), reset after a minute of running.
	RestartMinMillis int `json:"restart_min_ms,omitempty"`
	RestartMaxMillis int `json:"restart_max_ms,omitempty"`
}

// ErrConfig wraps every configuration problem.
var ErrConfig = errors.New("node: invalid configuration")

// LoadConfig reads and checks a node configuration file.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read node config: %w", err)
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) check() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(f, a...)) }
	if c.Name == "" || c.NATSURL == "" {
		return bad("name and nats_url are required")
	}
	// Names become NATS subjects; durations become timers: both are
	// bounded here, at the node's boundary, whoever wrote the file.
	if err := proto.CheckToken(c.Name); err != nil {
		return bad("name %q: %v", c.Name, err)
	}
	for _, d := range []struct {
		field string
		v     int
		max   int
	}{{"feed_stale_seconds", c.FeedStaleSeconds, 3600}, {"status_every_seconds", c.StatusEverySeconds, 3600},
		{"risk.max_mark_age_seconds", c.Risk.MaxMarkAgeSeconds, 3600},
		{"deadline_grace_seconds", c.DeadlineGraceSeconds, 7 * 24 * 3600}} {
		if d.v < 0 || d.v > d.max {
			return bad("%s: %d is out of range (0 to %d)", d.field, d.v, d.max)
		}
	}
	if st := c.Strategy; st != nil && (st.RestartMinMillis < 0 || st.RestartMaxMillis < 0 || st.RestartMinMillis > 3_600_000 ||
		st.RestartMaxMillis > 3_600_000 || (st.RestartMaxMillis > 0 && st.RestartMinMillis > st.RestartMaxMillis)) {
		return bad("strategy.restart_min_ms and restart_max_ms: 0 to 3600000, min at most max")
	}
	if r := c.Replay; r != nil && ((r.Mode != "replay" && r.Mode != "both") || !r.End.After(r.Start) || r.Speed < 0 || r.Speed > 1000) {
		return bad("replay: mode replay or both, end after start, speed 0 (max) to 1000")
	}
	if c.AdminListen == "" {
		c.AdminListen = ":8080"
	}
	if c.APIKeyFile == "" || c.AdminKeyFile == "" {
		return bad("api_key_file and admin_key_file are required: the admin API is never open")
	}
	if len(c.Instruments) == 0 {
		return bad("no instruments")
	}
	for i := range c.Instruments {
		in := &c.Instruments[i]
		if proto.CheckToken(in.Venue) != nil || proto.CheckToken(in.Symbol) != nil {
			return bad("instrument %q:%q: venue and symbol must be subject tokens", in.Venue, in.Symbol)
		}
		if c.Instruments[i].Quote == "" {
			q, ok := risk.QuoteOf(in.Symbol)
			if !ok {
				return bad("instrument %s:%s: cannot tell its quote currency; set quote", in.Venue, in.Symbol)
			}
			in.Quote = q
		}
	}
	if _, err := c.Limits(); err != nil {
		return err
	}
	for v := range c.Fees {
		if _, err := c.fees(v); err != nil {
			return err
		}
	}
	for q, r := range c.USDRates {
		if d, err := proto.ParseUDecimal(r); err != nil || d.Mant == 0 {
			return bad("usd_rates.%s: %q is not a positive decimal", q, r)
		}
	}
	if c.Strategy != nil && len(c.Strategy.Command) == 0 {
		return bad("strategy.command is empty")
	}
	return nil
}

// Limits converts risk_config into the risk gate's limits.
func (c *Config) Limits() (risk.Limits, error) {
	var l risk.Limits
	for _, f := range []struct {
		name string
		s    string
		dst  *proto.Decimal
		def  string
	}{
		{"max_position_usd", c.Risk.MaxPositionUSD, &l.MaxPositionUSD, ""},
		{"max_drawdown_pct", c.Risk.MaxDrawdownPct, &l.MaxDrawdownPct, ""},
		{"max_order_rate", c.Risk.MaxOrderRate, &l.MaxOrderRate, ""},
		{"starting_equity_usd", c.Risk.StartingEquityUSD, &l.StartingEquityUSD, "10000"},
	} {
		s := f.s
		if s == "" {
			s = f.def
		}
		d, err := proto.ParseUDecimal(s)
		if err != nil {
			return l, fmt.Errorf("%w: risk.%s: %q is not a decimal", ErrConfig, f.name, s)
		}
		*f.dst = d
	}
	l.MaxMarkAge = time.Duration(c.Risk.MaxMarkAgeSeconds) * time.Second
	if _, err := risk.New(l); err != nil {
		return l, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return l, nil
}

func (c *Config) fees(venue string) (paper.Fees, error) {
	fc, ok := c.Fees[venue]
	if !ok {
		fc, ok = DefaultFees[venue]
	}
	if !ok {
		fc = FeeConfig{Maker: "0.001", Taker: "0.001"}
	}
	m, err1 := proto.ParseDecimal(fc.Maker)
	t, err2 := proto.ParseDecimal(fc.Taker)
	if err1 != nil || err2 != nil {
		return paper.Fees{}, fmt.Errorf("%w: fees.%s: maker and taker must be decimals", ErrConfig, venue)
	}
	return paper.Fees{Maker: m, Taker: t}, nil
}

func (c *Config) statusEvery() time.Duration {
	if c.StatusEverySeconds <= 0 {
		return 5 * time.Second
	}
	return time.Duration(c.StatusEverySeconds) * time.Second
}

func (c *Config) deadlineGrace() time.Duration {
	if c.DeadlineGraceSeconds <= 0 {
		return 15 * time.Minute
	}
	return time.Duration(c.DeadlineGraceSeconds) * time.Second
}

func (c *Config) feedStale() time.Duration {
	if c.FeedStaleSeconds <= 0 {
		return 3 * time.Second
	}
	return time.Duration(c.FeedStaleSeconds) * time.Second
}
