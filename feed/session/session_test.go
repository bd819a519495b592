package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The tests run a real WebSocket server on loopback speaking a tiny test
// dialect: frames are decimal sequence numbers, "shutdown" asks for a
// rollover, a client "ping" is answered with "pong". The handler applies
// numbers in order, like a venue's trade ids: a repeat is a duplicate, a jump
// is a gap (which a rollover's secondary holds instead).

const wait = 10 * time.Second // upper bound for anything to happen on loopback

type peer struct {
	mu     sync.Mutex // one writer at a time (the test and the auto-pong)
	ws     *websocket.Conn
	in     chan string
	closed chan struct{}
}

func (p *peer) send(t *testing.T, msgs ...string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		if err := p.ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatalf("server send %q: %v", m, err)
		}
	}
}

func (p *peer) recv(t *testing.T) string {
	t.Helper()
	select {
	case m := <-p.in:
		return m
	case <-time.After(wait):
		t.Fatal("the server received nothing")
		return ""
	}
}

func (p *peer) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-p.closed:
	case <-time.After(wait):
		t.Fatal("the client did not close the connection")
	}
}

type server struct {
	url   string
	peers chan *peer
}

// newServer starts a loopback WebSocket server. refuse makes every upgrade
// fail (HTTP 503); autoPong answers "ping" with "pong".
func newServer(t *testing.T, autoPong bool, refuse func() bool) *server {
	s := &server{peers: make(chan *peer, 16)}
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse != nil && refuse() {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		p := &peer{ws: ws, in: make(chan string, 100), closed: make(chan struct{})}
		s.peers <- p
		defer close(p.closed)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if autoPong && string(msg) == "ping" {
				p.mu.Lock()
				_ = ws.WriteMessage(websocket.TextMessage, []byte("pong"))
				p.mu.Unlock()
			}
			p.in <- string(msg)
		}
	}))
	t.Cleanup(srv.Close)
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return s
}

func (s *server) accept(t *testing.T) *peer {
	t.Helper()
	select {
	case p := <-s.peers:
		return p
	case <-time.After(wait):
		t.Fatal("the client did not connect")
		return nil
	}
}

type seqHandler struct {
	mu       sync.Mutex
	last     int
	applied  []int
	dups     int
	gaps     int
	pongs    int
	lost     chan error
	progress chan struct{}
}

func newSeqHandler() *seqHandler {
	return &seqHandler{lost: make(chan error, 16), progress: make(chan struct{}, 1)}
}

func (h *seqHandler) Frame(c *Conn, frame []byte, recv int64) bool {
	h.mu.Lock()
	defer func() {
		h.mu.Unlock()
		select {
		case h.progress <- struct{}{}:
		default:
		}
	}()
	switch string(frame) {
	case "shutdown":
		c.Rollover()
		return false
	case "pong":
		h.pongs++
		return false
	}
	n, err := strconv.Atoi(string(frame))
	if err != nil {
		return false
	}
	switch {
	case n <= h.last:
		h.dups++
		return false
	case n > h.last+1:
		if c.Secondary() {
			return true
		}
		h.gaps++
	}
	h.last = n
	h.applied = append(h.applied, n)
	return false
}

func (h *seqHandler) Lost(reason error) { h.lost <- reason }

