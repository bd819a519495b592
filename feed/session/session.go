// Package session owns one exchange connection slot for any venue: it dials
// through the venue's Dialect, subscribes, reads frames into one reused
// buffer and hands them to the venue's Handler, answers server pings and
// sends client keepalives, detects silence, reconnects with jittered
// exponential backoff, and rolls a connection over make-before-break (on age
// or on request) with a bounded queue of frames the new connection holds
// until the old one catches up. Every timer runs on an injected clock.
//
// It knows nothing about any venue's messages: the Handler parses frames and
// decides whether a frame from the newer connection of a rollover must wait.
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/proto"
	"github.com/prometheus/client_golang/prometheus"
)

// Dialect is what a venue tells the session layer about its wire protocol.
// It is a value: the session never calls back into the venue to connect.
type Dialect struct {
	// URL is the WebSocket endpoint this slot dials.
	URL string
	// Header is sent with the handshake (nil: none).
	Header http.Header
	// Subscribe holds the messages sent, in order, after every dial.
	Subscribe [][]byte
	// SubscribeEvery paces Subscribe messages (venues rate-limit incoming
	// messages); zero sends them back to back.
	SubscribeEvery time.Duration
	// Ping is a client keepalive message sent every PingEvery on each open
	// connection, for venues that expect the client to ping. Nil for venues
	// whose servers ping the client; the session answers those pings.
	Ping      []byte
	PingEvery time.Duration
	// ReadLimit caps one message's size (default 32 MiB).
	ReadLimit int64
}

// Handler is the venue's side of a slot.
type Handler interface {
	// Frame handles one frame from c. The slot calls it for one frame at a
	// time (its connections share one lock) and frame is valid only during
	// the call. It returns true when c is the secondary (newer) connection of
	// a rollover and the frame must be held until the primary catches up;
	// the slot then keeps a copy and offers it again, as primary frames
	// arrive and at the switch. A primary's frames are never held.
	Frame(c *Conn, frame []byte, recv int64) (hold bool)
	// Lost tells the venue the slot has no usable connection (ErrSilent
	// when it went quiet); it is called before the reconnect backoff,
	// without the slot's lock (take it with Slot.Lock to touch what Frame
	// touches).
	Lost(reason error)
}

// Metrics are the counters a slot feeds; nil fields are not counted.
type Metrics struct {
	Reconnects    prometheus.Counter // unplanned reconnections
	Rollovers     prometheus.Counter // make-before-break switches
	HeldOverflows prometheus.Counter // rollovers switched early because the held queue filled
}

// Config configures a slot. Zero durations take the defaults noted.
type Config struct {
	Name    string // for logs, e.g. "slot 0"
	Dialect Dialect
	Handler Handler
	Clock   clock.Clock  // default clock.Real
	Logger  *slog.Logger // default: discard
	Limiter interface {  // connection attempts (venues cap them per IP); nil: none
		Wait(ctx context.Context) error
	}
	// SilenceTimeout: a primary connection with no frame (data or ping) for
	// this long is closed and replaced (default 30s).
	SilenceTimeout time.Duration
	// MaxConnAge: a connection is rolled over at this age (default 23h).
	MaxConnAge time.Duration
	// RolloverOverlap: both connections run this long before the switch
	// (default 5s); the switch waits up to 4x for held frames to drain.
	RolloverOverlap time.Duration
	// BackoffMin and BackoffMax bound the reconnect backoff (500ms, 30s).
	BackoffMin, BackoffMax time.Duration
	// MaxHeld bounds the frames a secondary holds (default 10,000). A full
	// queue switches the rollover at once (counted), so the old
	// connection's lag becomes a gap the venue repairs, not unbounded memory.
	MaxHeld int
	// HandshakeTimeout bounds one dial (default 10s).
	HandshakeTimeout time.Duration
	Metrics          Metrics
}

