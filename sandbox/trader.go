package sandbox

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/risk"
	"github.com/paddockhq/paddock/sandbox/client"
	"github.com/paddockhq/paddock/sandbox/marketdata"
	"github.com/paddockhq/paddock/sandbox/paper"
)

// Publisher sends events; *nats.Conn has it.
type Publisher interface {
	Publish(subject string, data []byte) error
}

// Trader is the node's trading core: the risk gate, the paper venue, and the
// books they read. Market data (from the Market's goroutine), orders (from
// NATS and HTTP) and admin actions all take its one mutex, so everything it
// does is in one order: given the same market data and orders it makes the
// same decisions and fills.
type Trader struct {
	mu      sync.Mutex
	env     string
	pub     Publisher
	log     *slog.Logger
	now     func() time.Time
	metrics *Metrics

	risk   *risk.Engine
	venue  *paper.Venue
	inst   []client.Instrument
	quote  []string
	books  []*marketdata.Book
	byName map[client.Instrument]int
	// rateFrom maps an instrument index to the quote currency it prices in
	// USD (btcusdt prices BTC), for feed-derived rates.
	rateFrom map[int]string

	orders map[uint64]*order
	nextID uint64
	fills  []client.Fill // the most recent, oldest first
	venues map[string]*venueHealth

	// expired is why orders are refused because the environment's deadline
	// passed (the dead man's switch); "" while it has not.
	expired string

	// OnHalt and OnResume are called (without the lock held, on their own
	// goroutine) when the environment halts or resumes: the node stops and
	// restarts its strategy.
	OnHalt, OnResume func()
}

// Expire refuses every order from now on (CodeExpired, with why), cancels
// the resting ones and stops the strategy: the environment's deadline
// passed. Idempotent.
func (t *Trader) Expire(why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.expired != "" {
		return
	}
	t.expired = why
	t.cancelAll("deadline passed")
	t.log.Warn("deadline passed: orders are refused", "why", why)
	t.publish("risk", client.RiskEvent{Type: "expired", Code: CodeExpired, Reason: why, Time: t.now()})
	if t.OnHalt != nil {
		go t.OnHalt()
	}
}

// Unexpire lifts Expire (an extension arrived). Idempotent.
func (t *Trader) Unexpire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.expired == "" {
		return
	}
	t.expired = ""
	t.log.Info("deadline extended: orders are accepted again")
	t.publish("risk", client.RiskEvent{Type: "extended", Reason: "the environment's deadline was extended", Time: t.now()})
	if h, _ := t.risk.Halted(); !h && t.OnResume != nil {
		go t.OnResume()
	}
}

type order struct {
	paper.Order
	clientID    string
	typ, tif    string
	status      string
	code        string
	reason      string
	created     time.Time
	updated     time.Time
	reservedRem bool // the unfilled remainder is still reserved in the risk gate
}

type venueHealth struct {
	lastStatus time.Time
	state      proto.State
	healthy    bool
}

const maxFills = 1000

// NewTrader builds the trading core from a checked configuration.
func NewTrader(c *Config, pub Publisher, log *slog.Logger, m *Metrics, now func() time.Time) (*Trader, error) {
	lim, err := c.Limits()
	if err != nil {
		return nil, err
	}
	eng, err := risk.New(lim)
	if err != nil {
		return nil, err
	}
	t := &Trader{env: c.Name, pub: pub, log: log, now: now, metrics: m, risk: eng, byName: map[client.Instrument]int{},
		rateFrom: map[int]string{}, orders: map[uint64]*order{}, venues: map[string]*venueHealth{}}
	var fees []paper.Fees
	for i, in := range c.Instruments {
		id, err := eng.AddInstrument(risk.Instrument{Venue: in.Venue, Symbol: in.Symbol, Quote: in.Quote})
		if err != nil {
			return nil, err
		}
		if int(id) != i {
			return nil, fmt.Errorf("node: instrument ids out of order")
		}
		ci := client.Instrument{Venue: in.Venue, Symbol: in.Symbol}
		t.inst = append(t.inst, ci)
		t.quote = append(t.quote, strings.ToUpper(in.Quote))
		t.books = append(t.books, nil)
		t.byName[ci] = i
		f, err := c.fees(in.Venue)
		if err != nil {
			return nil, err
		}
		fees = append(fees, f)
		if _, ok := t.venues[in.Venue]; !ok {
			// Until the feed says otherwise, a venue is not trusted.
			t.venues[in.Venue] = &venueHealth{}
			eng.SetVenueHealth(in.Venue, false, "no status from the feed yet")
		}
	}
	for i, in := range c.Instruments {
		if base, ok := strings.CutSuffix(strings.ToUpper(in.Symbol), "USDT"); ok && base != "" {
			for _, q := range t.quote {
				if q == base {
					t.rateFrom[i] = base
				}
			}
		}
	}
	for q, r := range c.USDRates {
		d, _ := proto.ParseUDecimal(r)
		eng.SetRate(q, d, 0, false)
	}
	t.venue = paper.New(fees)
	return t, nil
}

