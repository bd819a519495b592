package bybit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paddockhq/paddock/feed"
	"github.com/paddockhq/paddock/feed/session"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/proto"
	"golang.org/x/time/rate"
)

// Bybit's documented limits.
const (
	// argsPerRequest is the most topics one subscribe request carries (the
	// spot limit; linear allows more, one rule is simpler).
	argsPerRequest = 10
	// maxArgsChars bounds one request's args (Bybit: under 21,000).
	maxArgsChars = 20_000
	// connAttemptsPer5Min is the connections allowed per 5 minutes per domain.
	connAttemptsPer5Min = 500
)

// Config configures one Bybit venue.
type Config struct {
	// WSURL is the category's public endpoint, e.g.
	// wss://stream.bybit.com/v5/public/linear (testnet: stream-testnet).
	WSURL string
	// Depth is the orderbook topic's depth (spot: 1, 50, 200, 1000; linear:
	// 1, 50, 200, 500, 1000). Push intervals differ by depth and category
	// and are not assumed here. Default 50.
	Depth int
	// PingEvery is the client heartbeat (Bybit: every 20 s).
	PingEvery time.Duration
	// SilenceTimeout: no frame (data or pong) for this long replaces the
	// connection make-before-break; default 3 pings.
	SilenceTimeout time.Duration
	// MaxConnAge, RolloverOverlap, BackoffMin, BackoffMax: see feed/session.
	MaxConnAge, RolloverOverlap, BackoffMin, BackoffMax time.Duration
	// ConnAttemptsPer5Min limits connection attempts (Bybit: 500).
	ConnAttemptsPer5Min int
	Logger              *slog.Logger
	Clock               clock.Clock
}

