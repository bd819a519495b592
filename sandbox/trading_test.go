package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/risk"
	"github.com/paddockhq/paddock/sandbox/client"
)

// TestFillsAtPricesTheBookJustifies: a market order walks the simulator's
// true book level by level, and the fee is the configured taker rate.
func TestFillsAtPricesTheBookJustifies(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Risk.MaxPositionUSD, c.Risk.StartingEquityUSD = "100000000", "100000000"
	})
	_, asks, _ := r.sim.Book(false, "BTCUSDT")
	// Everything at the best ask plus half of the second level.
	half := risk.Dec(asks[1].Qty)
	halfQty, _ := half.MulDec(proto.Decimal{Mant: 5, Exp: -1})
	want, _ := risk.Dec(asks[0].Qty).Add(halfQty)
	qty, _ := want.Decimal()
	var fills []client.Fill
	done := make(chan struct{})
	sub, err := r.cl.OnFill(func(f client.Fill) {
		fills = append(fills, f)
		if len(fills) == 2 {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	o, rej := r.place(client.OrderRequest{ClientID: "walk", Side: "buy", Type: "market", Qty: qty.String()})
	if rej != nil {
		t.Fatal(rej)
	}
	if o.Status != client.StatusFilled || o.Filled != want.String() {
		t.Fatalf("order %+v", o)
	}
	<-done
	for i, f := range fills {
		wantQty := risk.Dec(asks[0].Qty)
		if i == 1 {
			wantQty = halfQty
		}
		n, _ := wantQty.MulDec(asks[i].Price)
		fee, _ := n.MulDec(proto.Decimal{Mant: 1, Exp: -3}) // binance spot taker 0.1%
		if d, _ := proto.ParseDecimal(f.Price); d.Cmp(asks[i].Price) != 0 || risk.Dec(mustDec(f.Qty)).Cmp(wantQty) != 0 ||
			f.Liquidity != "taker" || f.Fee != fee.String() || f.ClientID != "walk" {
			t.Fatalf("fill %d: %+v; want %s @ %s fee %s", i, f, wantQty, asks[i].Price, fee)
		}
	}
	// The position and the average entry follow.
	code, body := r.http("GET", "/v1/positions", r.apiKey)
	var pos []PositionView
	if code != http.StatusOK || json.Unmarshal(body, &pos) != nil || pos[0].Qty != want.String() || pos[0].Fills != 2 {
		t.Fatalf("positions %d %s", code, body)
	}
}

func mustDec(s string) proto.Decimal {
	d, err := proto.ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// TestPositionLimitRefused: 0.05 BTC at ~27,123 USD is over 1,000 USD.
func TestPositionLimitRefused(t *testing.T) {
	r := newRig(t, nil)
	_, rej := r.place(client.OrderRequest{Side: "buy", Type: "market", Qty: "0.05"})
	if rej == nil || rej.Code != "max_position" || !strings.Contains(rej.Reason, "would exceed max_position_usd 1,000 on binance:btcusdt") {
		t.Fatalf("rejection %+v", rej)
	}
	eventually(t, "the rejection on env.t1.risk", func() bool {
		e, ok := r.riskEvent("rejected")
		return ok && e.Code == "max_position"
	})
	// Within the limit it passes.
	if _, rej := r.place(client.OrderRequest{Side: "buy", Type: "market", Qty: "0.03"}); rej != nil {
		t.Fatal(rej)
	}
	// The same order again would take the position to ~1,627 USD.
	if _, rej := r.place(client.OrderRequest{Side: "buy", Type: "market", Qty: "0.03"}); rej == nil || rej.Code != "max_position" {
		t.Fatalf("second order: %+v", rej)
	}
	// Reducing is always allowed.
	if _, rej := r.place(client.OrderRequest{Side: "sell", Type: "market", Qty: "0.03"}); rej != nil {
		t.Fatal(rej)
	}
}

// TestDrawdownHaltsAndCancels: with 100 USD of equity and a 1% limit, the
// fee and spread of one 0.05 BTC round trip breach the drawdown: the
// environment halts, its resting order is cancelled, new orders are refused
// until an admin resumes.
func TestDrawdownHaltsAndCancels(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Risk.MaxPositionUSD, c.Risk.StartingEquityUSD, c.Risk.MaxDrawdownPct = "1000000", "100", "1"
	})
	bids, _, _ := r.sim.Book(false, "BTCUSDT")
	far := proto.Decimal{Mant: bids[len(bids)-1].Price.Mant - 100_000_000, Exp: bids[0].Price.Exp}
	resting, rej := r.place(client.OrderRequest{Side: "buy", Type: "limit", Price: far.String(), Qty: "0.001"})
	if rej != nil || resting.Status != client.StatusOpen {
		t.Fatalf("resting order %+v %v", resting, rej)
	}
	if _, rej := r.place(client.OrderRequest{Side: "buy", Type: "market", Qty: "0.05"}); rej != nil {
		t.Fatal(rej)
	}
	eventually(t, "the halt event", func() bool {
		e, ok := r.riskEvent("halted")
		return ok && strings.Contains(e.Reason, "reached max_drawdown_pct 1")
	})
	eventually(t, "the resting order's cancellation", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, o := range r.orders {
			if o.ID == resting.ID && o.Status == client.StatusCancelled && o.Code == "halted" {
				return true
			}
		}
		return false
	})
	if _, rej := r.place(client.OrderRequest{Side: "sell", Type: "market", Qty: "0.05"}); rej == nil || rej.Code != "halted" {
		t.Fatalf("order while halted: %+v", rej)
	}
	if open, _ := r.cl.OpenOrders(t.Context()); len(open) != 0 {
		t.Fatalf("open orders after halt: %+v", open)
	}
	if code, _ := r.http("POST", "/v1/resume", r.apiKey); code != http.StatusForbidden {
		t.Fatalf("resume with the environment key: %d", code)
	}
	if code, body := r.http("POST", "/v1/resume", r.adminKey); code != http.StatusOK {
		t.Fatalf("resume with the admin key: %d %s", code, body)
	}
	if _, rej := r.place(client.OrderRequest{Side: "sell", Type: "market", Qty: "0.05"}); rej != nil {
		t.Fatalf("order after resume: %v", rej)
	}
}