// Handlers are the Market handlers that drive the trader. The Market holds
// the trader's mutex while it changes a book and calls them, so orders
// always see a whole book.
func (t *Trader) Handlers(report func(error)) marketdata.Handlers {
	return marketdata.Handlers{Book: t.onBook, Reset: t.onReset, Trade: t.onTrade, Status: t.onStatus, Error: report, Locker: &t.mu}
}

func (t *Trader) onBook(b *marketdata.Book, bids, asks []proto.Level) {
	id, ok := t.byName[b.Instrument]
	if !ok {
		return
	}
	t.books[id] = b
	t.metrics.bookUpdates.Inc()
	t.venue.BookChanged(id, bids, asks, bids == nil && asks == nil)
	mid, ok := b.Mid()
	if !ok {
		return
	}
	now := t.now().UnixNano()
	if q, ok := t.rateFrom[id]; ok {
		t.risk.SetRate(q, mid, now, true)
	}
	if t.risk.Mark(now, risk.InstrumentID(id), mid) {
		t.halted()
	}
}

func (t *Trader) onReset(b *marketdata.Book, why string) {
	if id, ok := t.byName[b.Instrument]; ok {
		t.risk.Unmark(risk.InstrumentID(id))
	}
	t.metrics.bookResyncs.Inc()
	t.log.Info("book reset; rejoining", "instrument", b.Instrument.String(), "why", why)
}

func (t *Trader) onTrade(in client.Instrument, tr proto.TradeView) {
	id, ok := t.byName[in]
	if !ok {
		return
	}
	t.metrics.trades.Inc()
	t.settle(t.venue.Trade(id, tr.Price(), tr.Qty()), tr.Seq())
}

func (t *Trader) onStatus(venue string, s proto.StatusView) {
	v, ok := t.venues[venue]
	if !ok {
		return
	}
	v.lastStatus, v.state = t.now(), s.State()
	if s.State() == proto.StateConnected {
		t.setHealth(venue, v, true, "")
	} else {
		t.setHealth(venue, v, false, "the feed reports the venue "+s.State().String())
	}
}

// CheckFeeds marks venues whose feed has gone quiet as down; the node calls
// it periodically.
func (t *Trader) CheckFeeds(staleAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for name, v := range t.venues {
		if v.healthy && now.Sub(v.lastStatus) > staleAfter {
			t.setHealth(name, v, false, fmt.Sprintf("no status from the feed for %s", now.Sub(v.lastStatus).Round(time.Second)))
		}
	}
}

func (t *Trader) setHealth(venue string, v *venueHealth, healthy bool, why string) {
	if v.healthy == healthy {
		return
	}
	v.healthy = healthy
	t.risk.SetVenueHealth(venue, healthy, why)
	ev := client.RiskEvent{Type: "venue_healthy", Reason: "market data for " + venue + " is flowing", Venue: venue, Time: t.now()}
	if !healthy {
		ev = client.RiskEvent{Type: "venue_unhealthy", Reason: why, Venue: venue, Time: t.now()}
		t.log.Warn("venue unhealthy: orders refused", "venue", venue, "why", why)
	} else {
		t.log.Info("venue healthy", "venue", venue)
	}
	t.publish("risk", ev)
}

func (t *Trader) publish(kind string, v any) {
	raw, err := json.Marshal(v)
	if err == nil {
		err = t.pub.Publish(client.EventSubject(t.env, kind), raw)
	}
	if err != nil {
		t.metrics.publishErrors.Inc()
	}
}

