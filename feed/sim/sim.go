// Package sim is a local Binance venue simulator: spot and USD-M futures
// public WebSocket market streams (combined streams, SUBSCRIBE, ping frames)
// and the REST depth snapshot, over a random-walk market per symbol. It
// knows the true book at every update id, and injects faults on request, so
// the feed can be tested and run without the internet.
package sim

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/paddockhq/paddock/proto"
)

// Symbol configures one simulated instrument.
type Symbol struct {
	Name    string  // exchange symbol, upper case: BTCUSDT
	Futures bool    // served on the USD-M futures endpoints
	Price   float64 // starting mid price
}

// Config configures the simulator.
type Config struct {
	Symbols []Symbol
	Seed    uint64
	// TradeEvery makes one step in TradeEvery carry a trade (default 2).
	TradeEvery int
	// PingInterval is how often connections are pinged (Binance: 20s).
	PingInterval time.Duration
	// MaxConnAge closes connections at this age, a compressed version of
	// Binance's 24-hour cap (0 = never).
	MaxConnAge time.Duration
	// QueueLen bounds each connection's outgoing frames; a connection that
	// falls this far behind is disconnected, as Binance does.
	QueueLen int
	Logger   *slog.Logger
}

// Sim is a running simulator. Its methods are safe for concurrent use.
type Sim struct {
	cfg Config
	log *slog.Logger
	srv *http.Server
	ln  net.Listener

	mu      sync.Mutex
	markets map[string]*market // key: "spot:BTCUSDT" / "perp:BTCUSDT"
	conns   map[*conn]struct{}
	steps   uint64

	opened atomic.Int64
	pongs  atomic.Int64

	rejectTopics map[string]bool // Bybit topics refused (guarded by mu)
	stallPongs   atomic.Bool     // Bybit pings go unanswered
}

type conn struct {
	s       *Sim
	ws      *websocket.Conn
	futures bool
	bybit   bool // a Bybit v5 connection (topics in streams)
	opened  time.Time
	out     chan outFrame
	streams map[string]bool // guarded by Sim.mu
	stalled atomic.Bool
	done    chan struct{}
	once    sync.Once
}

// New creates a simulator listening on addr (e.g. 127.0.0.1:0).
func New(addr string, cfg Config) (*Sim, error) {
	if cfg.TradeEvery <= 0 {
		cfg.TradeEvery = 2
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 20 * time.Second
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1 << 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sim{cfg: cfg, log: cfg.Logger.With("component", "sim"), markets: map[string]*market{}, conns: map[*conn]struct{}{}, rejectTopics: map[string]bool{}}
	for i, sym := range cfg.Symbols {
		name := strings.ToUpper(sym.Name)
		if sym.Price <= 0 {
			sym.Price = 100
		}
		s.markets[key(sym.Futures, name)] = newMarket(name, sym.Futures, sym.Price, cfg.Seed+uint64(i))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sim: listen %s: %w", addr, err)
	}
	s.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("/spot/stream", func(w http.ResponseWriter, r *http.Request) { s.serveWS(w, r, false) })
	mux.HandleFunc("/perp/stream", func(w http.ResponseWriter, r *http.Request) { s.serveWS(w, r, true) })
	mux.HandleFunc("/v5/public/spot", func(w http.ResponseWriter, r *http.Request) { s.serveBybit(w, r, false) })
	mux.HandleFunc("/v5/public/linear", func(w http.ResponseWriter, r *http.Request) { s.serveBybit(w, r, true) })
	mux.HandleFunc("GET /spot/api/v3/depth", func(w http.ResponseWriter, r *http.Request) { s.serveDepth(w, r, false) })
	mux.HandleFunc("GET /perp/fapi/v1/depth", func(w http.ResponseWriter, r *http.Request) { s.serveDepth(w, r, true) })
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func key(futures bool, symbol string) string {
	if futures {
		return "perp:" + symbol
	}
	return "spot:" + symbol
}

// SpotWS, SpotREST, PerpWS and PerpREST are the base URLs to configure the
// feed's binance and binance-perp venues with.
func (s *Sim) SpotWS() string   { return "ws://" + s.ln.Addr().String() + "/spot" }
func (s *Sim) SpotREST() string { return "http://" + s.ln.Addr().String() + "/spot" }
func (s *Sim) PerpWS() string   { return "ws://" + s.ln.Addr().String() + "/perp" }
func (s *Sim) PerpREST() string { return "http://" + s.ln.Addr().String() + "/perp" }

// Addr is the listening address.
func (s *Sim) Addr() string { return s.ln.Addr().String() }

// Close stops the server and every connection.
func (s *Sim) Close() error {
	s.DropConnections()
	return s.srv.Close()
}

// Step advances every market by n events and sends the frames.
func (s *Sim) Step(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.steps++
		ms := time.Now().UnixMilli()
		for _, m := range s.markets {
			withTrade := s.steps%uint64(s.cfg.TradeEvery) == 0
			prev := m.updateID
			cs, tr, first, last := m.step(withTrade)
			if tr != nil {
				s.send(m, "@trade", func() []byte { m.binanceSent++; return m.tradeFrame(tr, false, ms) })
				s.send(m, "@aggTrade", func() []byte { m.binanceAggSent++; return m.tradeFrame(tr, true, ms) })
			}
			if len(cs) > 0 {
				if m.skipNext {
					m.skipNext = false // the changes happened; nobody hears of them
				} else {
					s.send(m, "@depth@100ms", func() []byte { return m.depthFrame(cs, first, last, prev, ms) })
				}
			}
			if f := m.bboFrame(ms); f != nil {
				s.send(m, "@bookTicker", func() []byte { return f })
			}
			s.stepBybit(m, cs, tr, ms)
		}
	}
}

// send builds a frame only if some connection subscribed to the stream.
// Caller holds s.mu.
func (s *Sim) send(m *market, suffix string, build func() []byte) {
	stream := m.lower + suffix
	var frame []byte
	for c := range s.conns {
		if c.bybit || c.futures != m.futures || !c.streams[stream] {
			continue
		}
		if frame == nil {
			frame = build()
		}
		c.enqueue(frame)
	}
}

// outFrame is a queued WebSocket message. If stamp is not nil, the writer
// stores the time the frame was written to the socket there.
type outFrame struct {
	b     []byte
	op    byte // websocket opcode: 1 text, 9 ping, 10 pong, 8 close
	stamp *int64
}

func (c *conn) enqueue(frame []byte) {
	select {
	case c.out <- outFrame{b: frame, op: 1}:
	default:
		c.s.log.Warn("connection too slow; disconnecting", "queued", len(c.out))
		c.close()
	}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.ws.Close()
	})
}

