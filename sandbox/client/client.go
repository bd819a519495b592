// Package client is what a strategy imports to trade in a paddock sandbox
// environment: exact order books joined from the feed's NATS subjects
// (Market), and the node's order API (Place, Cancel, OpenOrders, fills).
//
// A strategy started by `paddock node` finds everything it needs in its
// environment (FromEnv): the NATS URL and credentials of its environment,
// the declared instruments and its config file. GUIDE.md in this directory
// describes the same API for strategies in other languages.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/internal/natsconn"
	"github.com/paddockhq/paddock/sandbox/marketdata"
)

// Environment variables `paddock node` sets for its strategy.
const (
	EnvName        = "PADDOCK_ENV"
	EnvNATSURL     = "PADDOCK_NATS_URL"
	EnvNATSCreds   = "PADDOCK_NATS_CREDS"
	EnvInbox       = "PADDOCK_NATS_INBOX_PREFIX"
	EnvInstruments = "PADDOCK_INSTRUMENTS" // venue:symbol,venue:symbol
	EnvConfig      = "PADDOCK_STRATEGY_CONFIG"
	EnvAdminURL    = "PADDOCK_ADMIN_URL"
	// EnvMarketNamespace is where the environment's trading market data is:
	// "" live, replay.<env> for a replay (market_data.mode replay).
	EnvMarketNamespace = "PADDOCK_MARKET_NAMESPACE"
	// EnvReplayNamespace is the replay's namespace in mode replay and both
	// (in both, Market is live and ReplayMarket the replay).
	EnvReplayNamespace = "PADDOCK_REPLAY_NAMESPACE"
)

// Config is how a strategy reaches its environment.
type Config struct {
	Env         string
	NATSURL     string
	NATSCreds   string // a .creds file; empty for an open server
	InboxPrefix string // the environment's private reply inbox
	Instruments []Instrument
	ConfigFile  string // the strategy's own config file, if declared
	AdminURL    string
	// MarketNamespace and ReplayNamespace: see EnvMarketNamespace.
	MarketNamespace, ReplayNamespace string
}

// FromEnv reads the Config `paddock node` passes to its strategy.
func FromEnv() (Config, error) {
	c := Config{Env: os.Getenv(EnvName), NATSURL: os.Getenv(EnvNATSURL), NATSCreds: os.Getenv(EnvNATSCreds),
		InboxPrefix: os.Getenv(EnvInbox), ConfigFile: os.Getenv(EnvConfig), AdminURL: os.Getenv(EnvAdminURL),
		MarketNamespace: os.Getenv(EnvMarketNamespace), ReplayNamespace: os.Getenv(EnvReplayNamespace)}
	if c.Env == "" || c.NATSURL == "" {
		return c, fmt.Errorf("client: %s and %s must be set (is this running under paddock node?)", EnvName, EnvNATSURL)
	}
	ins, err := ParseInstruments(os.Getenv(EnvInstruments))
	if err != nil {
		return c, err
	}
	c.Instruments = ins
	return c, nil
}

// ParseInstruments parses "binance:btcusdt,binance-perp:btcusdt".
func ParseInstruments(s string) ([]Instrument, error) {
	var out []Instrument
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		v, sym, ok := strings.Cut(part, ":")
		if !ok || v == "" || sym == "" {
			return nil, fmt.Errorf("client: instrument %q is not venue:symbol", part)
		}
		out = append(out, Instrument{Venue: v, Symbol: sym})
	}
	return out, nil
}

// FormatInstruments is the inverse of ParseInstruments.
func FormatInstruments(ins []Instrument) string {
	parts := make([]string, len(ins))
	for i, in := range ins {
		parts[i] = in.String()
	}
	return strings.Join(parts, ",")
}

// Subjects of an environment's order API and events.
func OrdersSubject(env, op string) string  { return "env." + env + ".orders." + op } // op: new, cancel, list
func EventSubject(env, kind string) string { return "env." + env + "." + kind }      // kind: orders, fills, risk

