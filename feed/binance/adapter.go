// Package binance is the feed's adapter for Binance spot and USD-M
// perpetual futures: combined-stream WebSockets, the documented diff-depth
// synchronization with REST snapshots, and connection lifecycle (pings,
// serverShutdown). Connections themselves (backoff, silence, make-before-
// break rollover before the 24-hour cap) are feed/session's; this package
// holds only Binance's dialect and its book synchronization.
package binance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/paddockhq/paddock/feed"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/proto"
	"golang.org/x/time/rate"
)

// Binance's documented limits.
const (
	// MaxStreamsPerConn is the most streams one connection may carry.
	MaxStreamsPerConn = 1024
	// connAttemptsPer5Min is the connection attempts allowed per IP.
	connAttemptsPer5Min = 300
)

// Config configures one Binance venue.
type Config struct {
	Futures bool   // USD-M futures (binance-perp) rather than spot
	WSURL   string // e.g. wss://stream.binance.com:9443 (the adapter appends /stream)
	RESTURL string // e.g. https://api.binance.com
	// TradeStream is "trade" or "aggTrade".
	TradeStream string
	// DepthLimit is the REST snapshot depth (Binance: up to 5000 spot, 1000 futures).
	DepthLimit int
	// MaxStreamsPerConn caps streams per connection (default and maximum 1024).
	MaxStreamsPerConn int
	// SilenceTimeout: a connection with no frame (data or ping) for this long
	// is closed and replaced.
	SilenceTimeout time.Duration
	// MaxConnAge: a connection is rolled over (make-before-break) at this age,
	// before Binance's 24-hour cap.
	MaxConnAge time.Duration
	// RolloverOverlap is how long both connections run before the switch.
	RolloverOverlap time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential reconnect backoff.
	BackoffMin, BackoffMax time.Duration
	// ConnAttemptsPer5Min limits connection attempts (Binance allows 300 per IP).
	ConnAttemptsPer5Min int
	// SnapshotConcurrency bounds concurrent REST snapshot requests.
	SnapshotConcurrency int
	// MaxHeldFrames bounds the frames a rollover's new connection holds
	// until the old one catches up (default 10,000; see feed/session).
	MaxHeldFrames int
	HTTPClient    *http.Client
	Logger        *slog.Logger
	// Clock drives every timer: reconnect backoff, silence, rollover,
	// Retry-After waits. clock.Real by default, a fake in tests.
	Clock clock.Clock
	// SnapshotTimeout bounds one REST snapshot request; default 10s.
	SnapshotTimeout time.Duration
}

