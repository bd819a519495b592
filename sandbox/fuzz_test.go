package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/sandbox/client"
	"github.com/prometheus/client_golang/prometheus"
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

// FuzzAdminAPI sends arbitrary requests (method, path with query, token,
// content type, body) to the node's admin API over a real trader. Every
// request is answered with a JSON body and never a 500 (503 is the node's
// designed answer when market data is stale), never a panic,
// and nothing an unauthenticated caller sends reaches the trader.
func FuzzAdminAPI(f *testing.F) {
	seeds := []struct{ method, path, token, ctype, body string }{
		{"GET", "/v1/status", "env-key-0123456789", "", ""},
		{"POST", "/v1/orders", "env-key-0123456789", "application/json", `{"venue":"binance","symbol":"btcusdt","side":"buy","type":"market","qty":"0.001"}`},
		{"POST", "/v1/orders", "env-key-0123456789", "application/json", `{"side":"buy"} trailing`},
		{"POST", "/v1/orders", "env-key-0123456789", "text/plain", `{}`},
		{"DELETE", "/v1/orders/18446744073709551616", "env-key-0123456789", "", ""},
		{"GET", "/v1/fills?limit=-9223372036854775808", "env-key-0123456789", "", ""},
		{"GET", "/v1/strategy/logs?lines=99999999999", "env-key-0123456789", "", ""},
		{"POST", "/v1/resume", "env-key-0123456789", "", ""},
		{"POST", "/v1/halt", "", "", ""},
		{"GET", "/v1/pnl", "admin-key-0123456789", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.token, s.ctype, []byte(s.body))
	}
	tr := benchTrader(f)
	k := keys{env: sha256.Sum256([]byte("env-key-0123456789")), admin: sha256.Sum256([]byte("admin-key-0123456789"))}
	h := adminHandler(tr, nil, k, prometheus.NewRegistry(), func() string { return "CONNECTED" })
	f.Fuzz(func(t *testing.T, method, path, token, ctype string, body []byte) {
		if method != "GET" && method != "POST" && method != "DELETE" {
			method = "POST"
		}
		req, err := http.NewRequest(method, "http://node"+path, bytes.NewReader(body))
		if err != nil || !strings.HasPrefix(req.URL.Path, "/") {
			return // not a request a client can send
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		halted := isHalted(tr)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
		if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s: invalid JSON %q", method, path, w.Body)
		}
		if token != "env-key-0123456789" && token != "admin-key-0123456789" && isHalted(tr) != halted {
			t.Fatalf("an unauthenticated request changed the halt state")
		}
		if isHalted(tr) {
			tr.Resume("fuzz")
		}
	})
}

func isHalted(tr *Trader) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	h, _ := tr.risk.Halted()
	return h
}