// waitFor waits until cond holds over the handler's state.
func (h *seqHandler) waitFor(t *testing.T, what string, cond func(h *seqHandler) bool) {
	t.Helper()
	deadline := time.After(wait)
	poll := time.NewTicker(time.Millisecond) // for conditions on the slot, which signal nothing
	defer poll.Stop()
	for {
		h.mu.Lock()
		ok := cond(h)
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-h.progress:
		case <-poll.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (h *seqHandler) snapshot() (applied []int, dups, gaps int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.applied), h.dups, h.gaps
}

func seq(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

type rig struct {
	t    *testing.T
	clk  *clock.Fake
	srv  *server
	h    *seqHandler
	slot *Slot
	reg  *prometheus.Registry
	m    Metrics
	done chan error
}

func newRig(t *testing.T, cfg Config, autoPong bool, refuse func() bool) *rig {
	r := &rig{t: t, clk: clock.NewFake(time.Unix(1_700_000_000, 0)), h: newSeqHandler(), reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	r.srv = newServer(t, autoPong, refuse)
	r.m = Metrics{
		Reconnects:    prometheus.NewCounter(prometheus.CounterOpts{Name: "reconnects"}),
		Rollovers:     prometheus.NewCounter(prometheus.CounterOpts{Name: "rollovers"}),
		HeldOverflows: prometheus.NewCounter(prometheus.CounterOpts{Name: "held_overflows"}),
	}
	cfg.Dialect.URL = r.srv.url
	cfg.Handler, cfg.Clock, cfg.Metrics, cfg.Name = r.h, r.clk, r.m, "test"
	var err error
	if r.slot, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { r.done <- r.slot.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(wait):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// armed waits until the slot watches n connections' worth of timers: the
// silence ticker and the age timer, plus the keepalive ticker if any.
func (r *rig) armed(n int) {
	r.t.Helper()
	if !r.clk.WaitFor(r.t.Context(), func(a int) bool { return a >= n }) {
		r.t.Fatalf("the slot never armed %d timers", n)
	}
}

func (r *rig) lost() error {
	r.t.Helper()
	select {
	case err := <-r.h.lost:
		return err
	case <-time.After(wait):
		r.t.Fatal("the slot never reported its connection lost")
		return nil
	}
}

func TestSubscribesInOrderPacedOnTheClock(t *testing.T) {
	cfg := Config{Dialect: Dialect{Subscribe: [][]byte{[]byte("sub a"), []byte("sub b"), []byte("sub c")}, SubscribeEvery: 250 * time.Millisecond}}
	r := newRig(t, cfg, false, nil)
	p := r.srv.accept(t)
	if got := p.recv(t); got != "sub a" {
		t.Fatalf("first message %q", got)
	}
	for _, want := range []string{"sub b", "sub c"} {
		r.armed(1)
		if d, _ := r.clk.Next(); d != 250*time.Millisecond {
			t.Fatalf("the pacing wait is %v, want 250ms", d)
		}
		r.clk.Advance(250 * time.Millisecond)
		if got := p.recv(t); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	p.send(t, seq(1, 3)...)
	r.h.waitFor(t, "frames after subscribing", func(h *seqHandler) bool { return h.last == 3 })
}

// TestSilenceAndKeepalive: a connection the server never writes to is
// declared silent and replaced; with the dialect's client keepalive, the
// server's answers keep the same connection alive past many timeouts.
func TestSilenceAndKeepalive(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keepalive bool
	}{{"keepalive=off", false}, {"keepalive=on", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{SilenceTimeout: 30 * time.Second, BackoffMin: time.Second, BackoffMax: time.Second}
			timers := 2
			if tc.keepalive {
				cfg.Dialect.Ping, cfg.Dialect.PingEvery = []byte("ping"), 20*time.Second
				timers = 3
			}
			r := newRig(t, cfg, tc.keepalive, nil)
			p := r.srv.accept(t)
			for i := range 5 { // 100 s, three silence timeouts
				r.armed(timers)
				r.clk.Advance(20 * time.Second)
				if !tc.keepalive {
					break
				}
				if got := p.recv(t); got != "ping" {
					t.Fatalf("keepalive %d: server got %q", i, got)
				}
				r.h.waitFor(t, "the pong", func(h *seqHandler) bool { return h.pongs == i+1 })
			}
			if tc.keepalive {
				select {
				case err := <-r.h.lost:
					t.Fatalf("a pinged connection was declared lost: %v", err)
				default:
				}
				if r.slot.Open() != 1 {
					t.Fatalf("%d connections open", r.slot.Open())
				}
				return
			}
			r.armed(timers)
			r.clk.Advance(20 * time.Second) // 40 s of silence
			if err := r.lost(); !errors.Is(err, ErrSilent) {
				t.Fatalf("lost because %v, want ErrSilent", err)
			}
			p.waitClosed(t)
			r.armed(1) // the backoff
			r.clk.Advance(time.Second)
			r.srv.accept(t)
			r.armed(timers)
			if got := testutil.ToFloat64(r.m.Reconnects); got != 1 {
				t.Fatalf("reconnects = %v", got)
			}
		})
	}
}

// TestReconnectBackoffGrowsAndIsCapped: refused dials wait a jittered,
// doubling, capped backoff on the clock, and a dial only happens once the
// wait has elapsed.
func TestReconnectBackoffGrowsAndIsCapped(t *testing.T) {
	var mu sync.Mutex
	refusing := true
	refuse := func() bool { mu.Lock(); defer mu.Unlock(); return refusing }
	cfg := Config{BackoffMin: 100 * time.Millisecond, BackoffMax: 800 * time.Millisecond}
	r := newRig(t, cfg, false, refuse)
	var waits []time.Duration
	for range 6 {
		r.armed(1)
		d, _ := r.clk.Next()
		waits = append(waits, d)
		r.clk.Advance(d)
	}
	for i, d := range waits {
		hi := min(100*time.Millisecond<<i, 800*time.Millisecond)
		if d < hi/2 || d > hi {
			t.Fatalf("wait %d = %v, want within [%v, %v] (all: %v)", i, d, hi/2, hi, waits)
		}
	}
	mu.Lock()
	refusing = false
	mu.Unlock()
	r.armed(1)
	d, _ := r.clk.Next()
	r.clk.Advance(d)
	r.srv.accept(t)
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 10 * time.Second}
	for i, hi := range []time.Duration{1, 2, 4, 8, 10, 10, 10} {
		hi *= time.Second
		if d := b.Next(); d < hi/2 || d > hi {
			t.Fatalf("step %d: %v not in [%v, %v]", i, d, hi/2, hi)
		}
	}
	b.Reset()
	if d := b.Next(); d > time.Second {
		t.Fatalf("after Reset: %v", d)
	}
}

// TestRolloverLosesAndDuplicatesNothing: at the age cap a second connection
// opens; it runs ahead (its frames past the primary's are held), both carry
// the same frames for a while, and after the switch the old connection's
// frames are dropped and it is closed. Every number is applied exactly once.
func TestRolloverLosesAndDuplicatesNothing(t *testing.T) {
	cfg := Config{MaxConnAge: time.Hour, RolloverOverlap: 4 * time.Second, SilenceTimeout: 2 * time.Hour}
	r := newRig(t, cfg, false, nil)
	old := r.srv.accept(t)
	old.send(t, seq(1, 5)...)
	r.h.waitFor(t, "1..5", func(h *seqHandler) bool { return h.last == 5 })
	r.armed(2)
	r.clk.Advance(time.Hour)
	next := r.srv.accept(t)
	r.h.waitFor(t, "two connections", func(*seqHandler) bool { return r.slot.Open() == 2 })
	next.send(t, seq(4, 9)...) // 4, 5 duplicates; 6..9 follow the primary's 5
	r.h.waitFor(t, "the new connection's frames", func(h *seqHandler) bool { return h.last == 9 })
	next.send(t, "12", "13")   // ahead of everything: held
	old.send(t, seq(6, 11)...) // 6..9 duplicates, 10, 11 apply, then 12, 13 are replayed
	r.h.waitFor(t, "the held frames", func(h *seqHandler) bool { return h.last == 13 })
	r.clk.Advance(4 * time.Second) // the overlap: switch
	old.waitClosed(t)
	next.send(t, seq(14, 15)...)
	r.h.waitFor(t, "after the switch", func(h *seqHandler) bool { return h.last == 15 })
	applied, _, gaps := r.h.snapshot()
	if !slices.Equal(applied, intSeq(1, 15)) || gaps != 0 {
		t.Fatalf("applied %v with %d gaps", applied, gaps)
	}
	if got := testutil.ToFloat64(r.m.Rollovers); got != 1 {
		t.Fatalf("rollovers = %v", got)
	}
	r.h.waitFor(t, "one connection", func(*seqHandler) bool { return r.slot.Open() == 1 })
}

func intSeq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// TestRolloverOnRequestAndOldConnectionDyingFirst: a "server shutting down"
// frame starts a rollover at once; when the old connection closes before the
// overlap ends, the slot switches to the new one without a reconnect.
func TestRolloverOnRequestAndOldConnectionDyingFirst(t *testing.T) {
	r := newRig(t, Config{}, false, nil)
	old := r.srv.accept(t)
	old.send(t, "1", "shutdown")
	next := r.srv.accept(t)
	next.send(t, "3") // held: 2 is missing
	r.h.waitFor(t, "two connections", func(*seqHandler) bool { return r.slot.Open() == 2 })
	old.send(t, "2")
	r.h.waitFor(t, "2 and the held 3", func(h *seqHandler) bool { return h.last == 3 })
	_ = old.ws.Close()
	r.h.waitFor(t, "the switch", func(*seqHandler) bool { return r.slot.Open() == 1 })
	next.send(t, "4")
	r.h.waitFor(t, "4 from the new primary", func(h *seqHandler) bool { return h.last == 4 })
	select {
	case err := <-r.h.lost:
		t.Fatalf("a rollover reported the slot lost: %v", err)
	default:
	}
	if got := testutil.ToFloat64(r.m.Reconnects); got != 0 {
		t.Fatalf("reconnects = %v", got)
	}
}

// TestHeldQueueIsBounded: a secondary that runs far ahead of a stalled
// primary holds at most MaxHeld frames; the next one switches the rollover
// early (counted), the held frames are applied, and the missing ones are the
// handler's gap to repair, not memory growing without bound.
func TestHeldQueueIsBounded(t *testing.T) {
	r := newRig(t, Config{MaxHeld: 3}, false, nil)
	old := r.srv.accept(t)
	old.send(t, "1", "shutdown")
	next := r.srv.accept(t)
	next.send(t, "5", "6", "7") // held: 2..4 missing
	r.h.waitFor(t, "two connections", func(*seqHandler) bool { return r.slot.Open() == 2 })
	next.send(t, "8") // the queue is full: switch
	old.waitClosed(t)
	r.h.waitFor(t, "the held frames", func(h *seqHandler) bool { return h.last == 8 })
	applied, _, gaps := r.h.snapshot()
	if !slices.Equal(applied, []int{1, 5, 6, 7, 8}) || gaps != 1 {
		t.Fatalf("applied %v with %d gaps, want [1 5 6 7 8] and one gap", applied, gaps)
	}
	if got := testutil.ToFloat64(r.m.HeldOverflows); got != 1 {
		t.Fatalf("held overflows = %v", got)
	}
}

type nopHandler struct{}

func (nopHandler) Frame(*Conn, []byte, int64) bool { return false }
func (nopHandler) Lost(error)                      {}

// TestDeliverAllocs locks the session's share of the hot path (the slot's
// lock and the role checks around the handler) at zero allocations.
func TestDeliverAllocs(t *testing.T) {
	s, err := New(Config{Dialect: Dialect{URL: "ws://127.0.0.1:1"}, Handler: nopHandler{}})
	if err != nil {
		t.Fatal(err)
	}
	c := &Conn{slot: s}
	s.primary = c
	frame := []byte(`{"n":1}`)
	if n := testing.AllocsPerRun(1000, func() { s.deliver(c, frame, 1) }); n != 0 {
		t.Fatalf("%v allocations per frame, want 0", n)
	}
}

func BenchmarkDeliver(b *testing.B) {
	s, err := New(Config{Dialect: Dialect{URL: "ws://127.0.0.1:1"}, Handler: nopHandler{}})
	if err != nil {
		b.Fatal(err)
	}
	c := &Conn{slot: s}
	s.primary = c
	frame := []byte(`{"n":1}`)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		s.deliver(c, frame, 1)
	}
}