func (c *Config) setDefaults() error {
	if c.WSURL == "" || c.RESTURL == "" {
		return errors.New("binance: ws_url and rest_url are required")
	}
	c.WSURL = strings.TrimRight(c.WSURL, "/")
	c.RESTURL = strings.TrimRight(c.RESTURL, "/")
	switch c.TradeStream {
	case "":
		c.TradeStream = "trade"
	case "trade", "aggTrade":
	default:
		return fmt.Errorf("binance: trade_stream %q: want trade or aggTrade", c.TradeStream)
	}
	if c.DepthLimit <= 0 {
		c.DepthLimit = 1000
	}
	if c.MaxStreamsPerConn <= 0 || c.MaxStreamsPerConn > MaxStreamsPerConn {
		c.MaxStreamsPerConn = MaxStreamsPerConn
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SilenceTimeout, 30*time.Second) // Binance pings every 20s (spot) to 3 min (futures send data constantly)
	def(&c.MaxConnAge, 23*time.Hour)
	def(&c.RolloverOverlap, 5*time.Second)
	def(&c.BackoffMin, 500*time.Millisecond)
	def(&c.BackoffMax, 30*time.Second)
	if c.ConnAttemptsPer5Min <= 0 {
		c.ConnAttemptsPer5Min = connAttemptsPer5Min
	}
	if c.SnapshotConcurrency <= 0 {
		c.SnapshotConcurrency = 4
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.SnapshotTimeout <= 0 {
		c.SnapshotTimeout = 10 * time.Second
	}
	return nil
}

// Adapter publishes one Binance venue through a feed.Outlet. Create with
// New and Run once. Each instrument belongs to one slot, and everything that
// touches its state (the slot's frames, its snapshot fetches, its outages)
// runs under that slot's lock (session.Slot), so messages keep exchange
// order with one lock per frame.
type Adapter struct {
	cfg      Config
	out      *feed.Outlet
	log      *slog.Logger
	clk      clock.Clock
	limiter  *rate.Limiter
	fetchSem chan struct{}

	states map[string]*instState // by exchange symbol (BTCUSDT)
	slots  []*slot
	ctx    context.Context // set by Run; fetch loops stop with it
	wg     sync.WaitGroup  // fetch loops

	badLog feed.RateLog
}

// New creates an adapter for the outlet's instruments.
func New(cfg Config, out *feed.Outlet) (*Adapter, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	a := &Adapter{
		cfg: cfg, out: out, clk: cfg.Clock,
		log:      cfg.Logger.With("component", "feed", "venue", out.Name),
		limiter:  rate.NewLimiter(rate.Every(5*time.Minute/time.Duration(cfg.ConnAttemptsPer5Min)), 10),
		fetchSem: make(chan struct{}, cfg.SnapshotConcurrency),
		states:   map[string]*instState{},
	}
	// Split the streams into connections of at most MaxStreamsPerConn.
	var cur *slot
	for _, in := range out.Instruments {
		streams := a.streamsFor(in)
		if len(streams) > cfg.MaxStreamsPerConn {
			return nil, fmt.Errorf("binance: %s needs %d streams, more than %d per connection", in.Symbol, len(streams), cfg.MaxStreamsPerConn)
		}
		if cur == nil || len(cur.streams)+len(streams) > cfg.MaxStreamsPerConn {
			cur = &slot{a: a, id: len(a.slots)}
			a.slots = append(a.slots, cur)
		}
		st := &instState{in: in, upper: strings.ToUpper(in.Symbol), slot: cur}
		a.states[st.upper] = st
		cur.streams = append(cur.streams, streams...)
		cur.insts = append(cur.insts, st)
	}
	for _, sl := range a.slots {
		var err error
		if sl.sess, err = sl.newSession(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *Adapter) now() time.Time { return a.clk.Now() }

func (a *Adapter) streamsFor(in *feed.Instrument) []string {
	var s []string
	if in.Events.Trades {
		s = append(s, in.Symbol+"@"+a.cfg.TradeStream)
	}
	if in.Events.Orderbook {
		s = append(s, in.Symbol+"@depth@100ms")
	}
	if in.Events.BBO {
		s = append(s, in.Symbol+"@bookTicker")
	}
	return s
}

// Connections returns how many connections the configured streams need.
func (a *Adapter) Connections() int { return len(a.slots) }

// Run runs every connection slot until ctx is cancelled.
func (a *Adapter) Run(ctx context.Context) error {
	a.ctx = ctx // before any slot runs: fetch loops start from frames
	var wg sync.WaitGroup
	for _, s := range a.slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.sess.Run(ctx) // returns ctx's error
		}()
	}
	wg.Wait()
	a.wg.Wait()
	return nil
}

// Status reports the venue's connection state for the Status heartbeat.
func (a *Adapter) Status() feed.VenueStatus {
	st := feed.VenueStatus{State: proto.StateConnected}
	for _, s := range a.slots {
		st.LastData = max(st.LastData, s.sess.LastData())
		st.Connections += s.sess.Open()
		if ss := s.sess.State(); ss != proto.StateConnected && (st.State == proto.StateConnected || ss == proto.StateDisconnected) {
			st.State = ss
		}
	}
	return st
}

// process handles a parsed data event from slot s; it reports whether the
// event must be held (secondary is true only for a rollover's newer
// connection, which holds what the primary has not delivered yet). Caller
// holds the slot's lock.
func (a *Adapter) process(s *slot, secondary bool, ev *Event, recv int64) (hold bool) {
	st := a.states[string(ev.Symbol)]
	if st == nil || st.slot != s {
		a.out.Metrics.UnknownSymbols.Inc()
		return false
	}
	switch ev.Kind {
	case KindTrade, KindAggTrade:
		return a.onTrade(secondary, st, ev, recv)
	case KindDepth:
		return a.onDepth(secondary, st, ev, recv)
	case KindBookTicker:
		a.onBBO(st, ev, recv)
	}
	return false
}

func (a *Adapter) badFrame(err error, frame []byte) {
	a.out.Metrics.ParseError(err.Error())
	a.badLog.Maybe(a.now(), func(suppressed int64) {
		a.log.Warn("dropped a frame", "err", err, "sample", fmt.Sprintf("%.200q", frame), "suppressed_since_last_log", suppressed)
	})
}

func (a *Adapter) badEvent(what, symbol string) {
	a.out.Metrics.ParseError("unencodable")
	a.badLog.Maybe(a.now(), func(suppressed int64) {
		a.log.Warn("dropped an event", "symbol", symbol, "err", what, "suppressed_since_last_log", suppressed)
	})
}
