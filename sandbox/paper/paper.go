// Package paper is the default sandbox venue: orders fill against the live
// book the feed publishes, without reaching any exchange. It is pure and
// deterministic: given the same orders and the same market-data sequence it
// produces the same fills, which the node's tests rely on.
//
// Matching rules:
//   - A marketable order (a market order, or a limit order crossing the
//     book) fills at once against the opposite side, walking the levels from
//     the best (partial fills, each at its level's price), as taker.
//     Liquidity it took stays taken until the feed updates that level, so two
//     orders cannot both take the same displayed quantity.
//   - A market order's unfilled remainder is cancelled (no more liquidity);
//     so is an IOC limit order's. A GTC limit order's remainder rests.
//   - A resting order fills, as maker at its own price, when a trade prints
//     through it (strictly below a resting buy, strictly above a resting
//     sell), up to the trade's quantity, in price then time priority.
package paper

import (
	"fmt"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/risk"
)

// Fees are fee rates as fractions of notional: 0.001 is 10 basis points.
// A negative maker rate is a rebate.
type Fees struct {
	Maker, Taker proto.Decimal
}

// Type is an order type.
type Type uint8

const (
	Limit  Type = 1
	Market Type = 2
)

// TIF is a time in force.
type TIF uint8

const (
	GTC TIF = 0
	IOC TIF = 1
)

// Order is one order in the venue. The venue owns it after Submit; read it
// under the owner's lock.
type Order struct {
	ID       uint64
	Inst     int
	Side     risk.Side
	Type     Type
	TIF      TIF
	Price    proto.Decimal // limit price; zero for market orders
	Qty      proto.Decimal
	Filled   risk.Amount
	Notional risk.Amount // sum of fill qty x price, for the average price
	Fees     risk.Amount
	Done     bool   // filled or cancelled
	Why      string // why it was cancelled, if it was
	seq      uint64 // arrival, for time priority
}

// Remaining is the unfilled quantity.
func (o *Order) Remaining() risk.Amount {
	r, _ := risk.Dec(o.Qty).Sub(o.Filled)
	return r
}

// Fill is one execution.
type Fill struct {
	Order *Order
	Qty   proto.Decimal
	Price proto.Decimal
	Fee   risk.Amount // quote currency
	Maker bool
}

// Book is what the venue reads of an order book; book.Book has it.
type Book interface {
	AppendBids(dst []proto.Level, depth int) []proto.Level
	AppendAsks(dst []proto.Level, depth int) []proto.Level
}

type instrument struct {
	fees     Fees
	resting  []*Order                         // in arrival order
	consumed [2]map[proto.Decimal]risk.Amount // [0] bids, [1] asks; by normalized price
}

// Venue matches orders for a set of instruments. Not safe for concurrent
// use. Slices of fills it returns are valid until its next call.
type Venue struct {
	inst   []instrument
	seq    uint64
	levels []proto.Level
	fills  []Fill
}

// New creates a venue with one fee schedule per instrument index.
func New(fees []Fees) *Venue {
	v := &Venue{inst: make([]instrument, len(fees))}
	for i, f := range fees {
		v.inst[i].fees = f
		v.inst[i].consumed = [2]map[proto.Decimal]risk.Amount{{}, {}}
	}
	return v
}

// key normalizes a price so that 100.10 and 100.1 are one level.
func key(d proto.Decimal) proto.Decimal {
	for d.Mant != 0 && d.Mant%10 == 0 && d.Exp < proto.MaxExp {
		d.Mant /= 10
		d.Exp++
	}
	if d.Mant == 0 {
		return proto.Decimal{}
	}
	return d
}

func crosses(s risk.Side, limit, level proto.Decimal) bool {
	if s == risk.Buy {
		return level.Cmp(limit) <= 0
	}
	return level.Cmp(limit) >= 0
}

