package risk

import (
	"fmt"
	"math/big"

	"github.com/paddockhq/paddock/proto"
)

// ErrOverflow is returned when an accounting value no longer fits exactly.
var ErrOverflow = fmt.Errorf("risk: value too large to account exactly")

// Fill books an execution: the position moves (FIFO lots, so realized PnL is
// exact), the fee is charged in the quote currency (negative for a rebate),
// the order's reservation shrinks by qty, and equity and drawdown are
// re-evaluated. halted reports that this fill breached max_drawdown_pct; the
// caller then cancels open orders and publishes the halt.
func (e *Engine) Fill(id InstrumentID, s Side, qty, price proto.Decimal, fee Amount) (halted bool, err error) {
	if id < 0 || int(id) >= len(e.inst) || (s != Buy && s != Sell) || qty.Mant <= 0 || price.Mant <= 0 {
		return false, fmt.Errorf("risk: invalid fill %v %s @ %s", s, qty, price)
	}
	x := &e.inst[id]
	q := Dec(qty)
	if s == Buy {
		x.openBuy = unreserve(x.openBuy, q)
	} else {
		x.openSell = unreserve(x.openSell, q)
	}
	if err := x.book(s, q, price); err != nil {
		return false, fmt.Errorf("fill on %s: %w", x.name, err)
	}
	var ok bool
	if x.fees, ok = x.fees.Add(fee); !ok {
		return false, fmt.Errorf("fill on %s: fees: %w", x.name, ErrOverflow)
	}
	n, _ := q.MulDec(price)
	x.notional, _ = x.notional.Add(n)
	if s == Buy {
		x.buyQty, _ = x.buyQty.Add(q)
	} else {
		x.sellQty, _ = x.sellQty.Add(q)
	}
	x.fills++
	x.lastPrice = price
	return e.evaluate(), nil
}

// book moves the position by a fill, consuming lots first in, first out.
func (x *instrument) book(s Side, q Amount, price proto.Decimal) error {
	signed := q
	if s == Sell {
		signed = q.Neg()
	}
	newPos, ok := x.pos.Add(signed)
	if !ok {
		return ErrOverflow
	}
	remaining := q
	if x.pos.Sign() != 0 && x.pos.Sign() != signed.Sign() {
		long := x.pos.Sign() > 0
		for remaining.Sign() > 0 && len(x.lots) > 0 {
			l := &x.lots[0]
			take := l.qty
			if remaining.Cmp(take) < 0 {
				take = remaining
			}
			exit, ok1 := take.MulDec(price)
			entry, ok2 := take.MulDec(l.price)
			pnl, ok3 := exit.Sub(entry) // long: sold above entry is profit
			if !long {
				pnl = pnl.Neg()
			}
			var ok4, ok5 bool
			x.realized, ok4 = x.realized.Add(pnl)
			if long {
				x.cost, ok5 = x.cost.Sub(entry)
			} else {
				x.cost, ok5 = x.cost.Add(entry)
			}
			if !(ok1 && ok2 && ok3 && ok4 && ok5) {
				return ErrOverflow
			}
			l.qty, _ = l.qty.Sub(take)
			remaining, _ = remaining.Sub(take)
			if l.qty.IsZero() {
				x.lots = x.lots[1:]
			}
		}
	}
	if remaining.Sign() > 0 { // opens or extends (or flips into) a position
		c, ok := remaining.MulDec(price)
		if !ok {
			return ErrOverflow
		}
		if s == Sell {
			c = c.Neg()
		}
		if x.cost, ok = x.cost.Add(c); !ok {
			return ErrOverflow
		}
		x.lots = append(x.lots, lot{qty: remaining, price: price})
	}
	x.pos = newPos
	if x.pos.IsZero() {
		x.lots, x.cost = x.lots[:0], Amount{}
	}
	return nil
}

// Mark records an instrument's mark price (the mid of its exact book) and
// re-evaluates equity and drawdown; halted reports a new drawdown breach.
func (e *Engine) Mark(now int64, id InstrumentID, price proto.Decimal) (halted bool) {
	if id < 0 || int(id) >= len(e.inst) || price.Mant <= 0 {
		return false
	}
	x := &e.inst[id]
	x.mark, x.markAt, x.marked = price, now, true
	if x.pos.IsZero() && x.realized.IsZero() && x.fees.IsZero() {
		return false // this instrument does not move equity
	}
	return e.evaluate()
}

