package sandbox

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/internal/jsonbody"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/risk"
	"github.com/paddockhq/paddock/sandbox/client"
	"github.com/paddockhq/paddock/sandbox/paper"
)

// Codes for refusals that are not the risk gate's.
const (
	CodeInvalid     = "invalid"
	CodeBookNotLive = "book_not_live"
	CodeNotFound    = "not_found"
	// CodeExpired: the environment's deadline passed (the dead man's switch).
	CodeExpired = "expired"
)

// Place validates an order, passes it through the risk gate and sends it to
// the paper venue. A refusal is returned as the order (status rejected) with
// its code and reason, and is also published on env.<name>.risk.
func (t *Trader) Place(req client.OrderRequest) client.Reply {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	o := &order{clientID: req.ClientID, created: now, updated: now}
	t.nextID++
	o.ID = t.nextID
	reject := func(code, reason string) client.Reply {
		o.status, o.code, o.reason = client.StatusRejected, code, reason
		t.metrics.orders.WithLabelValues(code).Inc()
		t.publish("risk", client.RiskEvent{Type: "rejected", Code: code, Reason: reason, Venue: req.Venue, Symbol: req.Symbol,
			OrderID: o.ID, ClientID: o.clientID, Time: now})
		v := t.view(o)
		t.publish("orders", v)
		return client.Reply{Order: &v, Code: code, Error: reason}
	}
	if t.expired != "" {
		return reject(CodeExpired, t.expired)
	}
	o.typ, o.tif = strings.ToLower(req.Type), strings.ToLower(req.TimeInForce)
	id, ok := t.byName[client.Instrument{Venue: req.Venue, Symbol: strings.ToLower(req.Symbol)}]
	o.Inst = id
	if !ok {
		o.Inst = -1
		return reject(CodeInvalid, fmt.Sprintf("instrument %s:%s is not declared in this environment", req.Venue, req.Symbol))
	}
	switch strings.ToLower(req.Side) {
	case "buy":
		o.Side = risk.Buy
	case "sell":
		o.Side = risk.Sell
	default:
		return reject(CodeInvalid, fmt.Sprintf("side %q: want buy or sell", req.Side))
	}
	var err error
	if o.Qty, err = proto.ParseUDecimal(req.Qty); err != nil || o.Qty.Mant == 0 {
		return reject(CodeInvalid, fmt.Sprintf("qty %q: want a positive decimal such as 0.001", req.Qty))
	}
	switch o.typ {
	case "limit":
		o.Type = paper.Limit
		if o.Price, err = proto.ParseUDecimal(req.Price); err != nil || o.Price.Mant == 0 {
			return reject(CodeInvalid, fmt.Sprintf("price %q: a limit order needs a positive decimal price", req.Price))
		}
	case "market":
		o.Type = paper.Market
		if req.Price != "" {
			return reject(CodeInvalid, "a market order takes no price")
		}
	default:
		return reject(CodeInvalid, fmt.Sprintf("type %q: want limit or market", req.Type))
	}
	switch o.tif {
	case "", "gtc":
		o.tif, o.TIF = "gtc", paper.GTC
		if o.Type == paper.Market {
			o.tif, o.TIF = "ioc", paper.IOC
		}
	case "ioc":
		o.TIF = paper.IOC
	default:
		return reject(CodeInvalid, fmt.Sprintf("time_in_force %q: want gtc or ioc", req.TimeInForce))
	}
	b := t.books[id]
	// The gate's reasons (halt, feed down, limits) come before "book not
	// joined", but a refusal must not spend an order-rate token: so Check
	// first, then Accept once the book is usable. Check is ~40 ns.
	if r := t.risk.Check(now.UnixNano(), risk.Order{Instrument: risk.InstrumentID(id), Side: o.Side, Qty: o.Qty}); !r.OK() {
		return reject(r.Code.String(), r.Error())
	}
	if b == nil || !b.Live() {
		return reject(CodeBookNotLive, fmt.Sprintf("the book of %s is not joined yet (or is resynchronizing); try again shortly", t.inst[id]))
	}
	if r := t.risk.Accept(now.UnixNano(), risk.Order{Instrument: risk.InstrumentID(id), Side: o.Side, Qty: o.Qty}); !r.OK() {
		return reject(r.Code.String(), r.Error())
	}
	o.reservedRem = true
	t.orders[o.ID] = o
	t.metrics.orders.WithLabelValues("accepted").Inc()
	fills, err := t.venue.Submit(&o.Order, &b.Book)
	if err != nil { // validated above; a venue error is a bug, but never lose the reservation
		t.release(o)
		return reject(CodeInvalid, err.Error())
	}
	t.settle(fills, b.Seq())
	if o.Done {
		t.release(o)
		if o.Why != "" {
			o.code, o.reason = "cancelled", o.Why
		}
	}
	if len(fills) == 0 {
		t.orderEvent(o)
	} else if o.Done && o.Why != "" {
		t.orderEvent(o) // the cancellation of the remainder
	}
	v := t.view(o)
	return client.Reply{Order: &v}
}