// Run steps the markets at rate events per second per market until ctx ends.
func (s *Sim) Run(ctx context.Context, rate int) {
	if rate <= 0 {
		return
	}
	const tick = 5 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	var done int
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int(now.Sub(start).Seconds()*float64(rate)) - done
			if due > 0 {
				s.Step(due)
				done += due
			}
		}
	}
}

// ---- fault injection and truth, for tests ----

// DropConnections closes every connection abruptly.
func (s *Sim) DropConnections() {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}

// SkipNextDepth makes the next depth event of symbol happen without being
// sent: the feed sees a gap in update ids.
func (s *Sim) SkipNextDepth(futures bool, symbol string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.markets[key(futures, symbol)]; m != nil {
		m.skipNext = true
	}
}

// SendRaw sends frame as it is to every connection of a market type.
func (s *Sim) SendRaw(futures bool, frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.futures == futures {
			c.enqueue(frame)
		}
	}
}

// Stall makes every current connection stop sending anything, pings
// included, without closing: a silent connection. New connections work.
func (s *Sim) Stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.stalled.Store(true)
	}
}

// AnnounceShutdown sends serverShutdown to every connection and closes them
// after grace.
func (s *Sim) AnnounceShutdown(grace time.Duration) {
	ms := strconv.FormatInt(time.Now().UnixMilli(), 10)
	s.mu.Lock()
	var cs []*conn
	for c := range s.conns {
		c.enqueue([]byte(`{"e":"serverShutdown","E":` + ms + `}`))
		cs = append(cs, c)
	}
	s.mu.Unlock()
	time.AfterFunc(grace, func() {
		for _, c := range cs {
			c.close()
		}
	})
}

// Book returns the true book of a symbol and the update id it is at.
func (s *Sim) Book(futures bool, symbol string) (bids, asks []proto.Level, updateID uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.markets[key(futures, symbol)]
	if m == nil {
		return nil, nil, 0
	}
	return m.book()
}

// Trades returns how many trades a symbol has printed and its last trade id.
func (s *Sim) Trades(futures bool, symbol string) (count, lastID uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.markets[key(futures, symbol)]
	if m == nil {
		return 0, 0
	}
	return m.trades, m.tradeID
}

// Pongs returns how many pong frames clients have sent in reply to pings.
func (s *Sim) Pongs() int64 { return s.pongs.Load() }

// Connections returns the number of open connections and the total opened.
func (s *Sim) Connections() (open int, opened int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns), s.opened.Load()
}

// ---- protocol ----

var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 64 << 10, CheckOrigin: func(*http.Request) bool { return true }}