// value is an instrument's contribution to equity in its quote currency:
// realized PnL - fees + unrealized PnL (position x mark - cost).
func (x *instrument) value() (Amount, bool) {
	v, ok := x.realized.Sub(x.fees)
	if !ok || x.pos.IsZero() {
		return v, ok
	}
	mark := x.mark
	if !x.marked {
		mark = x.lastPrice
	}
	pv, ok1 := x.pos.MulDec(mark)
	u, ok2 := pv.Sub(x.cost)
	v, ok3 := v.Add(u)
	return v, ok && ok1 && ok2 && ok3
}

// evaluate recomputes equity in USD, raises the peak, and halts on a
// drawdown of max_drawdown_pct or more from the peak. Equity is not
// evaluated while an instrument that carries PnL has no USD rate.
func (e *Engine) evaluate() (newlyHalted bool) {
	eq := e.start
	for i := range e.inst {
		x := &e.inst[i]
		if x.pos.IsZero() && x.realized.IsZero() && x.fees.IsZero() {
			continue
		}
		r := &e.rates[x.quote]
		if r.value.Mant == 0 {
			e.equityOK = false
			return false
		}
		v, ok := x.value()
		if ok {
			v, ok = v.MulDec(r.value)
		}
		if ok {
			eq, ok = eq.Add(v)
		}
		if !ok {
			e.equityOK = false
			return false
		}
	}
	e.equity, e.equityOK = eq, true
	if eq.Cmp(e.peak) > 0 {
		e.peak = eq
	}
	if e.halted || e.peak.Sign() <= 0 {
		return false
	}
	// Breach when (peak - equity) * 100 >= peak * pct.
	drop, ok1 := e.peak.Sub(eq)
	lhs, ok2 := drop.MulDec(proto.Decimal{Mant: 100})
	rhs, ok3 := e.peak.MulDec(e.lim.MaxDrawdownPct)
	if !(ok1 && ok2 && ok3) || lhs.Cmp(rhs) < 0 {
		return false
	}
	e.Halt(fmt.Sprintf("drawdown %.2f%% from peak equity %s USD to %s USD reached max_drawdown_pct %s",
		100*drop.float()/e.peak.float(), e.peak.AppendText(nil, true), eq.AppendText(nil, true), e.lim.MaxDrawdownPct))
	return true
}

// Position is one instrument's account, for APIs and events. Amounts are
// exact; AvgEntry is rounded for display only.
type Position struct {
	Venue, Symbol, Quote string
	Qty                  Amount // signed base quantity
	OpenBuy, OpenSell    Amount // reserved by open orders
	Mark                 proto.Decimal
	MarkAt               int64 // unix ns; 0 with a zero Mark = none
	AvgEntry             string
	Realized             Amount // quote currency
	Unrealized           Amount // quote currency
	Fees                 Amount // quote currency
	Fills                uint64
	BoughtQty, SoldQty   Amount
	Notional             Amount
}

// Position returns the account of one instrument.
func (e *Engine) Position(id InstrumentID) Position {
	x := &e.inst[id]
	p := Position{Venue: x.Venue, Symbol: x.Symbol, Quote: x.Quote, Qty: x.pos, OpenBuy: x.openBuy,
		OpenSell: x.openSell, Mark: x.mark, MarkAt: x.markAt, Realized: x.realized, Fees: x.fees,
		Fills: x.fills, BoughtQty: x.buyQty, SoldQty: x.sellQty, Notional: x.notional}
	if !x.pos.IsZero() {
		if v, ok := x.value(); ok {
			p.Unrealized, _ = v.Sub(x.realized)
			p.Unrealized, _ = p.Unrealized.Add(x.fees)
		}
		p.AvgEntry = new(big.Rat).Quo(x.cost.Rat(), x.pos.Rat()).FloatString(8)
	}
	return p
}

// Account is the environment-wide figures in USD.
type Account struct {
	StartingEquity, Equity, Peak Amount
	EquityKnown                  bool // false while a quote currency lacks a rate
	DrawdownPct                  float64
	Halted                       bool
	HaltReason                   string
}

// Account returns the environment-wide figures as of the last evaluation.
func (e *Engine) Account() Account {
	a := Account{StartingEquity: e.start, Equity: e.equity, Peak: e.peak, EquityKnown: e.equityOK,
		Halted: e.halted, HaltReason: e.haltWhy}
	if d, ok := e.peak.Sub(e.equity); ok && e.peak.Sign() > 0 {
		a.DrawdownPct = 100 * d.float() / e.peak.float()
	}
	return a
}

// Limits returns the engine's limits.
func (e *Engine) Limits() Limits { return e.lim }

// Unmark forgets an instrument's mark: its book is no longer trustworthy
// (the feed reset it), so orders adding exposure are refused until a new
// mark arrives.
func (e *Engine) Unmark(id InstrumentID) {
	if id >= 0 && int(id) < len(e.inst) {
		e.inst[id].marked = false
	}
}
