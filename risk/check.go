package risk

import (
	"fmt"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// Code classifies a pre-trade decision.
type Code uint8

const (
	Accepted        Code = iota
	RejectInvalid        // malformed order: unknown instrument, bad side, qty <= 0
	RejectHalted         // the environment is halted (drawdown breach or admin)
	RejectVenue          // the feed for the order's venue is disconnected or stale
	RejectNoMark         // no mark price yet: the book has not been joined
	RejectStaleMark      // the mark is older than MaxMarkAge
	RejectNoRate         // no (fresh) USD rate for the quote currency
	RejectPosition       // the position would exceed max_position_usd
	RejectOrderRate      // max_order_rate exceeded
	RejectOverflow       // a value too large to evaluate exactly
)

var codeNames = [...]string{"accepted", "invalid", "halted", "venue_unhealthy", "no_mark", "stale_mark",
	"no_rate", "max_position", "max_order_rate", "overflow"}

// String returns the code's stable machine name, used in events and APIs.
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "unknown"
}

// Rejection is the result of a pre-trade check: the zero value accepts. It
// carries the raw figures and builds its human reason only when Error is
// called, so checking never allocates.
type Rejection struct {
	Code  Code
	Where string // the instrument (venue:symbol) or venue concerned
	Text  string // the halt or feed reason, or what is invalid
	Value Amount // RejectPosition: the USD value the position would reach
	Limit Amount // RejectPosition: max_position_usd; RejectOrderRate: the rate
	Age   time.Duration
}

// OK reports whether the order was accepted.
func (r Rejection) OK() bool { return r.Code == Accepted }

// Error is the human reason, e.g. "position 1,180 USD would exceed
// max_position_usd 1,000 on binance:btcusdt".
func (r Rejection) Error() string {
	switch r.Code {
	case Accepted:
		return "accepted"
	case RejectInvalid:
		return "invalid order: " + r.Text
	case RejectHalted:
		return "environment is halted (" + r.Text + "); an admin must resume it"
	case RejectVenue:
		return fmt.Sprintf("market data for %s is unhealthy (%s): orders are refused until the feed recovers", r.Where, r.Text)
	case RejectNoMark:
		return "no mark price yet for " + r.Where + ": its book has not been joined"
	case RejectStaleMark:
		return fmt.Sprintf("mark price for %s is stale (%s old)", r.Where, r.Age.Round(time.Millisecond))
	case RejectNoRate:
		return fmt.Sprintf("no current USD rate for %s, the quote currency of %s", r.Text, r.Where)
	case RejectPosition:
		return fmt.Sprintf("position %s USD would exceed max_position_usd %s on %s",
			r.Value.AppendText(nil, true), r.Limit.AppendText(nil, true), r.Where)
	case RejectOrderRate:
		return fmt.Sprintf("order rate above max_order_rate %s per second", r.Limit.AppendText(nil, true))
	case RejectOverflow:
		return "the position value of " + r.Where + " is too large to evaluate exactly"
	}
	return "rejected"
}

// Check evaluates an order without changing any state: it neither reserves
// exposure nor spends an order-rate token. Use Accept to place an order.
//
// The position rule values the worst case: the current position plus every
// accepted, unfilled order on the same side plus this one, all fully filled,
// at the current mark, in USD. An order that leaves that worst case no larger
// in absolute terms than the position now (a reducing order) is allowed even
// over the limit or with a stale mark. The rate limit and a halt apply to
// every order.
func (e *Engine) Check(now int64, o Order) Rejection {
	if o.Instrument < 0 || int(o.Instrument) >= len(e.inst) {
		return Rejection{Code: RejectInvalid, Text: "unknown instrument"}
	}
	x := &e.inst[o.Instrument]
	switch {
	case o.Side != Buy && o.Side != Sell:
		return Rejection{Code: RejectInvalid, Where: x.name, Text: "side must be buy or sell"}
	case o.Qty.Mant <= 0:
		return Rejection{Code: RejectInvalid, Where: x.name, Text: "quantity must be greater than 0"}
	case e.halted:
		return Rejection{Code: RejectHalted, Where: x.name, Text: e.haltWhy}
	}
	if v := &e.venues[x.venue]; !v.healthy {
		return Rejection{Code: RejectVenue, Where: v.name, Text: v.why}
	}
	after, ok := e.worstCase(x, o.Side, Dec(o.Qty))
	if !ok {
		return Rejection{Code: RejectOverflow, Where: x.name}
	}
	if after.Abs().Cmp(x.pos.Abs()) > 0 { // adds exposure: value it
		if !x.marked {
			return Rejection{Code: RejectNoMark, Where: x.name}
		}
		if age := now - x.markAt; age > e.maxAge {
			return Rejection{Code: RejectStaleMark, Where: x.name, Age: time.Duration(age)}
		}
		r := &e.rates[x.quote]
		if r.value.Mant == 0 || (r.fromFeed && now-r.at > e.maxAge) {
			return Rejection{Code: RejectNoRate, Where: x.name, Text: r.name}
		}
		v, ok := after.Abs().MulDec(x.mark)
		if ok {
			v, ok = v.MulDec(r.value)
		}
		if !ok {
			return Rejection{Code: RejectOverflow, Where: x.name}
		}
		if v.Cmp(e.limitUSD) > 0 {
			return Rejection{Code: RejectPosition, Where: x.name, Value: v, Limit: e.limitUSD}
		}
	}
	if !e.bucket.peek(now) {
		return Rejection{Code: RejectOrderRate, Where: x.name, Limit: Dec(e.lim.MaxOrderRate)}
	}
	return Rejection{}
}

func (e *Engine) worstCase(x *instrument, s Side, q Amount) (Amount, bool) {
	if s == Buy {
		a, ok := x.pos.Add(x.openBuy)
		if !ok {
			return Amount{}, false
		}
		return a.Add(q)
	}
	a, ok := x.pos.Sub(x.openSell)
	if !ok {
		return Amount{}, false
	}
	return a.Sub(q)
}

// Accept checks an order and, when it passes, spends an order-rate token and
// reserves its quantity until Fill or Release accounts for it.
func (e *Engine) Accept(now int64, o Order) Rejection {
	r := e.Check(now, o)
	if !r.OK() {
		return r
	}
	x := &e.inst[o.Instrument]
	q := Dec(o.Qty)
	var ok bool
	if o.Side == Buy {
		x.openBuy, ok = x.openBuy.Add(q)
	} else {
		x.openSell, ok = x.openSell.Add(q)
	}
	if !ok {
		return Rejection{Code: RejectOverflow, Where: x.name}
	}
	e.bucket.take(now)
	return r
}

// Release returns the unfilled quantity of an accepted order (cancelled,
// expired, or rejected by the venue) to the limit.
func (e *Engine) Release(id InstrumentID, s Side, qty proto.Decimal) {
	x := &e.inst[id]
	if s == Buy {
		x.openBuy = unreserve(x.openBuy, Dec(qty))
	} else {
		x.openSell = unreserve(x.openSell, Dec(qty))
	}
}

func unreserve(open, q Amount) Amount {
	r, ok := open.Sub(q)
	if !ok || r.Sign() < 0 {
		return Amount{}
	}
	return r
}