// TestOrderRateThrottled: with max_order_rate 5, a burst of 12 gets 5
// through (6 if a token refilled during the burst), the rest refused.
func TestOrderRateThrottled(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Risk.MaxOrderRate = "5" })
	bids, _, _ := r.sim.Book(false, "BTCUSDT")
	accepted, throttled := 0, 0
	for range 12 {
		_, rej := r.place(client.OrderRequest{Side: "buy", Type: "limit", Price: bids[len(bids)-1].Price.String(), Qty: "0.0001"})
		switch {
		case rej == nil:
			accepted++
		case rej.Code == "max_order_rate" && strings.Contains(rej.Reason, "max_order_rate 5 per second"):
			throttled++
		default:
			t.Fatalf("unexpected rejection %v", rej)
		}
	}
	if accepted < 5 || accepted > 6 || accepted+throttled != 12 {
		t.Fatalf("%d accepted, %d throttled", accepted, throttled)
	}
}

// TestFeedOutageBlocksOrders: when the feed stops, its Status stops too;
// the node marks the venue down and refuses orders with the reason.
func TestFeedOutageBlocksOrders(t *testing.T) {
	r := newRig(t, nil)
	if _, rej := r.place(client.OrderRequest{Side: "buy", Type: "market", Qty: "0.001"}); rej != nil {
		t.Fatal(rej)
	}
	r.stopFeed()
	eventually(t, "the venue_unhealthy event", func() bool { _, ok := r.riskEvent("venue_unhealthy"); return ok })
	_, rej := r.place(client.OrderRequest{Side: "buy", Type: "market", Qty: "0.001"})
	if rej == nil || rej.Code != "venue_unhealthy" || !strings.Contains(rej.Reason, "market data for binance is unhealthy") {
		t.Fatalf("order during the outage: %+v", rej)
	}
}

// TestBooksRebuiltAfterReset: a gap in the venue's update ids makes the
// feed publish a Reset and resync; the node drops its book, rejoins, and
// ends equal to the simulator's true book.
func TestBooksRebuiltAfterReset(t *testing.T) {
	r := newRig(t, nil)
	r.sim.SkipNextDepth(false, "BTCUSDT")
	r.sim.Step(5)
	tr := r.node.Trader()
	eventually(t, "a resync", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.books[0].Resyncs > 0
	})
	r.sim.Step(5)
	r.waitSynced()
	if _, rej := r.place(client.OrderRequest{Side: "buy", Type: "market", Qty: "0.001"}); rej != nil {
		t.Fatal(rej)
	}
}

