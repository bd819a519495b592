// Package risk is the pre-trade risk gate of a sandbox environment: the
// per-environment limits a developer declares in risk_config, applied to
// every order before it reaches a venue, and the exact accounting (positions,
// cash, realized and unrealized PnL, equity, drawdown) the limits need.
//
// It is pure logic: no NATS, no clocks, no I/O. Time is passed in as Unix
// nanoseconds, so tests and the node drive it deterministically. All money is
// exact (Amount: a 128-bit decimal); there is no float64 in the accounting.
package risk

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// Limits are an environment's risk limits.
type Limits struct {
	MaxPositionUSD    proto.Decimal // per instrument: |position| x mark x rate after the order fully fills
	MaxDrawdownPct    proto.Decimal // peak-to-trough equity drop that halts the environment, in (0, 100]
	MaxOrderRate      proto.Decimal // orders per second (token bucket; burst = max(1, ceil(rate)))
	StartingEquityUSD proto.Decimal // the paper account's equity at start; must be > 0
	// MaxMarkAge is how old a mark (or a feed-derived rate) may be before
	// orders that add exposure are refused; default 10s.
	MaxMarkAge time.Duration
}

// Sentinel errors for configuration problems.
var (
	ErrLimits     = errors.New("risk: invalid limits")
	ErrInstrument = errors.New("risk: invalid instrument")
)

// Side of an order or fill.
type Side uint8

const (
	Buy  Side = 1
	Sell Side = 2
)

func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return "invalid"
}

// InstrumentID indexes the instruments added to an Engine.
type InstrumentID int

// Instrument declares an instrument to the engine.
type Instrument struct {
	Venue  string // binance, binance-perp, ...
	Symbol string // btcusdt (the subject token)
	Quote  string // USDT, BTC, ...: the currency prices are quoted in
}

// Order is what the pre-trade check evaluates.
type Order struct {
	Instrument InstrumentID
	Side       Side
	Qty        proto.Decimal // > 0
}

type instrument struct {
	Instrument
	venue int
	quote int
	name  string // venue:symbol, for messages

	pos       Amount // signed base quantity
	openBuy   Amount // reserved by accepted, unfilled buy orders
	openSell  Amount
	mark      proto.Decimal
	markAt    int64 // unix ns
	marked    bool
	cost      Amount // signed sum of lot qty x lot price (quote currency)
	realized  Amount // quote currency
	fees      Amount // quote currency, paid (positive) or rebated (negative)
	lots      []lot  // FIFO, all on the side of pos
	fills     uint64
	buyQty    Amount
	sellQty   Amount
	notional  Amount // traded, quote currency
	lastPrice proto.Decimal
}

type lot struct {
	qty   Amount // > 0
	price proto.Decimal
}

type rate struct {
	name     string
	usdLike  bool
	fromFeed bool
	value    proto.Decimal
	at       int64 // 0 = unknown; usdLike and configured rates never go stale
}

type venue struct {
	name    string
	healthy bool
	why     string
}

// Engine is one environment's risk gate and paper account. It is not safe
// for concurrent use: the node owns it from one goroutine (or under one
// mutex). Check does not allocate.
type Engine struct {
	lim      Limits
	limitUSD Amount
	ddPct    Amount
	maxAge   int64
	inst     []instrument
	rates    []rate
	venues   []venue
	bucket   bucket

	start    Amount // USD
	peak     Amount // USD
	equity   Amount // USD, as of the last evaluation
	equityOK bool   // false until every position has a mark and a rate
	halted   bool
	haltWhy  string
}

// New creates an engine. The limits must all be positive and the drawdown at
// most 100.
func New(l Limits) (*Engine, error) {
	zero := proto.Decimal{}
	switch {
	case l.MaxPositionUSD.Cmp(zero) <= 0:
		return nil, fmt.Errorf("%w: max_position_usd must be > 0", ErrLimits)
	case l.MaxDrawdownPct.Cmp(zero) <= 0 || l.MaxDrawdownPct.Cmp(proto.Decimal{Mant: 100}) > 0:
		return nil, fmt.Errorf("%w: max_drawdown_pct must be in (0, 100]", ErrLimits)
	case l.StartingEquityUSD.Cmp(zero) <= 0:
		return nil, fmt.Errorf("%w: starting equity must be > 0", ErrLimits)
	}
	b, err := newBucket(l.MaxOrderRate)
	if err != nil {
		return nil, err
	}
	if l.MaxMarkAge <= 0 {
		l.MaxMarkAge = 10 * time.Second
	}
	e := &Engine{lim: l, limitUSD: Dec(l.MaxPositionUSD), ddPct: Dec(l.MaxDrawdownPct),
		maxAge: int64(l.MaxMarkAge), bucket: b, start: Dec(l.StartingEquityUSD)}
	e.peak, e.equity, e.equityOK = e.start, e.start, true
	return e, nil
}

