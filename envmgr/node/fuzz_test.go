package node

import (
	"encoding/json"
	"testing"

	"github.com/paddockhq/paddock/envmgr/node/client"
)

// FuzzOrderRequest feeds arbitrary order-request bodies, as a strategy or
// anything holding the environment's credentials could send them, through
// the node's order path. Every request gets a reply, never a panic; a
// refusal always carries a code and a reason, and an accepted order's
// reservation is never leaked (a flat account stays within its limits).
func FuzzOrderRequest(f *testing.F) {
	for _, s := range []string{
		`{"venue":"binance","symbol":"btcusdt","side":"buy","type":"market","qty":"0.001"}`,
		`{"venue":"binance","symbol":"BTCUSDT","side":"sell","type":"limit","qty":"0.5","price":"27123.01","time_in_force":"ioc"}`,
		`{"venue":"binance","symbol":"btcusdt","side":"buy","type":"limit","qty":"99999999999999999999","price":"1"}`,
		`{"venue":"binance","symbol":"btcusdt","side":"buy","type":"limit","qty":"0.000000000000000001","price":"0.000000000000000001"}`,
		`{"side":"buy"}`, `{}`, `[]`, `null`, `{"qty":1}`,
	} {
		f.Add([]byte(s))
	}
	tr := benchTrader(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req client.OrderRequest
		if json.Unmarshal(body, &req) != nil {
			return // the NATS handler answers these with "not valid JSON"
		}
		r := tr.Place(req)
		if r.Error != "" && (r.Code == "" || r.Order == nil || r.Order.Status != client.StatusRejected) {
			t.Fatalf("refusal without code or order: %+v", r)
		}
		if r.Error == "" && (r.Order == nil || r.Order.Status == client.StatusRejected) {
			t.Fatalf("accepted without an order: %+v", r)
		}
		if r.Order != nil && r.Order.Status == client.StatusOpen {
			tr.Cancel(r.Order.ID)
		}
	})
}
