package binance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/paddockhq/paddock/proto"
)

// subscribeBatch is the most stream names sent in one SUBSCRIBE; batches go
// out at most 4 a second, under Binance's 5 incoming messages per second.
const subscribeBatch = 200

// wsConn is one WebSocket connection and its reader. Fields marked "a.mu"
// are guarded by Adapter.mu; the rest are set before the reader starts or
// are atomic.
type wsConn struct {
	id     uint64
	slot   *slot
	ws     *websocket.Conn
	parser Parser // owned by the reader goroutine
	opened time.Time

	secondary bool        // a.mu: the newer connection of a rollover, not yet switched to
	retired   bool        // a.mu: replaced by a rollover; its frames are ignored
	held      []heldFrame // a.mu: frames a secondary holds until the primary catches up

	lastFrame    atomic.Int64 // ns, data or ping
	shutdown     chan struct{}
	shutdownOnce sync.Once
	done         chan struct{} // closed when the reader exits
	err          error         // why the reader exited; read after done
}

var connIDs atomic.Uint64

// dial opens a connection and subscribes the slot's streams. The reader is
// started by the caller once the connection's role is set.
func (s *slot) dial(ctx context.Context) (*wsConn, error) {
	a := s.a
	if err := a.limiter.Wait(ctx); err != nil {
		return nil, err
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 64 << 10, WriteBufferSize: 16 << 10}
	ws, _, err := d.DialContext(ctx, a.cfg.WSURL+"/stream", nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", a.cfg.WSURL, err)
	}
	ws.SetReadLimit(32 << 20)
	c := &wsConn{id: connIDs.Add(1), slot: s, ws: ws, opened: a.now(), shutdown: make(chan struct{}), done: make(chan struct{})}
	c.lastFrame.Store(a.now().UnixNano())
	ws.SetPingHandler(func(data string) error {
		c.lastFrame.Store(a.now().UnixNano())
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for i := 0; i < len(s.streams); i += subscribeBatch {
		if i > 0 {
			select {
			case <-time.After(250 * time.Millisecond):
			case <-ctx.Done():
				ws.Close()
				return nil, ctx.Err()
			}
		}
		req, _ := json.Marshal(map[string]any{"method": "SUBSCRIBE", "params": s.streams[i:min(i+subscribeBatch, len(s.streams))], "id": i/subscribeBatch + 1})
		_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, req); err != nil {
			ws.Close()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
	}
	return c, nil
}

// read is the connection's reader goroutine: frames go into one reused
// buffer and straight into the adapter.
func (c *wsConn) read() {
	defer close(c.done)
	a := c.slot.a
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
		now := a.now().UnixNano()
		c.lastFrame.Store(now)
		a.lastData.Store(now)
		a.handleFrame(c, buf, now)
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

func (c *wsConn) close() { _ = c.ws.Close() }

// slot is one set of streams carried by one connection (two during a
// rollover).
type slot struct {
	a       *Adapter
	id      int
	streams []string
	insts   []*instState

	secondary *wsConn // a.mu: the rollover candidate, if any

	state atomic.Int32 // proto.State
	open  atomic.Int32 // open connections
}

// run keeps the slot connected until ctx is cancelled.
func (s *slot) run(ctx context.Context) {
	a := s.a
	bo := newBackoff(a.cfg.BackoffMin, a.cfg.BackoffMax)
	s.state.Store(int32(proto.StateConnecting))
	first := true
	for ctx.Err() == nil {
		c, err := s.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			a.log.Warn("connect", "slot", s.id, "err", err)
			s.wait(ctx, bo.next())
			continue
		}
		if !first {
			a.out.Metrics.Reconnects.Inc()
		}
		first = false
		s.open.Add(1)
		go c.read()
		s.state.Store(int32(proto.StateConnected))
		a.log.Info("connected", "slot", s.id, "conn", c.id, "streams", len(s.streams))
		lived, reason := s.serve(ctx, c)
		if ctx.Err() != nil {
			break
		}
		s.state.Store(int32(proto.StateDisconnected))
		a.log.Warn("connection lost", "slot", s.id, "reason", reason, "lived", lived.Round(time.Millisecond))
		now := a.now().UnixNano()
		a.mu.Lock()
		for _, st := range s.insts {
			r := proto.ResetDisconnect
			if reason == errStale {
				r = proto.ResetStale
			}
			a.outage(st, r, now)
		}
		a.mu.Unlock()
		if lived > time.Minute {
			bo.reset()
		}
		s.wait(ctx, bo.next())
	}
	s.state.Store(int32(proto.StateDisconnected))
}

func (s *slot) wait(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

var errStale = errors.New("no frame within the silence timeout")

// serve watches the primary connection c: silence, the age cap and
// serverShutdown (both start a make-before-break rollover), and the
// rollover's switch. It returns when the slot has no usable connection left,
// or ctx ends.
func (s *slot) serve(ctx context.Context, c *wsConn) (lived time.Duration, reason error) {
	a := s.a
	tick := time.NewTicker(min(a.cfg.SilenceTimeout/4, max(a.cfg.RolloverOverlap/4, 10*time.Millisecond)))
	defer tick.Stop()
	age := time.NewTimer(a.cfg.MaxConnAge)
	defer age.Stop()
	var next *wsConn
	var nextSince time.Time
	var stale bool
	closeConn := func(x *wsConn) {
		x.close()
		<-x.done
		s.open.Add(-1)
	}
	defer func() {
		if next != nil {
			a.mu.Lock()
			s.secondary = nil
			a.mu.Unlock()
			closeConn(next)
		}
	}()
	startRollover := func() {
		if next != nil {
			return
		}
		n, err := s.dial(ctx)
		if err != nil {
			a.log.Warn("rollover: connect", "slot", s.id, "err", err)
			age.Reset(a.cfg.BackoffMax) // keep the old connection and try again later
			return
		}
		a.mu.Lock()
		n.secondary = true
		s.secondary = n
		a.mu.Unlock()
		s.open.Add(1)
		go n.read()
		next, nextSince = n, a.now()
		a.log.Info("rollover: second connection open", "slot", s.id, "old", c.id, "new", n.id)
	}
	// promote makes next the primary: c is retired (its frames are ignored
	// from here on) and the frames next held are replayed as primary, where a
	// gap resyncs the book and a trade-id jump is counted.
	promote := func() (old *wsConn, replayed int) {
		a.mu.Lock()
		next.secondary = false
		s.secondary = nil
		c.retired = true
		replayed = a.replayHeld(next)
		a.mu.Unlock()
		old, c, next = c, next, nil
		a.out.Metrics.Rollovers.Inc()
		age.Reset(a.cfg.MaxConnAge)
		return old, replayed
	}
	for {
		var nextDone <-chan struct{}
		if next != nil {
			nextDone = next.done
		}
		select {
		case <-ctx.Done():
			closeConn(c)
			return a.now().Sub(c.opened), ctx.Err()
		case <-c.done:
			if next != nil {
				// The old connection died mid-rollover (the venue's cap, or a
				// fault): the new one is already subscribed, so carry on with it.
				s.open.Add(-1)
				old, n := promote()
				a.log.Info("rollover: old connection closed first; switched", "slot", s.id, "old", old.id, "new", c.id, "err", old.err, "held_replayed", n)
				continue
			}
			s.open.Add(-1)
			err := c.err
			if stale {
				err = errStale
			}
			return a.now().Sub(c.opened), err
		case <-nextDone:
			a.log.Warn("rollover: new connection lost before the switch", "slot", s.id, "err", next.err)
			a.mu.Lock()
			s.secondary = nil
			a.mu.Unlock()
			s.open.Add(-1)
			next = nil
			age.Reset(a.cfg.BackoffMin)
		case <-c.shutdown:
			startRollover()
		case <-age.C:
			startRollover()
		case <-tick.C:
			now := a.now()
			if now.UnixNano()-c.lastFrame.Load() > int64(a.cfg.SilenceTimeout) && !stale {
				stale = true
				s.state.Store(int32(proto.StateStale))
				c.close() // the reader exits and c.done fires
				continue
			}
			if next == nil {
				continue
			}
			waited := now.Sub(nextSince)
			if waited < a.cfg.RolloverOverlap {
				continue
			}
			a.mu.Lock()
			pending := len(next.held)
			a.mu.Unlock()
			if pending == 0 || waited > 4*a.cfg.RolloverOverlap {
				old, n := promote()
				closeConn(old)
				a.log.Info("rollover: switched", "slot", s.id, "old", old.id, "new", c.id, "held_at_switch", pending, "held_replayed", n)
			}
		}
	}
}
