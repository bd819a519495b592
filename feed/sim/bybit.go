package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bybit v5 public streams over the same markets: /v5/public/spot serves the
// spot symbols, /v5/public/linear the futures ones. Topics: publicTrade.<S>,
// orderbook.<depth>.<S> (a snapshot on subscribe, then deltas with
// contiguous u), and orderbook.1.<S> pushed as snapshots every step, changed
// or not, as Bybit's L1 re-sends. Client {"op":"ping"} gets a pong.

// bybitState is a market's Bybit-side counters. Guarded by Sim.mu.
type bybitState struct {
	u        uint64 // the orderbook topics' update id
	seq      uint64 // cross sequence, per trade
	skipNext bool   // the next delta is generated but not sent (a gap)
	batch    []*tradeEv
	batchN   int // trades per publicTrade push (0 or 1: one each)
}

// BybitSpotWS and BybitLinearWS are the endpoints to configure the feed's
// bybit and bybit-perp venues with.
func (s *Sim) BybitSpotWS() string   { return "ws://" + s.ln.Addr().String() + "/v5/public/spot" }
func (s *Sim) BybitLinearWS() string { return "ws://" + s.ln.Addr().String() + "/v5/public/linear" }

func (s *Sim) serveBybit(w http.ResponseWriter, r *http.Request, futures bool) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &conn{s: s, ws: ws, futures: futures, bybit: true, opened: time.Now(), out: make(chan outFrame, s.cfg.QueueLen),
		streams: map[string]bool{}, done: make(chan struct{})}
	ws.SetPingHandler(func(data string) error {
		select {
		case c.out <- outFrame{b: []byte(data), op: 10}:
		default:
		}
		return nil
	})
	ws.SetCloseHandler(func(int, string) error { return nil })
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
	c.bybitReadLoop()
}

// bybitReadLoop answers subscribe, unsubscribe and ping.
func (c *conn) bybitReadLoop() {
	s := c.s
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var req struct {
			Op    string   `json:"op"`
			Args  []string `json:"args"`
			ReqID string   `json:"req_id"`
		}
		if json.Unmarshal(msg, &req) != nil {
			c.enqueue([]byte(`{"success":false,"ret_msg":"Invalid JSON","conn_id":"sim","op":""}`))
			continue
		}
		reqID, _ := json.Marshal(req.ReqID)
		switch req.Op {
		case "ping":
			s.pongs.Add(1)
			if s.stallPongs.Load() {
				continue // a missed pong: the client must notice the silence
			}
			if c.futures {
				c.enqueue([]byte(`{"req_id":` + string(reqID) + `,"op":"pong","args":["` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `"],"conn_id":"sim"}`))
			} else {
				c.enqueue([]byte(`{"success":true,"ret_msg":"pong","conn_id":"sim","req_id":` + string(reqID) + `,"op":"ping"}`))
			}
		case "subscribe", "unsubscribe":
			s.mu.Lock()
			var bad []string
			for _, topic := range req.Args {
				m, depth, ok := s.bybitTopic(c.futures, topic)
				if !ok || s.rejectTopics[topic] {
					bad = append(bad, topic)
					continue
				}
				if req.Op == "unsubscribe" {
					delete(c.streams, topic)
					continue
				}
				c.streams[topic] = true
				if depth > 0 {
					c.enqueue(m.bybitBook(topic, depth, true, nil, time.Now().UnixMilli()))
				}
			}
			if len(bad) > 0 {
				c.enqueue([]byte(`{"success":false,"ret_msg":"error:handler not found,topic:` + strings.Join(bad, ",") + `","conn_id":"sim","req_id":` + string(reqID) + `,"op":"` + req.Op + `"}`))
			} else {
				c.enqueue([]byte(`{"success":true,"ret_msg":"","conn_id":"sim","req_id":` + string(reqID) + `,"op":"` + req.Op + `"}`))
			}
			s.mu.Unlock()
		default:
			c.enqueue([]byte(`{"success":false,"ret_msg":"error:unknown op","conn_id":"sim","req_id":` + string(reqID) + `,"op":"` + req.Op + `"}`))
		}
	}
}

// bybitTopic resolves a topic to its market and book depth (0 for trades).
// Caller holds s.mu.
func (s *Sim) bybitTopic(futures bool, topic string) (*market, int, bool) {
	parts := strings.Split(topic, ".")
	switch {
	case len(parts) == 2 && parts[0] == "publicTrade":
		m := s.markets[key(futures, parts[1])]
		return m, 0, m != nil
	case len(parts) == 3 && parts[0] == "orderbook":
		depth, err := strconv.Atoi(parts[1])
		valid := map[int]bool{1: true, 50: true, 200: true, 1000: true}
		if futures {
			valid[500] = true
		}
		m := s.markets[key(futures, parts[2])]
		return m, depth, err == nil && valid[depth] && m != nil
	}
	return nil, 0, false
}

// stepBybit sends a step's Bybit frames. Caller holds s.mu.
func (s *Sim) stepBybit(m *market, cs []change, tr *tradeEv, ms int64) {
	b := &m.bybit
	if tr != nil {
		b.batch = append(b.batch, tr)
		if len(b.batch) >= max(b.batchN, 1) {
			trades := b.batch
			s.sendBybit(m, "publicTrade."+m.symbol, func() []byte { return m.bybitTrades(trades, ms) })
			b.batch = nil
		}
	}
	if len(cs) > 0 {
		b.u++
		if b.skipNext {
			b.skipNext = false
		} else {
			for _, d := range []int{50, 200, 500, 1000} {
				topic := "orderbook." + strconv.Itoa(d) + "." + m.symbol
				s.sendBybit(m, topic, func() []byte { return m.bybitBook(topic, d, false, cs, ms) })
			}
		}
	}
	topic := "orderbook.1." + m.symbol
	s.sendBybit(m, topic, func() []byte { return m.bybitBook(topic, 1, true, nil, ms) })
}