func (c *Config) setDefaults() error {
	if c.Dialect.URL == "" {
		return errors.New("session: a dialect URL is required")
	}
	if c.Handler == nil {
		return errors.New("session: a handler is required")
	}
	if len(c.Dialect.Ping) > 0 && c.Dialect.PingEvery <= 0 {
		return errors.New("session: a keepalive ping needs an interval")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SilenceTimeout, 30*time.Second)
	def(&c.MaxConnAge, 23*time.Hour)
	def(&c.RolloverOverlap, 5*time.Second)
	def(&c.BackoffMin, 500*time.Millisecond)
	def(&c.BackoffMax, 30*time.Second)
	def(&c.HandshakeTimeout, 10*time.Second)
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.MaxHeld <= 0 {
		c.MaxHeld = 10_000
	}
	if c.Dialect.ReadLimit <= 0 {
		c.Dialect.ReadLimit = 32 << 20
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// ErrSilent is the reason Handler.Lost gets when a connection went quiet.
var ErrSilent = errors.New("no frame within the silence timeout")

// Slot keeps one set of streams connected: one connection, two during a
// rollover. Create with New and call Run once; State and Open may be called
// from any goroutine.
type Slot struct {
	cfg Config
	clk clock.Clock
	log *slog.Logger

	mu      sync.Mutex // serializes frames and guards the fields below
	primary *Conn
	next    *Conn // the rollover's secondary, if any

	retiredConns []*Conn       // mu: retired by a switch, for serve to close
	switched     chan struct{} // signals retiredConns (capacity 1)
	kick         chan struct{} // rollover requests (capacity 1)
	state        atomic.Int32  // proto.State
	open         atomic.Int32  // open connections
	lastData     atomic.Int64  // ns on the clock: the last frame on any connection
}

// New checks cfg and returns a slot.
func New(cfg Config) (*Slot, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Slot{cfg: cfg, clk: cfg.Clock, log: cfg.Logger, switched: make(chan struct{}, 1), kick: make(chan struct{}, 1)}
	s.state.Store(int32(proto.StateConnecting))
	return s, nil
}

// Lock and Unlock take the lock the slot calls Handler.Frame under, so that
// a venue's other goroutines (a snapshot fetch applying a book) change the
// slot's per-instrument state serialized with its frames, without a second
// lock on the hot path. Never call them from inside Handler.Frame.
func (s *Slot) Lock()   { s.mu.Lock() }
func (s *Slot) Unlock() { s.mu.Unlock() }

// State is the slot's connection state.
func (s *Slot) State() proto.State { return proto.State(s.state.Load()) }

// LastData is when the last frame arrived on any of the slot's
// connections (ns on the slot's clock; 0: never).
func (s *Slot) LastData() int64 { return s.lastData.Load() }

// Open is how many connections are open (two during a rollover).
func (s *Slot) Open() int { return int(s.open.Load()) }

// Conn is one WebSocket connection of a slot.
type Conn struct {
	id        uint64
	slot      *Slot
	ws        *websocket.Conn
	opened    time.Time
	secondary bool        // slot.mu
	retired   bool        // slot.mu: replaced by a switch; its frames are dropped
	held      []heldFrame // slot.mu

	wmu       sync.Mutex   // one writer at a time
	lastFrame atomic.Int64 // ns on the slot's clock, data or ping
	done      chan struct{}
	err       error // why the reader exited; read after done
}

type heldFrame struct {
	frame []byte
	recv  int64
}

var connIDs atomic.Uint64

// ID identifies the connection in logs.
func (c *Conn) ID() uint64 { return c.id }

// Secondary reports whether c is the newer connection of a rollover that has
// not been switched to. Meaningful inside Handler.Frame.
func (c *Conn) Secondary() bool { return c.secondary }

// Rollover asks the slot to replace c make-before-break (a venue's "server
// shutting down" notice). Safe from any goroutine, including Handler.Frame;
// a no-op for a connection that is not part of a running slot.
func (c *Conn) Rollover() {
	if c.slot == nil {
		return
	}
	select {
	case c.slot.kick <- struct{}{}:
	default:
	}
}

// Run keeps the slot connected until ctx ends. It returns ctx's error.
func (s *Slot) Run(ctx context.Context) error {
	bo := Backoff{Min: s.cfg.BackoffMin, Max: s.cfg.BackoffMax}
	s.state.Store(int32(proto.StateConnecting))
	defer s.state.Store(int32(proto.StateDisconnected))
	first := true
	for ctx.Err() == nil {
		c, err := s.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.log.Warn("connect", "slot", s.cfg.Name, "err", err)
			clock.Sleep(s.clk, bo.Next(), ctx.Done())
			continue
		}
		if !first && s.cfg.Metrics.Reconnects != nil {
			s.cfg.Metrics.Reconnects.Inc()
		}
		first = false
		s.mu.Lock()
		s.primary = c
		s.mu.Unlock()
		s.open.Add(1)
		go c.read()
		s.state.Store(int32(proto.StateConnected))
		s.log.Info("connected", "slot", s.cfg.Name, "conn", c.id)
		lived, reason := s.serve(ctx, c)
		if ctx.Err() != nil {
			break
		}
		s.state.Store(int32(proto.StateDisconnected))
		s.log.Warn("connection lost", "slot", s.cfg.Name, "reason", reason, "lived", lived.Round(time.Millisecond))
		s.cfg.Handler.Lost(reason)
		if lived > time.Minute {
			bo.Reset()
		}
		clock.Sleep(s.clk, bo.Next(), ctx.Done())
	}
	return ctx.Err()
}

// dial opens a connection and sends the dialect's subscriptions. The reader
// is started by the caller once the connection's role is set.
func (s *Slot) dial(ctx context.Context) (*Conn, error) {
	if s.cfg.Limiter != nil {
		if err := s.cfg.Limiter.Wait(ctx); err != nil {
			return nil, err
		}
	}
	d := websocket.Dialer{HandshakeTimeout: s.cfg.HandshakeTimeout, ReadBufferSize: 64 << 10, WriteBufferSize: 16 << 10}
	ws, resp, err := d.DialContext(ctx, s.cfg.Dialect.URL, s.cfg.Dialect.Header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", s.cfg.Dialect.URL, err)
	}
	ws.SetReadLimit(s.cfg.Dialect.ReadLimit)
	c := &Conn{id: connIDs.Add(1), slot: s, ws: ws, opened: s.clk.Now(), done: make(chan struct{})}
	c.lastFrame.Store(s.clk.Now().UnixNano())
	ws.SetPingHandler(func(data string) error {
		c.lastFrame.Store(s.clk.Now().UnixNano())
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for i, msg := range s.cfg.Dialect.Subscribe {
		if i > 0 && s.cfg.Dialect.SubscribeEvery > 0 && !clock.Sleep(s.clk, s.cfg.Dialect.SubscribeEvery, ctx.Done()) {
			ws.Close()
			return nil, ctx.Err()
		}
		if err := c.write(msg); err != nil {
			ws.Close()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
	}
	return c, nil
}

// write sends one text message. Writers (subscriptions during dial,
// keepalives from serve, a handler's Send) take wmu, as gorilla allows one
// writer at a time; pongs go through WriteControl, which may run beside it.
func (c *Conn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, msg)
}

// Send writes a message on the connection (a venue re-subscribing one
// topic for a fresh snapshot). Safe from any goroutine, including
// Handler.Frame; an error means the connection is failing, which its
// reader will report.
func (c *Conn) Send(msg []byte) error {
	if c.ws == nil {
		return errors.New("session: not connected")
	}
	return c.write(msg)
}

// read is the connection's reader goroutine: frames go into one reused
// buffer and straight to the slot.
func (c *Conn) read() {
	defer close(c.done)
	s := c.slot
	buf := make([]byte, 0, 64<<10)
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			c.err = err
			return
		}
		if buf, err = readMessage(r, buf); err != nil {
			c.err = err
			return
		}
		now := s.clk.Now().UnixNano()
		c.lastFrame.Store(now)
		s.lastData.Store(now)
		s.deliver(c, buf, now)
	}
}

// readMessage reads a whole message into buf, growing it as needed.
func readMessage(r io.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func (c *Conn) close() { _ = c.ws.Close() }

// deliver hands one frame to the handler under the slot's lock. A primary's
// frame may let the secondary's held frames through, so they are offered
// again after it.
func (s *Slot) deliver(c *Conn, frame []byte, recv int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.retired {
		return
	}
	hold := s.cfg.Handler.Frame(c, frame, recv)
	switch {
	case hold && c.secondary:
		if len(c.held) >= s.cfg.MaxHeld {
			// The primary is too far behind: switch now. The frames it never
			// delivered become a gap the venue's handler repairs and counts.
			if s.cfg.Metrics.HeldOverflows != nil {
				s.cfg.Metrics.HeldOverflows.Inc()
			}
			s.log.Warn("rollover: held queue full; switching early", "slot", s.cfg.Name, "held", len(c.held))
			s.promoteLocked()
			s.replayLocked(c) // the held frames came first
			s.cfg.Handler.Frame(c, frame, recv)
			return
		}
		c.held = append(c.held, heldFrame{frame: append([]byte(nil), frame...), recv: recv})
	case !c.secondary && s.next != nil && len(s.next.held) > 0:
		s.replayLocked(s.next)
	}
}

// replayLocked offers c's held frames in order and keeps those from the
// first one held again. It returns how many it processed. Caller holds s.mu.
func (s *Slot) replayLocked(c *Conn) int {
	i := 0
	for ; i < len(c.held); i++ {
		if s.cfg.Handler.Frame(c, c.held[i].frame, c.held[i].recv) && c.secondary {
			break
		}
	}
	c.held = append(c.held[:0], c.held[i:]...)
	return i
}

// promoteLocked makes the secondary the primary: the old primary is retired
// (its frames are dropped from here on) and queued for serve to close. The
// caller replays the new primary's held frames. Caller holds s.mu.
func (s *Slot) promoteLocked() {
	old, n := s.primary, s.next
	n.secondary = false
	old.retired = true
	s.primary, s.next = n, nil
	s.retiredConns = append(s.retiredConns, old)
	select {
	case s.switched <- struct{}{}:
	default:
	}
	if s.cfg.Metrics.Rollovers != nil {
		s.cfg.Metrics.Rollovers.Inc()
	}
}

// serve watches the slot's connections: silence, the age cap and rollover
// requests (both start a make-before-break rollover), keepalives, and the
// switch. It returns when the slot has no usable connection left, or ctx
// ends.
func (s *Slot) serve(ctx context.Context, c *Conn) (lived time.Duration, reason error) {
	cfg := &s.cfg
	tick := s.clk.NewTicker(min(cfg.SilenceTimeout/4, max(cfg.RolloverOverlap/4, 10*time.Millisecond)))
	defer tick.Stop()
	age := s.clk.NewTimer(cfg.MaxConnAge)
	defer age.Stop()
	var ping <-chan time.Time
	if len(cfg.Dialect.Ping) > 0 {
		t := s.clk.NewTicker(cfg.Dialect.PingEvery)
		defer t.Stop()
		ping = t.C()
	}
	var nextSince time.Time
	var stale bool
	closeConn := func(x *Conn) {
		x.close()
		<-x.done
		s.open.Add(-1)
	}
	current := func() (primary, next *Conn) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.primary, s.next
	}
	defer func() {
		s.mu.Lock()
		n := s.next
		s.next, s.primary = nil, nil
		s.mu.Unlock()
		if n != nil {
			closeConn(n)
		}
		s.closeSwitched(closeConn)
	}()
	startRollover := func() {
		if _, n := current(); n != nil {
			return
		}
		n, err := s.dial(ctx)
		if err != nil {
			s.log.Warn("rollover: connect", "slot", cfg.Name, "err", err)
			age.Reset(cfg.BackoffMax) // keep the old connection and try again later
			return
		}
		n.secondary = true
		s.mu.Lock()
		s.next = n
		s.mu.Unlock()
		s.open.Add(1)
		go n.read()
		nextSince = s.clk.Now()
		s.log.Info("rollover: second connection open", "slot", cfg.Name, "old", c.id, "new", n.id)
	}
	switchNow := func() {
		s.mu.Lock()
		if s.next == nil {
			s.mu.Unlock()
			return
		}
		pending := len(s.next.held)
		s.promoteLocked()
		replayed := s.replayLocked(s.primary)
		s.mu.Unlock()
		s.log.Info("rollover: switched", "slot", cfg.Name, "new", s.primary.id, "held_at_switch", pending, "held_replayed", replayed)
	}
	for {
		primary, next := current()
		if primary != c { // a switch happened (here or on a full held queue)
			c = primary
			age.Reset(cfg.MaxConnAge)
			stale = false
		}
		var nextDone <-chan struct{}
		if next != nil {
			nextDone = next.done
		}
		select {
		case <-ctx.Done():
			closeConn(c)
			return s.clk.Now().Sub(c.opened), ctx.Err()
		case <-s.switched:
			s.closeSwitched(closeConn)
		case <-c.done:
			if next != nil {
				// The old connection died mid-rollover (the venue's cap, or a
				// fault): the new one is already subscribed, so carry on with it.
				s.log.Info("rollover: old connection closed first; switching", "slot", cfg.Name, "old", c.id, "err", c.err)
				switchNow()
				continue
			}
			s.open.Add(-1)
			err := c.err
			if stale {
				err = ErrSilent
			}
			return s.clk.Now().Sub(c.opened), err
		case <-nextDone:
			s.log.Warn("rollover: new connection lost before the switch", "slot", cfg.Name, "err", next.err)
			s.mu.Lock()
			promoted := s.next != next // switched to (held queue full) just before it died
			if !promoted {
				s.next = nil
			}
			s.mu.Unlock()
			if promoted {
				continue // it is the primary now; its done is handled as such
			}
			s.open.Add(-1)
			age.Reset(cfg.BackoffMin)
		case <-s.kick:
			startRollover()
		case <-age.C():
			startRollover()
		case <-ping:
			for _, x := range []*Conn{c, next} {
				if x != nil {
					if err := x.write(cfg.Dialect.Ping); err != nil {
						x.close() // the reader exits and its done fires
					}
				}
			}
		case <-tick.C():
			now := s.clk.Now()
			if now.UnixNano()-c.lastFrame.Load() > int64(cfg.SilenceTimeout) && !stale {
				stale = true
				s.state.Store(int32(proto.StateStale))
				c.close() // the reader exits and c.done fires
				continue
			}
			if next == nil {
				continue
			}
			waited := now.Sub(nextSince)
			if waited < cfg.RolloverOverlap {
				continue
			}
			s.mu.Lock()
			pending := len(next.held)
			s.mu.Unlock()
			if pending == 0 || waited > 4*cfg.RolloverOverlap {
				switchNow()
			}
		}
	}
}

// closeSwitched closes connections retired by a switch that serve has not
// closed yet.
func (s *Slot) closeSwitched(closeConn func(*Conn)) {
	s.mu.Lock()
	olds := s.retiredConns
	s.retiredConns = nil
	s.mu.Unlock()
	for _, old := range olds {
		closeConn(old)
	}
}

// Backoff is capped exponential backoff with equal jitter: the n-th wait is
// uniform in [d/2, d] for d = min(Min*2^n, Max). Not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	n        int
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	d := b.Min << min(b.n, 20)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	b.n++
	return d/2 + rand.N(d/2+1)
}

// Reset starts the sequence over (after a connection that lived long).
func (b *Backoff) Reset() { b.n = 0 }