// USDLike are quote currencies valued at exactly 1 USD.
var USDLike = []string{"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "DAI"}

var knownQuotes = append([]string{"BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY"}, USDLike...)

// QuoteOf returns the quote currency of an instrument as a developer writes
// it: "BTC/USDT" -> USDT; "BTCUSDT" -> USDT by the longest known suffix.
func QuoteOf(written string) (string, bool) {
	w := strings.ToUpper(written)
	if i := strings.IndexByte(w, '/'); i >= 0 {
		return w[i+1:], i+1 < len(w)
	}
	best := ""
	for _, q := range knownQuotes {
		if strings.HasSuffix(w, q) && len(w) > len(q) && len(q) > len(best) {
			best = q
		}
	}
	return best, best != ""
}

// AddInstrument declares an instrument and returns its id.
func (e *Engine) AddInstrument(in Instrument) (InstrumentID, error) {
	if in.Venue == "" || in.Symbol == "" || in.Quote == "" {
		return 0, fmt.Errorf("%w: venue, symbol and quote are required", ErrInstrument)
	}
	for _, x := range e.inst {
		if x.Venue == in.Venue && x.Symbol == in.Symbol {
			return 0, fmt.Errorf("%w: %s:%s declared twice", ErrInstrument, in.Venue, in.Symbol)
		}
	}
	in.Quote = strings.ToUpper(in.Quote)
	x := instrument{Instrument: in, venue: e.venueIndex(in.Venue), quote: e.rateIndex(in.Quote),
		name: in.Venue + ":" + in.Symbol}
	e.inst = append(e.inst, x)
	return InstrumentID(len(e.inst) - 1), nil
}

func (e *Engine) venueIndex(name string) int {
	for i, v := range e.venues {
		if v.name == name {
			return i
		}
	}
	e.venues = append(e.venues, venue{name: name, healthy: true})
	return len(e.venues) - 1
}

func (e *Engine) rateIndex(q string) int {
	for i, r := range e.rates {
		if r.name == q {
			return i
		}
	}
	r := rate{name: q}
	for _, u := range USDLike {
		if u == q {
			r.usdLike, r.value = true, proto.Decimal{Mant: 1}
		}
	}
	e.rates = append(e.rates, r)
	return len(e.rates) - 1
}

// SetRate sets the USD value of one unit of a quote currency. A rate from
// configuration (fromFeed false) never goes stale; one derived from the feed
// does, like a mark. Rates of USD-like currencies are fixed at 1.
func (e *Engine) SetRate(quote string, value proto.Decimal, now int64, fromFeed bool) {
	i := e.rateIndex(strings.ToUpper(quote))
	if e.rates[i].usdLike || value.Mant <= 0 {
		return
	}
	e.rates[i].value, e.rates[i].at, e.rates[i].fromFeed = value, now, fromFeed
}

// SetVenueHealth records whether the feed for a venue is trustworthy; while
// it is not, every order for that venue is refused with why.
func (e *Engine) SetVenueHealth(venue string, healthy bool, why string) {
	i := e.venueIndex(venue)
	e.venues[i].healthy, e.venues[i].why = healthy, why
}

// Halted reports whether the environment is halted, and why.
func (e *Engine) Halted() (bool, string) { return e.halted, e.haltWhy }

// Halt stops new orders until Resume (an admin halt, or a drawdown breach).
func (e *Engine) Halt(why string) {
	if !e.halted {
		e.halted, e.haltWhy = true, why
	}
}

// Resume lifts a halt. The peak is reset to the current equity, so the same
// drawdown does not halt the environment again at the next mark.
func (e *Engine) Resume() {
	e.halted, e.haltWhy = false, ""
	if e.equityOK {
		e.peak = e.equity
	}
}