// sendBybit builds a frame only if a Bybit connection subscribed the topic.
// Caller holds s.mu.
func (s *Sim) sendBybit(m *market, topic string, build func() []byte) {
	var frame []byte
	for c := range s.conns {
		if !c.bybit || c.futures != m.futures || !c.streams[topic] {
			continue
		}
		if frame == nil {
			frame = build()
		}
		c.enqueue(frame)
	}
}

// bybitTrades is one publicTrade push. Linear trade ids are UUID-shaped,
// spot ones numeric, as on Bybit.
func (m *market) bybitTrades(trades []*tradeEv, ms int64) []byte {
	b := make([]byte, 0, 64+180*len(trades))
	b = append(b, `{"topic":"publicTrade.`...)
	b = append(b, m.symbol...)
	b = append(b, `","type":"snapshot","ts":`...)
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, `,"data":[`...)
	for i, t := range trades {
		if i > 0 {
			b = append(b, ',')
		}
		m.bybit.seq++
		side := "Buy"
		if t.buyerMaker {
			side = "Sell"
		}
		b = append(b, `{"T":`...)
		b = strconv.AppendInt(b, ms, 10)
		b = append(b, `,"s":"`...)
		b = append(b, m.symbol...)
		b = append(b, `","S":"`...)
		b = append(b, side...)
		b = append(b, `","v":`...)
		b = appendQuoted(b, t.qty)
		b = append(b, `,"p":`...)
		b = appendQuoted(b, t.price)
		b = append(b, `,"L":"PlusTick","i":"`...)
		if m.futures {
			b = fmt.Appendf(b, "%08x-0000-4000-8000-%012x", t.id>>32, t.id)
		} else {
			b = strconv.AppendUint(b, t.id, 10)
		}
		b = append(b, `","BT":false,"seq":`...)
		b = strconv.AppendUint(b, m.bybit.seq, 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// bybitBook is an orderbook push: a snapshot of the top depth levels, or a
// delta of the step's changes.
func (m *market) bybitBook(topic string, depth int, snapshot bool, cs []change, ms int64) []byte {
	b := make([]byte, 0, 256+48*max(len(cs), 2*depth))
	b = append(b, `{"topic":"`...)
	b = append(b, topic...)
	if snapshot {
		b = append(b, `","type":"snapshot","ts":`...)
	} else {
		b = append(b, `","type":"delta","ts":`...)
	}
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, `,"data":{"s":"`...)
	b = append(b, m.symbol...)
	b = append(b, `","b":`...)
	if snapshot {
		b = appendSide(b, levels(m.bids, true, depth))
		b = append(b, `,"a":`...)
		b = appendSide(b, levels(m.asks, false, depth))
	} else {
		b = appendLevels(b, cs, false)
		b = append(b, `,"a":`...)
		b = appendLevels(b, cs, true)
	}
	b = append(b, `,"u":`...)
	b = strconv.AppendUint(b, m.bybit.u, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, m.updateID, 10)
	b = append(b, `},"cts":`...)
	b = strconv.AppendInt(b, ms, 10)
	return append(b, '}')
}

func appendSide(b []byte, ls [][2]int64) []byte {
	b = append(b, '[')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendQuoted(b, l[0])
		b = append(b, ',')
		b = appendQuoted(b, l[1])
		b = append(b, ']')
	}
	return append(b, ']')
}

// ---- Bybit fault injection, for tests ----

// SkipNextBybitDelta generates the symbol's next book change without
// sending its delta: a hole in u.
func (s *Sim) SkipNextBybitDelta(futures bool, symbol string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.markets[key(futures, strings.ToUpper(symbol))]; m != nil {
		m.bybit.skipNext = true
	}
}

// RestartBybitBook plays Bybit's book service restarting: u starts over at 1
// and every subscriber gets a fresh snapshot.
func (s *Sim) RestartBybitBook(futures bool, symbol string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.markets[key(futures, strings.ToUpper(symbol))]
	if m == nil {
		return
	}
	m.bybit.u = 1
	for _, d := range []int{1, 50, 200, 500, 1000} {
		topic := "orderbook." + strconv.Itoa(d) + "." + m.symbol
		s.sendBybit(m, topic, func() []byte { return m.bybitBook(topic, d, true, nil, time.Now().UnixMilli()) })
	}
}

// RejectBybitTopic makes the simulator refuse subscriptions to topic.
func (s *Sim) RejectBybitTopic(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectTopics[topic] = true
}

// BatchBybitTrades sends the symbol's trades n to a publicTrade push.
func (s *Sim) BatchBybitTrades(futures bool, symbol string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.markets[key(futures, strings.ToUpper(symbol))]; m != nil {
		m.bybit.batchN = min(n, 1024)
	}
}

// StallBybitPongs stops (or resumes) answering Bybit pings.
func (s *Sim) StallBybitPongs(stall bool) { s.stallPongs.Store(stall) }

// BybitTrades is how many trades the simulator has sent on Bybit streams
// for a symbol (the cross sequence).
func (s *Sim) BybitTrades(futures bool, symbol string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.markets[key(futures, strings.ToUpper(symbol))]; m != nil {
		return m.bybit.seq
	}
	return 0
}