// Cancel cancels an open order.
func (t *Trader) Cancel(id uint64) client.Reply {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.orders[id]
	if !ok {
		return client.Reply{Code: CodeNotFound, Error: fmt.Sprintf("no order %d", id)}
	}
	if !t.cancel(o, "cancelled", "cancelled on request") {
		v := t.view(o)
		return client.Reply{Order: &v, Code: CodeInvalid, Error: fmt.Sprintf("order %d is not open (%s)", id, v.Status)}
	}
	v := t.view(o)
	return client.Reply{Order: &v}
}

// OpenOrders lists resting orders, oldest first.
func (t *Trader) OpenOrders() []client.Order {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []client.Order{}
	for _, po := range t.venue.Resting() {
		if o := t.orders[po.ID]; o != nil {
			out = append(out, t.view(o))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Fills returns up to n of the most recent fills, oldest first.
func (t *Trader) Fills(n int) []client.Fill {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n <= 0 || n > len(t.fills) {
		n = len(t.fills)
	}
	return append([]client.Fill{}, t.fills[len(t.fills)-n:]...)
}

func (t *Trader) view(o *order) client.Order {
	v := client.Order{ID: o.ID, ClientID: o.clientID, Side: o.Side.String(), Type: o.typ, TimeInForce: o.tif,
		Qty: o.Qty.String(), Filled: o.Filled.String(), Fees: o.Fees.String(), Code: o.code, Reason: o.reason,
		CreatedAt: o.created, UpdatedAt: o.updated}
	if o.Inst >= 0 && o.Inst < len(t.inst) {
		v.Venue, v.Symbol = t.inst[o.Inst].Venue, t.inst[o.Inst].Symbol
	}
	if o.Type == paper.Limit {
		v.Price = o.Price.String()
	}
	if !o.Filled.IsZero() {
		v.AvgPrice = avg(o.Notional, o.Filled)
	}
	switch {
	case o.status == client.StatusRejected:
		v.Status = o.status
	case !o.Done && o.Filled.IsZero():
		v.Status = client.StatusOpen
	case !o.Done:
		v.Status = client.StatusPartiallyFilled
	case o.Remaining().Sign() == 0:
		v.Status = client.StatusFilled
	default:
		v.Status = client.StatusCancelled
	}
	return v
}

// avg is notional / qty rounded to 8 decimals for display; the exact
// notional stays in the account.
func avg(notional, qty risk.Amount) string {
	n, q := notional.Rat(), qty.Rat()
	if q.Sign() == 0 {
		return ""
	}
	return strings.TrimRight(strings.TrimRight(n.Quo(n, q).FloatString(8), "0"), ".")
}

// Serve answers the order API on env.<name>.orders.{new,cancel,list}.
func (t *Trader) Serve(nc *nats.Conn) (*nats.Subscription, error) {
	return nc.Subscribe(client.OrdersSubject(t.env, "*"), func(m *nats.Msg) {
		var r client.Reply
		switch op := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]; op {
		case "new":
			var req client.OrderRequest
			if err := jsonbody.Bytes(m.Data, &req, false); err != nil {
				r = client.Reply{Code: CodeInvalid, Error: "order request: " + err.Error()}
			} else {
				r = t.Place(req)
			}
		case "cancel":
			var req client.CancelRequest
			if err := jsonbody.Bytes(m.Data, &req, false); err != nil {
				r = client.Reply{Code: CodeInvalid, Error: "cancel request: " + err.Error()}
			} else {
				r = t.Cancel(req.ID)
			}
		case "list":
			r = client.Reply{Orders: t.OpenOrders()}
		default:
			r = client.Reply{Code: CodeInvalid, Error: "unknown operation " + op + " (new, cancel, list)"}
		}
		raw, _ := json.Marshal(r)
		if m.Reply != "" {
			_ = m.Respond(raw)
		}
	})
}