// Submit matches a new order against the book b and rests or cancels what
// is left. It returns the fills, valid until the next call.
func (v *Venue) Submit(o *Order, b Book) ([]Fill, error) {
	if o.Inst < 0 || o.Inst >= len(v.inst) {
		return nil, fmt.Errorf("paper: unknown instrument %d", o.Inst)
	}
	if o.Qty.Mant <= 0 || (o.Type == Limit && o.Price.Mant <= 0) {
		return nil, fmt.Errorf("paper: order needs a positive quantity and limit price")
	}
	in := &v.inst[o.Inst]
	v.seq++
	o.seq = v.seq
	v.fills = v.fills[:0]
	side := 1 // a buy takes asks
	v.levels = v.levels[:0]
	if o.Side == risk.Buy {
		v.levels = b.AppendAsks(v.levels, 0)
	} else {
		side = 0
		v.levels = b.AppendBids(v.levels, 0)
	}
	for _, l := range v.levels {
		rem := o.Remaining()
		if rem.Sign() <= 0 {
			break
		}
		if o.Type == Limit && !crosses(o.Side, o.Price, l.Price) {
			break
		}
		k := key(l.Price)
		avail, _ := risk.Dec(l.Qty).Sub(in.consumed[side][k])
		if avail.Sign() <= 0 {
			continue
		}
		take := rem
		if avail.Cmp(rem) < 0 {
			take = avail
		}
		q, ok := take.Decimal()
		if !ok {
			return v.fills, fmt.Errorf("paper: quantity %s does not fit a decimal", take)
		}
		in.consumed[side][k], _ = in.consumed[side][k].Add(take)
		v.fill(in, o, q, l.Price, false)
	}
	if o.Remaining().Sign() > 0 {
		switch {
		case o.Type == Market:
			o.Done, o.Why = true, "no more liquidity in the book"
		case o.TIF == IOC:
			o.Done, o.Why = true, "immediate-or-cancel remainder"
		default:
			in.resting = append(in.resting, o)
		}
	} else {
		o.Done = true
	}
	return v.fills, nil
}

func (v *Venue) fill(in *instrument, o *Order, q, price proto.Decimal, maker bool) {
	rate := in.fees.Taker
	if maker {
		rate = in.fees.Maker
	}
	n, _ := risk.Dec(q).MulDec(price)
	fee, _ := n.MulDec(rate)
	o.Filled, _ = o.Filled.Add(risk.Dec(q))
	o.Notional, _ = o.Notional.Add(n)
	o.Fees, _ = o.Fees.Add(fee)
	v.fills = append(v.fills, Fill{Order: o, Qty: q, Price: price, Fee: fee, Maker: maker})
}

// Trade offers a trade printed on the venue to the resting orders of an
// instrument and returns their fills, valid until the next call.
func (v *Venue) Trade(inst int, price, qty proto.Decimal) []Fill {
	v.fills = v.fills[:0]
	if inst < 0 || inst >= len(v.inst) || qty.Mant <= 0 {
		return nil
	}
	in := &v.inst[inst]
	for _, s := range []risk.Side{risk.Buy, risk.Sell} {
		avail := risk.Dec(qty)
		for avail.Sign() > 0 {
			o := in.best(s, price)
			if o == nil {
				break
			}
			take := o.Remaining()
			if avail.Cmp(take) < 0 {
				take = avail
			}
			q, ok := take.Decimal()
			if !ok {
				break
			}
			v.fill(in, o, q, o.Price, true)
			avail, _ = avail.Sub(take)
			if o.Remaining().Sign() <= 0 {
				o.Done = true
				in.remove(o)
			}
		}
	}
	return v.fills
}

// best is the resting order of side s that a trade at price prints through,
// first by price then by arrival; nil if none.
func (in *instrument) best(s risk.Side, price proto.Decimal) *Order {
	var best *Order
	for _, o := range in.resting {
		if o.Side != s {
			continue
		}
		through := (s == risk.Buy && price.Cmp(o.Price) < 0) || (s == risk.Sell && price.Cmp(o.Price) > 0)
		if !through {
			continue
		}
		if best == nil {
			best = o
			continue
		}
		c := o.Price.Cmp(best.Price)
		if (s == risk.Buy && c > 0) || (s == risk.Sell && c < 0) {
			best = o
		}
	}
	return best
}

func (in *instrument) remove(o *Order) {
	for i, x := range in.resting {
		if x == o {
			in.resting = append(in.resting[:i], in.resting[i+1:]...)
			return
		}
	}
}

// BookChanged tells the venue that the feed updated these levels (or, with
// snapshot, replaced the whole book): liquidity taken from them is visible
// again as the feed now shows it.
func (v *Venue) BookChanged(inst int, bids, asks []proto.Level, snapshot bool) {
	if inst < 0 || inst >= len(v.inst) {
		return
	}
	in := &v.inst[inst]
	if snapshot {
		clear(in.consumed[0])
		clear(in.consumed[1])
		return
	}
	for _, l := range bids {
		delete(in.consumed[0], key(l.Price))
	}
	for _, l := range asks {
		delete(in.consumed[1], key(l.Price))
	}
}

// Cancel cancels a resting order; false if it is not resting.
func (v *Venue) Cancel(o *Order, why string) bool {
	if o.Inst < 0 || o.Inst >= len(v.inst) || o.Done {
		return false
	}
	in := &v.inst[o.Inst]
	for _, x := range in.resting {
		if x == o {
			in.remove(o)
			o.Done, o.Why = true, why
			return true
		}
	}
	return false
}

// Resting returns the resting orders of every instrument, oldest first.
func (v *Venue) Resting() []*Order {
	var out []*Order
	for i := range v.inst {
		out = append(out, v.inst[i].resting...)
	}
	return out
}