// settle books fills in the risk gate, records and publishes them, and
// halts the environment when a fill breached the drawdown limit.
func (t *Trader) settle(fills []paper.Fill, marketSeq uint64) {
	if len(fills) == 0 {
		return // the common case for a trade print: nothing rests at its price
	}
	halted := false
	now := t.now()
	for _, f := range fills {
		o := t.orders[f.Order.ID]
		h, err := t.risk.Fill(risk.InstrumentID(f.Order.Inst), f.Order.Side, f.Qty, f.Price, f.Fee)
		if err != nil {
			t.log.Error("fill not accounted", "order", f.Order.ID, "err", err)
		}
		halted = halted || h
		liq := "taker"
		if f.Maker {
			liq = "maker"
		}
		in := t.inst[f.Order.Inst]
		fl := client.Fill{OrderID: f.Order.ID, Venue: in.Venue, Symbol: in.Symbol, Side: f.Order.Side.String(),
			Qty: f.Qty.String(), Price: f.Price.String(), Fee: f.Fee.String(), FeeCurrency: t.quote[f.Order.Inst],
			Liquidity: liq, MarketSeq: marketSeq, Time: now}
		if o != nil {
			fl.ClientID = o.clientID
			o.updated = now
		}
		if len(t.fills) == maxFills {
			t.fills = append(t.fills[:0], t.fills[1:]...)
		}
		t.fills = append(t.fills, fl)
		t.metrics.fills.WithLabelValues(liq).Inc()
		t.publish("fills", fl)
		if o != nil && o.Remaining().Sign() == 0 {
			o.reservedRem = false // Fill released the last of it
		}
	}
	// One order event per order, after all its fills; an order's fills are
	// adjacent in the slice.
	for i, f := range fills {
		if i+1 < len(fills) && fills[i+1].Order == f.Order {
			continue
		}
		if o := t.orders[f.Order.ID]; o != nil {
			t.orderEvent(o)
		}
	}
	if halted {
		t.halted()
	}
}

func (t *Trader) orderEvent(o *order) {
	t.publish("orders", t.view(o))
}

// halted runs after the risk gate halted: cancel every open order, publish
// the halt, stop the strategy.
func (t *Trader) halted() {
	_, why := t.risk.Halted()
	t.cancelAll("environment halted")
	t.metrics.halted.Set(1)
	t.metrics.halts.Inc()
	t.log.Warn("environment halted", "why", why)
	t.publish("risk", client.RiskEvent{Type: "halted", Code: risk.RejectHalted.String(), Reason: why, Time: t.now()})
	if t.OnHalt != nil {
		go t.OnHalt()
	}
}

func (t *Trader) cancelAll(why string) {
	for _, po := range t.venue.Resting() {
		if o := t.orders[po.ID]; o != nil {
			t.cancel(o, "halted", why)
		}
	}
}

func (t *Trader) cancel(o *order, code, why string) bool {
	if !t.venue.Cancel(&o.Order, why) {
		return false
	}
	t.release(o)
	o.code, o.reason, o.updated = code, why, t.now()
	t.orderEvent(o)
	return true
}

// release returns an order's unfilled remainder to the risk gate.
func (t *Trader) release(o *order) {
	if !o.reservedRem {
		return
	}
	o.reservedRem = false
	if rem, ok := o.Remaining().Decimal(); ok && rem.Mant > 0 {
		t.risk.Release(risk.InstrumentID(o.Inst), o.Side, rem)
	}
}

// Halt halts the environment on request (the developer or an admin).
func (t *Trader) Halt(why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, _ := t.risk.Halted(); h {
		return
	}
	t.risk.Halt(why)
	t.halted()
}

// Resume lifts a halt (admin only, enforced by the admin API).
func (t *Trader) Resume(by string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, _ := t.risk.Halted(); !h {
		return false
	}
	t.risk.Resume()
	t.metrics.halted.Set(0)
	t.log.Info("environment resumed", "by", by)
	t.publish("risk", client.RiskEvent{Type: "resumed", Reason: "resumed by " + by, Time: t.now()})
	if t.OnResume != nil {
		go t.OnResume()
	}
	return true
}