// StatusSubject carries the node's NodeStatus heartbeat.
func StatusSubject(env string) string { return "env." + env + ".node" }

// Client is a strategy's connection to its environment. Safe for concurrent
// use.
type Client struct {
	cfg   Config
	nc    *nats.Conn
	drain func() error
}

// Connect connects to the environment's NATS with its credentials.
func Connect(cfg Config, opts ...nats.Option) (*Client, error) {
	opts = append([]nats.Option{nats.Name("paddock-strategy-" + cfg.Env)}, opts...)
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	nc, drain, err := natsconn.Connect(cfg.NATSURL, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, nc: nc, drain: drain}, nil
}

// Config returns the client's configuration.
func (c *Client) Config() Config { return c.cfg }

// Conn is the underlying NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Close drains the connection.
func (c *Client) Close() error { return c.drain() }

// Market returns a Market over the environment's instruments: the data the
// node trades on (live, or the replay in market_data.mode replay).
func (c *Client) Market(h Handlers) (*Market, error) {
	return marketdata.NewMarketAt(c.nc, c.cfg.MarketNamespace, c.cfg.Instruments, h)
}

// ReplayMarket returns a Market over the environment's replay (modes
// replay and both); an error when it has none. Its Now is the replay clock.
func (c *Client) ReplayMarket(h Handlers) (*Market, error) {
	if c.cfg.ReplayNamespace == "" {
		return nil, fmt.Errorf("client: environment %s replays nothing (market_data.mode is live)", c.cfg.Env)
	}
	return marketdata.NewMarketAt(c.nc, c.cfg.ReplayNamespace, c.cfg.Instruments, h)
}

// RejectedError is an order the node refused: by the risk gate (Code is a
// risk code such as max_position), or as invalid.
type RejectedError struct {
	Code   string
	Reason string
}

func (e *RejectedError) Error() string { return "order rejected (" + e.Code + "): " + e.Reason }

// ErrRejected matches every *RejectedError with errors.Is.
var ErrRejected = errors.New("client: order rejected")

func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

func (c *Client) call(ctx context.Context, op string, req any) (Reply, error) {
	raw, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	msg, err := c.nc.RequestWithContext(ctx, OrdersSubject(c.cfg.Env, op), raw)
	if err != nil {
		return Reply{}, fmt.Errorf("order %s: %w", op, err)
	}
	var r Reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return Reply{}, fmt.Errorf("order %s: bad reply: %w", op, err)
	}
	if r.Error != "" {
		return r, &RejectedError{Code: r.Code, Reason: r.Error}
	}
	return r, nil
}

// Place sends an order through the risk gate to the environment's venue.
// The returned Order is its state after the immediate matching (a marketable
// order may already be filled).
func (c *Client) Place(ctx context.Context, o OrderRequest) (Order, error) {
	r, err := c.call(ctx, "new", o)
	if r.Order == nil {
		return Order{}, err
	}
	return *r.Order, err
}

// Cancel cancels an open order by id.
func (c *Client) Cancel(ctx context.Context, id uint64) (Order, error) {
	r, err := c.call(ctx, "cancel", CancelRequest{ID: id})
	if r.Order == nil {
		return Order{}, err
	}
	return *r.Order, err
}

// OpenOrders lists the environment's open orders.
func (c *Client) OpenOrders(ctx context.Context) ([]Order, error) {
	r, err := c.call(ctx, "list", struct{}{})
	return r.Orders, err
}

// OnFill calls f for every fill of the environment, on a NATS goroutine.
func (c *Client) OnFill(f func(Fill)) (*nats.Subscription, error) {
	return c.nc.Subscribe(EventSubject(c.cfg.Env, "fills"), func(m *nats.Msg) {
		var fl Fill
		if json.Unmarshal(m.Data, &fl) == nil {
			f(fl)
		}
	})
}