// TestAdminAPIAuth: every route but /healthz needs a key.
func TestAdminAPIAuth(t *testing.T) {
	r := newRig(t, nil)
	for _, c := range []struct {
		method, path, key string
		want              int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/v1/status", "", 401},
		{"GET", "/v1/status", "wrong-key-0123456789", 401},
		{"GET", "/v1/status", r.apiKey, 200},
		{"GET", "/v1/pnl", r.apiKey, 200},
		{"GET", "/v1/risk", r.adminKey, 200},
		{"GET", "/v1/orders", r.apiKey, 200},
		{"GET", "/v1/fills", r.apiKey, 200},
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", r.apiKey, 200},
		{"POST", "/v1/resume", r.apiKey, 403},
		{"POST", "/v1/resume", r.adminKey, 409},
		{"DELETE", "/v1/orders/99", r.apiKey, 404},
		{"DELETE", "/v1/orders/x", r.apiKey, 400},
	} {
		if code, body := r.http(c.method, c.path, c.key); code != c.want {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, code, c.want, body)
		}
	}
	code, body := r.http("POST", "/v1/halt", r.apiKey)
	var rv RiskView
	if code != 200 || json.Unmarshal(body, &rv) != nil || !rv.Halted {
		t.Fatalf("halt: %d %s", code, body)
	}
}

// TestBadOrderRequests are refused with a reason, never dropped.
func TestBadOrderRequests(t *testing.T) {
	r := newRig(t, nil)
	for _, c := range []struct {
		req  client.OrderRequest
		want string
	}{
		{client.OrderRequest{Venue: "binance", Symbol: "ethusdt", Side: "buy", Type: "market", Qty: "1"}, "not declared"},
		{client.OrderRequest{Side: "hold", Type: "market", Qty: "1"}, "side"},
		{client.OrderRequest{Side: "buy", Type: "market", Qty: "-1"}, "qty"},
		{client.OrderRequest{Side: "buy", Type: "market", Qty: "1e-3"}, "qty"},
		{client.OrderRequest{Side: "buy", Type: "limit", Qty: "1"}, "price"},
		{client.OrderRequest{Side: "buy", Type: "market", Qty: "1", Price: "5"}, "market order takes no price"},
		{client.OrderRequest{Side: "buy", Type: "stop", Qty: "1"}, "type"},
		{client.OrderRequest{Side: "buy", Type: "limit", Qty: "1", Price: "1", TimeInForce: "fok"}, "time_in_force"},
	} {
		_, rej := r.place(c.req)
		if rej == nil || rej.Code != CodeInvalid || !strings.Contains(rej.Reason, c.want) {
			t.Errorf("%+v: %+v, want invalid mentioning %q", c.req, rej, c.want)
		}
	}
	for _, garbage := range []string{"{not json", `{"side":"buy"} {"side":"sell"}`, `{"side":"buy"}x`, `[]`, ``, `{"side":"buy","extra":1}`} {
		msg, err := r.nc.Request(client.OrdersSubject(envName, "new"), []byte(garbage), 2e9)
		if err != nil || !strings.Contains(string(msg.Data), `"code":"invalid"`) || !strings.Contains(string(msg.Data), "order request: body") {
			t.Fatalf("garbage request %q: %v %s", garbage, err, msg.Data)
		}
	}
}

// TestJSONNumbersAreExact: after trading (a fill moves equity, so the
// drawdown is a long fraction), no admin response carries a number that is
// not a whole number: amounts and percentages are exact decimal strings.
func TestJSONNumbersAreExact(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.Risk.MaxPositionUSD, c.Risk.StartingEquityUSD = "100000000", "100000000"
	})
	if _, rej := r.place(client.OrderRequest{Side: "buy", Type: "market", Qty: "0.37"}); rej != nil {
		t.Fatal(rej)
	}
	for _, path := range []string{"/v1/status", "/v1/positions", "/v1/pnl", "/v1/risk", "/v1/orders", "/v1/fills", "/readyz", "/healthz"} {
		_, body := r.http("GET", path, r.apiKey)
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case json.Number:
				if strings.ContainsAny(x.String(), ".eE") {
					t.Errorf("%s carries the inexact number %s:\n%s", path, x, body)
				}
			case map[string]any:
				for _, c := range x {
					walk(c)
				}
			case []any:
				for _, c := range x {
					walk(c)
				}
			}
		}
		walk(v)
	}
	if _, m := r.http("GET", "/metrics", r.apiKey); !strings.Contains(string(m), "paddock_build_info{") {
		t.Error("the node's /metrics lacks paddock_build_info")
	}
	_, body := r.http("GET", "/v1/pnl", r.apiKey)
	var p PnL
	if json.Unmarshal(body, &p) != nil || p.DrawdownPct == "" {
		t.Fatalf("pnl %s", body)
	}
}