func (s *Sim) serveWS(w http.ResponseWriter, r *http.Request, futures bool) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &conn{s: s, ws: ws, futures: futures, opened: time.Now(), out: make(chan outFrame, s.cfg.QueueLen),
		streams: map[string]bool{}, done: make(chan struct{})}
	// Every write goes through c.write, which frames messages itself; the
	// library's handlers would otherwise write control frames concurrently.
	ws.SetPingHandler(func(data string) error {
		select {
		case c.out <- outFrame{b: []byte(data), op: 10}:
		default:
		}
		return nil
	})
	ws.SetCloseHandler(func(int, string) error { return nil })
	ws.SetPongHandler(func(string) error { s.pongs.Add(1); return nil })
	if q := r.URL.Query().Get("streams"); q != "" {
		for _, st := range strings.Split(q, "/") {
			c.streams[st] = true
		}
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.opened.Add(1)
	defer func() {
		c.close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	go c.write()
	c.readLoop()
}

// readLoop answers SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS; pongs are
// handled by the library.
func (c *conn) readLoop() {
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var req struct {
			Method string   `json:"method"`
			Params []string `json:"params"`
			ID     any      `json:"id"`
		}
		if json.Unmarshal(msg, &req) != nil {
			c.enqueue([]byte(`{"error":{"code":3,"msg":"Invalid JSON"},"id":null}`))
			continue
		}
		id, _ := json.Marshal(req.ID)
		c.s.mu.Lock()
		switch req.Method {
		case "SUBSCRIBE":
			for _, p := range req.Params {
				c.streams[p] = true
			}
			c.enqueue([]byte(`{"result":null,"id":` + string(id) + `}`))
		case "UNSUBSCRIBE":
			for _, p := range req.Params {
				delete(c.streams, p)
			}
			c.enqueue([]byte(`{"result":null,"id":` + string(id) + `}`))
		case "LIST_SUBSCRIPTIONS":
			names := make([]string, 0, len(c.streams))
			for n := range c.streams {
				names = append(names, n)
			}
			list, _ := json.Marshal(names)
			c.enqueue([]byte(`{"result":` + string(list) + `,"id":` + string(id) + `}`))
		default:
			c.enqueue([]byte(`{"error":{"code":2,"msg":"Invalid request: unknown method"},"id":` + string(id) + `}`))
		}
		c.s.mu.Unlock()
	}
}

// write sends queued frames and pings, and enforces the age cap. It frames
// messages itself and writes every frame queued at that moment with one
// write call, as an exchange's server does under load; one syscall per
// message would make the simulator, not the feed, the bottleneck of a
// throughput benchmark.
func (c *conn) write() {
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	var ageCap <-chan time.Time
	if c.s.cfg.MaxConnAge > 0 {
		t := time.NewTimer(c.s.cfg.MaxConnAge)
		defer t.Stop()
		ageCap = t.C
	}
	nc := c.ws.NetConn()
	buf := make([]byte, 0, 256<<10)
	var stamps []*int64
	flush := func() bool {
		if len(buf) == 0 {
			return true
		}
		now := time.Now().UnixNano()
		for _, st := range stamps {
			atomic.StoreInt64(st, now)
		}
		stamps = stamps[:0]
		_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := nc.Write(buf)
		buf = buf[:0]
		if err != nil {
			c.close()
			return false
		}
		return true
	}
	add := func(f outFrame) {
		if c.stalled.Load() && f.op != 8 {
			return
		}
		buf = appendFrame(buf, f.op, f.b)
		if f.stamp != nil {
			stamps = append(stamps, f.stamp)
		}
	}
	for {
		select {
		case <-c.done:
			return
		case <-ageCap:
			add(outFrame{op: 8, b: websocket.FormatCloseMessage(websocket.CloseNormalClosure, "24h cap")})
			flush()
			c.close()
			return
		case <-ping.C:
			add(outFrame{op: 9, b: strconv.AppendInt(nil, time.Now().UnixMilli(), 10)})
			if !flush() {
				return
			}
		case f := <-c.out:
			add(f)
			// Take whatever else is queued, up to the buffer's size.
		more:
			for len(buf) < cap(buf)-4096 {
				select {
				case f := <-c.out:
					add(f)
				default:
					break more
				}
			}
			if !flush() {
				return
			}
		}
	}
}

// appendFrame appends an unmasked server-to-client WebSocket frame.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func (s *Sim) serveDepth(w http.ResponseWriter, r *http.Request, futures bool) {
	sym := r.URL.Query().Get("symbol")
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 {
		limit = 100
	}
	s.mu.Lock()
	m := s.markets[key(futures, strings.ToUpper(sym))]
	var body []byte
	if m != nil {
		body = m.snapshotJSON(limit, time.Now().UnixMilli())
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if m == nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"code":-1121,"msg":"Invalid symbol."}`))
		return
	}
	_, _ = w.Write(body)
}

// BinanceTradesSent is how many trades the simulator has sent on the
// symbol's Binance trade streams (trade, or aggTrade when agg) to a
// subscriber: what a feed subscribed from the start must have published.
func (s *Sim) BinanceTradesSent(futures bool, symbol string, agg bool) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.markets[key(futures, strings.ToUpper(symbol))]
	switch {
	case m == nil:
		return 0
	case agg:
		return m.binanceAggSent
	}
	return m.binanceSent
}
