// Package binance is the feed's adapter for Binance spot and USD-M
// perpetual futures: combined-stream WebSockets, the documented diff-depth
// synchronization with REST snapshots, and connection lifecycle (pings,
// silence detection, backoff, serverShutdown and make-before-break rollover
// before the 24-hour connection cap).
package binance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/feed"
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
	HTTPClient          *http.Client
	Logger              *slog.Logger
	Now                 func() time.Time
	// SnapshotTimeout bounds one REST snapshot request; default 10s.
	SnapshotTimeout time.Duration
	// After is the clock's timer for waits the exchange dictates
	// (Retry-After); time.After by default, a fake in tests.
	After func(time.Duration) <-chan time.Time
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
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
	if c.SnapshotTimeout <= 0 {
		c.SnapshotTimeout = 10 * time.Second
	}
	return nil
}

// Adapter publishes one Binance venue through a feed.Outlet. Create with
// New and Run once. Frames from every connection are processed under one
// mutex, so per-instrument state needs no further locking and messages keep
// exchange order.
type Adapter struct {
	cfg      Config
	out      *feed.Outlet
	log      *slog.Logger
	now      func() time.Time
	after    func(time.Duration) <-chan time.Time
	limiter  *rate.Limiter
	fetchSem chan struct{}

	mu     sync.Mutex
	states map[string]*instState // by exchange symbol (BTCUSDT)
	slots  []*slot
	ctx    context.Context // set by Run; fetch loops stop with it
	wg     sync.WaitGroup  // fetch loops

	lastData atomic.Int64
	badLog   rateLog
}

// New creates an adapter for the outlet's instruments.
func New(cfg Config, out *feed.Outlet) (*Adapter, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	a := &Adapter{
		cfg: cfg, out: out, now: cfg.Now, after: cfg.After,
		log:      cfg.Logger.With("component", "feed", "venue", out.Venue.String()),
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
	return a, nil
}

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
	a.mu.Lock()
	a.ctx = ctx
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range a.slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx)
		}()
	}
	wg.Wait()
	a.wg.Wait()
	return nil
}

// Status reports the venue's connection state for the Status heartbeat.
func (a *Adapter) Status() feed.VenueStatus {
	st := feed.VenueStatus{State: proto.StateConnected, LastData: a.lastData.Load()}
	for _, s := range a.slots {
		st.Connections += int(s.open.Load())
		if ss := proto.State(s.state.Load()); ss != proto.StateConnected && (st.State == proto.StateConnected || ss == proto.StateDisconnected) {
			st.State = ss
		}
	}
	return st
}

// handleFrame processes one frame from connection c. It is the hot path:
// parsing, de-duplication, book update, encoding and publishing, with no
// allocation in steady state.
func (a *Adapter) handleFrame(c *wsConn, frame []byte, recv int64) {
	a.out.Metrics.Frames.Inc()
	ev, err := c.parser.Parse(frame)
	if err != nil {
		a.badFrame(err, frame)
		return
	}
	switch ev.Kind {
	case KindShutdown:
		a.log.Warn("serverShutdown received; rolling the connection over", "conn", c.id)
		c.shutdownOnce.Do(func() { close(c.shutdown) })
		return
	case KindResponse:
		return
	case KindError:
		a.log.Error("binance error response", "conn", c.id, "error", string(ev.ErrorRaw))
		return
	case KindSnapshot, KindUnknown:
		a.badFrame(ErrUnknownEvent, frame)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.retired {
		return // replaced by a rollover; the new connection carries on
	}
	if a.process(c, ev, recv) {
		c.held = append(c.held, heldFrame{frame: append([]byte(nil), frame...), recv: recv})
		return
	}
	if !c.secondary {
		a.drainHeld(c.slot)
	}
}

// process handles a parsed data event; it reports whether a secondary
// connection must hold the event until the primary catches up.
func (a *Adapter) process(c *wsConn, ev *Event, recv int64) (hold bool) {
	st := a.states[string(ev.Symbol)]
	if st == nil || st.slot != c.slot {
		a.out.Metrics.UnknownSymbols.Inc()
		return false
	}
	switch ev.Kind {
	case KindTrade, KindAggTrade:
		return a.onTrade(c, st, ev, recv)
	case KindDepth:
		return a.onDepth(c, st, ev, recv)
	case KindBookTicker:
		a.onBBO(st, ev, recv)
	}
	return false
}

type heldFrame struct {
	frame []byte
	recv  int64
}

// drainHeld re-processes frames the slot's secondary connection held, now
// that the primary may have caught up. Caller holds a.mu.
func (a *Adapter) drainHeld(s *slot) {
	if s.secondary != nil {
		a.replayHeld(s.secondary)
	}
}

// replayHeld processes c's held frames in order and keeps those still held
// (from the first one that is held again). A connection that is no longer
// secondary never holds, so after a rollover's switch this replays them all.
// It returns how many frames it processed. Caller holds a.mu.
func (a *Adapter) replayHeld(c *wsConn) int {
	var p Parser
	i := 0
	for ; i < len(c.held); i++ {
		ev, err := p.Parse(c.held[i].frame)
		if err != nil {
			continue // it parsed the first time; the bytes are our copy
		}
		if a.process(c, ev, c.held[i].recv) {
			break
		}
	}
	c.held = append(c.held[:0], c.held[i:]...)
	return i
}

func (a *Adapter) badFrame(err error, frame []byte) {
	a.out.Metrics.ParseError(err.Error())
	a.badLog.maybe(a.now(), func(suppressed int64) {
		a.log.Warn("dropped a frame", "err", err, "sample", fmt.Sprintf("%.200q", frame), "suppressed_since_last_log", suppressed)
	})
}

func (a *Adapter) badEvent(what, symbol string) {
	a.out.Metrics.ParseError("unencodable")
	a.badLog.maybe(a.now(), func(suppressed int64) {
		a.log.Warn("dropped an event", "symbol", symbol, "err", what, "suppressed_since_last_log", suppressed)
	})
}

// rateLog lets one log line through per interval and counts the rest.
type rateLog struct {
	last       atomic.Int64
	suppressed atomic.Int64
}

func (r *rateLog) maybe(now time.Time, log func(suppressed int64)) {
	last := r.last.Load()
	if now.UnixNano()-last < int64(5*time.Second) || !r.last.CompareAndSwap(last, now.UnixNano()) {
		r.suppressed.Add(1)
		return
	}
	log(r.suppressed.Swap(0))
}

// backoff is capped exponential backoff with equal jitter.
type backoff struct {
	min, max time.Duration
	n        int
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

func (b *backoff) next() time.Duration {
	d := b.min << min(b.n, 20)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.n++
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.n = 0 }