func (c *Config) setDefaults() error {
	if c.WSURL == "" {
		return errors.New("bybit: ws_url is required")
	}
	if c.Depth == 0 {
		c.Depth = 50
	}
	switch c.Depth {
	case 1, 50, 200, 500, 1000:
	default:
		return fmt.Errorf("bybit: depth %d: want 1, 50, 200, 500 or 1000", c.Depth)
	}
	if c.PingEvery <= 0 {
		c.PingEvery = 20 * time.Second
	}
	if c.SilenceTimeout <= 0 {
		c.SilenceTimeout = 3 * c.PingEvery
	}
	if c.ConnAttemptsPer5Min <= 0 {
		c.ConnAttemptsPer5Min = connAttemptsPer5Min
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	return nil
}

// Adapter publishes one Bybit venue (one category) through a feed.Outlet,
// on one session slot. Everything that touches per-instrument state runs
// under the slot's lock (Frame runs under it). Create with New; Run once.
type Adapter struct {
	cfg    Config
	out    *feed.Outlet
	log    *slog.Logger
	clk    clock.Clock
	sess   *session.Slot
	parser Parser
	states map[string]*instState // by Bybit symbol (BTCUSDT)
	topics map[string]*instState // orderbook topic -> instrument
	bbo    map[string]*instState // orderbook.1 topic when BBO rides on it
	badLog feed.RateLog

	mu       sync.Mutex // guards rejected
	rejected map[string]string
}

// instState is one instrument's state. Guarded by the slot's lock.
type instState struct {
	in       *feed.Instrument
	upper    string
	bookTpc  string
	bboTpc   string
	synced   bool
	lastU    uint64
	resubAt  int64 // ns: when the book topic was last re-subscribed
	bboU     uint64
	bbo      proto.BBO
	hasBBO   bool
	lastSeq  uint64 // trades: the cross sequence of the last published trade
	seqIDs   []uint64
	haveSeq  bool
	tradeCnt uint64
}

// New creates an adapter for the outlet's instruments.
func New(cfg Config, out *feed.Outlet) (*Adapter, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	a := &Adapter{cfg: cfg, out: out, clk: cfg.Clock, states: map[string]*instState{}, topics: map[string]*instState{},
		bbo: map[string]*instState{}, rejected: map[string]string{},
		log: cfg.Logger.With("component", "feed", "venue", out.Name)}
	var topics []string
	for _, in := range out.Instruments {
		st := &instState{in: in, upper: strings.ToUpper(in.Symbol), seqIDs: make([]uint64, 0, 64)}
		a.states[st.upper] = st
		if in.Events.Trades {
			topics = append(topics, "publicTrade."+st.upper)
		}
		if in.Events.Orderbook {
			st.bookTpc = fmt.Sprintf("orderbook.%d.%s", cfg.Depth, st.upper)
			a.topics[st.bookTpc] = st
			topics = append(topics, st.bookTpc)
		}
		if in.Events.BBO {
			st.bboTpc = "orderbook.1." + st.upper
			a.bbo[st.bboTpc] = st
			if st.bboTpc != st.bookTpc {
				topics = append(topics, st.bboTpc)
			}
		}
	}
	d := session.Dialect{URL: cfg.WSURL, Ping: []byte(`{"op":"ping"}`), PingEvery: cfg.PingEvery, SubscribeEvery: 100 * time.Millisecond}
	for _, req := range subscribeRequests("subscribe", topics) {
		d.Subscribe = append(d.Subscribe, req)
	}
	m := out.Metrics
	var err error
	a.sess, err = session.New(session.Config{Name: "0", Dialect: d, Handler: a, Clock: a.clk, Logger: a.log,
		Limiter:        rate.NewLimiter(rate.Every(5*time.Minute/time.Duration(cfg.ConnAttemptsPer5Min)), 10),
		SilenceTimeout: cfg.SilenceTimeout, MaxConnAge: cfg.MaxConnAge, RolloverOverlap: cfg.RolloverOverlap,
		BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax,
		Metrics: session.Metrics{Reconnects: m.Reconnects, Rollovers: m.Rollovers, HeldOverflows: m.HeldOverflows}})
	if err != nil {
		return nil, fmt.Errorf("bybit: %w", err)
	}
	return a, nil
}

// subscribeRequests batches topics into requests of at most argsPerRequest
// args and maxArgsChars characters, numbered by req_id.
func subscribeRequests(op string, topics []string) [][]byte {
	var out [][]byte
	for len(topics) > 0 {
		n, chars := 0, 0
		for n < len(topics) && n < argsPerRequest && chars+len(topics[n])+3 <= maxArgsChars {
			chars += len(topics[n]) + 3
			n++
		}
		if n == 0 {
			n = 1 // a single topic longer than the limit: Bybit will say no, and we count it
		}
		req, _ := json.Marshal(map[string]any{"op": op, "req_id": op + "-" + strconv.Itoa(len(out)+1) + ":" + strings.Join(topics[:n], ","), "args": topics[:n]})
		out = append(out, req)
		topics = topics[n:]
	}
	return out
}

// Run runs the venue's connection until ctx ends.
func (a *Adapter) Run(ctx context.Context) error {
	_ = a.sess.Run(ctx)
	return nil
}

// Status reports the connection and any refused subscription.
func (a *Adapter) Status() feed.VenueStatus {
	st := feed.VenueStatus{State: a.sess.State(), Connections: a.sess.Open(), LastData: a.sess.LastData()}
	a.mu.Lock()
	for topic, msg := range a.rejected {
		st.Problems = append(st.Problems, fmt.Sprintf("subscription %s refused: %s", topic, msg))
	}
	a.mu.Unlock()
	return st
}

// Frame handles one frame under the slot's lock: the hot path.
func (a *Adapter) Frame(c *session.Conn, frame []byte, recv int64) (hold bool) {
	m := a.out.Metrics
	m.Frames.Inc()
	ev, err := a.parser.Parse(frame)
	if err != nil {
		a.badFrame(err, frame)
		return false
	}
	switch ev.Kind {
	case KindResponse:
		a.response(ev)
		return false
	case KindIgnored:
		m.Ignored.Inc()
		return false
	case KindTrades:
		st := a.states[string(ev.Symbol)]
		if st == nil {
			m.UnknownSymbols.Inc()
			return false
		}
		return a.onTrades(st, c.Secondary(), ev, recv)
	case KindBook:
		topic := string(ev.Topic)
		if st := a.topics[topic]; st != nil {
			if hold := a.onBook(st, c, ev, recv); hold {
				return true
			}
		}
		if st := a.bbo[topic]; st != nil {
			a.onBBO(st, ev, recv)
		}
		if a.topics[topic] == nil && a.bbo[topic] == nil {
			m.UnknownSymbols.Inc()
		}
	}
	return false
}

// Lost publishes an outage for every instrument.
func (a *Adapter) Lost(reason error) {
	r := proto.ResetDisconnect
	if errors.Is(reason, session.ErrSilent) {
		r = proto.ResetStale
	}
	now := a.clk.Now().UnixNano()
	a.sess.Lock()
	defer a.sess.Unlock()
	for _, st := range a.states {
		st.in.Reset(feed.Times{Recv: now}, r)
		st.synced = false
	}
}

// response checks a subscription's acknowledgement: a refusal is counted,
// logged and shown by /readyz, never a silent hole.
func (a *Adapter) response(ev *Event) {
	if string(ev.Op) != "subscribe" {
		return
	}
	// req_id carries the topics it asked for (see subscribeRequests).
	_, topics, _ := strings.Cut(string(ev.ReqID), ":")
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range strings.Split(topics, ",") {
		if t == "" {
			continue
		}
		if ev.Success {
			delete(a.rejected, t)
		} else {
			a.rejected[t] = string(ev.RetMsg)
		}
	}
	if !ev.Success {
		a.out.Metrics.SubscribeErrors.Inc()
		a.log.Error("bybit refused a subscription", "topics", topics, "ret_msg", string(ev.RetMsg))
	}
}

// onTrades publishes each trade of a push as its own Trade message, in
// order, dropping those already published. Bybit's trade ids are strings
// (UUIDs on linear), so they cannot reveal a loss; the cross sequence "seq"
// only grows (several trades may share one), which is what orders and
// de-duplicates them across a rollover's two connections: a trade at or
// below the last published seq whose id was seen there is a duplicate.
// Loss is detected as the connection's (a disconnect or silence Resets the
// books and is counted), not per trade. A secondary connection holds trades
// the primary has not delivered yet.
func (a *Adapter) onTrades(st *instState, secondary bool, ev *Event, recv int64) (hold bool) {
	if !st.in.Events.Trades {
		return false
	}
	if secondary {
		for i := range ev.Trades {
			if !a.seen(st, &ev.Trades[i]) {
				return true
			}
		}
		a.out.Metrics.Duplicates.Add(float64(len(ev.Trades)))
		return false
	}
	for i := range ev.Trades {
		t := &ev.Trades[i]
		if a.seen(st, t) {
			a.out.Metrics.Duplicates.Inc()
			continue
		}
		side := proto.SideBuy
		if t.Sell {
			side = proto.SideSell
		}
		st.tradeCnt++
		tr := proto.Trade{Price: t.Price, Qty: t.Qty, TradeID: idHash(t.ID), Side: side}
		if err := st.in.PublishTrade(feed.Times{Event: t.Time, Recv: recv}, &tr); err != nil {
			a.badEvent("trade: "+err.Error(), st.upper)
			continue
		}
		a.remember(st, t)
	}
	return false
}

// seen reports whether t was published already.
func (a *Adapter) seen(st *instState, t *Trade) bool {
	if !st.haveSeq || t.Seq > st.lastSeq {
		return false
	}
	if t.Seq < st.lastSeq {
		return true
	}
	h := idHash(t.ID)
	for _, x := range st.seqIDs {
		if x == h {
			return true
		}
	}
	return false
}

func (a *Adapter) remember(st *instState, t *Trade) {
	if !st.haveSeq || t.Seq > st.lastSeq {
		st.haveSeq, st.lastSeq, st.seqIDs = true, t.Seq, st.seqIDs[:0]
	}
	if len(st.seqIDs) < cap(st.seqIDs) {
		st.seqIDs = append(st.seqIDs, idHash(t.ID))
	}
}

// idHash turns a string trade id into the proto's numeric TradeID: the
// number itself when it is one (spot), else its FNV-1a hash (UUIDs).
func idHash(id []byte) uint64 {
	var n uint64
	for _, c := range id {
		if c < '0' || c > '9' || n > (1<<64-1)/10-9 {
			// FNV-1a, inline: hash.Hash would allocate per trade.
			h := uint64(14695981039346656037)
			for _, b := range id {
				h = (h ^ uint64(b)) * 1099511628211
			}
			return h
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

// onBook applies Bybit's orderbook rules. A snapshot replaces the book (the
// first after subscribing, or a venue-side reset, u == 1 among them): not a
// gap. A delta must have u == last + 1; a hole, or a delta before any
// snapshot, is a gap: Reset this instrument and re-subscribe its topic for
// a fresh snapshot. A secondary connection holds what is ahead of the book.
func (a *Adapter) onBook(st *instState, c *session.Conn, ev *Event, recv int64) (hold bool) {
	t := feed.Times{Event: ev.MatchTime, Recv: recv}
	if t.Event == 0 {
		t.Event = ev.Time
	}
	if c.Secondary() {
		switch {
		case !st.synced:
			return true
		case ev.UpdateID <= st.lastU && ev.UpdateID != 1:
			a.out.Metrics.Duplicates.Inc()
			return false
		case ev.Snapshot || ev.UpdateID != st.lastU+1:
			return true
		}
	}
	if ev.Snapshot {
		if st.synced && ev.UpdateID == st.lastU && ev.UpdateID != 1 {
			a.out.Metrics.Duplicates.Inc()
			return false
		}
		if err := st.in.LoadSnapshot(t, ev.UpdateID, ev.Seq, ev.Bids, ev.Asks); err != nil {
			a.badEvent("snapshot: "+err.Error(), st.upper)
			a.gap(st, c, t)
			return false
		}
		st.synced, st.lastU = true, ev.UpdateID
		st.in.CountResync()
		return false
	}
	switch {
	case !st.synced:
		// A delta before any snapshot: wait for the snapshot the
		// subscription brings, or ask again if none came.
		a.resubscribe(st, c, t)
		return false
	case ev.UpdateID <= st.lastU:
		a.out.Metrics.Duplicates.Inc()
		return false
	case ev.UpdateID != st.lastU+1:
		a.gap(st, c, t)
		return false
	}
	if err := st.in.ApplyDelta(t, ev.UpdateID, ev.UpdateID, ev.Seq, ev.Bids, ev.Asks); err != nil {
		if errors.Is(err, feed.ErrCrossed) {
			a.log.Warn("the book crossed; resyncing", "symbol", st.upper, "u", ev.UpdateID) // counted by the instrument
		} else {
			a.badEvent("delta: "+err.Error(), st.upper)
		}
		a.gap(st, c, t)
		return false
	}
	st.lastU = ev.UpdateID
	return false
}

// gap resets one instrument's book and re-subscribes its topic.
func (a *Adapter) gap(st *instState, c *session.Conn, t feed.Times) {
	st.in.CountGap()
	st.in.Reset(t, proto.ResetGap)
	st.synced = false
	a.resubscribe(st, c, t)
}

// resubscribe asks Bybit for a fresh snapshot of st's book topic, at most
// once a second.
func (a *Adapter) resubscribe(st *instState, c *session.Conn, t feed.Times) {
	now := a.clk.Now().UnixNano()
	if now-st.resubAt < int64(time.Second) {
		return
	}
	st.resubAt = now
	for _, op := range []string{"unsubscribe", "subscribe"} {
		for _, req := range subscribeRequests(op, []string{st.bookTpc}) {
			if err := c.Send(req); err != nil {
				a.log.Warn("re-subscribe", "topic", st.bookTpc, "err", err)
				return
			}
		}
	}
}

// onBBO publishes the best bid and offer from an orderbook.1 push, unless it
// repeats the last one (Bybit re-sends an unchanged L1 snapshot every 3 s).
func (a *Adapter) onBBO(st *instState, ev *Event, recv int64) {
	if !st.in.Events.BBO || len(ev.Bids) == 0 || len(ev.Asks) == 0 {
		return
	}
	q := proto.BBO{Bid: ev.Bids[0], Ask: ev.Asks[0], UpdateID: ev.UpdateID}
	if st.hasBBO {
		switch {
		case ev.UpdateID < st.bboU && ev.UpdateID != 1:
			a.out.Metrics.Duplicates.Inc() // the other connection's, during a rollover
			return
		case q.Bid == st.bbo.Bid && q.Ask == st.bbo.Ask:
			return // Bybit's periodic re-send of an unchanged L1: nothing new
		}
	}
	if err := st.in.PublishBBO(feed.Times{Event: ev.Time, Recv: recv}, &q); err != nil {
		a.badEvent("bbo: "+err.Error(), st.upper)
		return
	}
	st.hasBBO, st.bbo, st.bboU = true, q, ev.UpdateID
}

func (a *Adapter) badFrame(err error, frame []byte) {
	a.out.Metrics.ParseError(err.Error())
	a.badLog.Maybe(a.clk.Now(), func(suppressed int64) {
		a.log.Warn("dropped a frame", "err", err, "sample", fmt.Sprintf("%.200q", frame), "suppressed_since_last_log", suppressed)
	})
}

func (a *Adapter) badEvent(what, symbol string) {
	a.out.Metrics.ParseError("unencodable")
	a.badLog.Maybe(a.clk.Now(), func(suppressed int64) {
		a.log.Warn("dropped an event", "symbol", symbol, "err", what, "suppressed_since_last_log", suppressed)
	})
}
