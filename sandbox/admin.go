package sandbox

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/paddockhq/paddock/internal/jsonbody"
	"github.com/paddockhq/paddock/risk"
	"github.com/paddockhq/paddock/sandbox/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Roles on the admin API. The environment's API key may do everything but
// resume a halted environment, which takes the admin key.
const (
	roleNone = iota
	roleEnv
	roleAdmin
)

// keys holds the SHA-256 of the two keys; requests are compared in constant
// time.
type keys struct{ env, admin [32]byte }

func loadKeys(envFile, adminFile string) (keys, error) {
	var k keys
	for _, f := range []struct {
		path string
		dst  *[32]byte
	}{{envFile, &k.env}, {adminFile, &k.admin}} {
		raw, err := os.ReadFile(f.path)
		if err != nil {
			return k, fmt.Errorf("read key: %w", err)
		}
		key := strings.TrimSpace(string(raw))
		if len(key) < 16 {
			return k, fmt.Errorf("%w: key in %s is shorter than 16 characters", ErrConfig, f.path)
		}
		*f.dst = sha256.Sum256([]byte(key))
	}
	return k, nil
}

func (k keys) role(r *http.Request) int {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return roleNone
	}
	h := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(h[:], k.admin[:]) == 1 {
		return roleAdmin
	}
	if subtle.ConstantTimeCompare(h[:], k.env[:]) == 1 {
		return roleEnv
	}
	return roleNone
}

// Status is GET /v1/status.
type Status struct {
	Env     string `json:"env"`
	Halted  bool   `json:"halted"`
	HaltWhy string `json:"halt_reason,omitempty"`
	// Expired: the environment's deadline passed; orders are refused.
	Expired   string                `json:"expired,omitempty"`
	Venues    map[string]VenueState `json:"venues"`
	Books     []BookState           `json:"books"`
	Strategy  *StrategyStatus       `json:"strategy,omitempty"`
	OpenOrder int                   `json:"open_orders"`
	Fills     int                   `json:"recent_fills"`
}

// VenueState is a venue's feed health as the node sees it.
type VenueState struct {
	Healthy    bool      `json:"healthy"`
	State      string    `json:"feed_state"`
	LastStatus time.Time `json:"last_status"`
}

// BookState is one instrument's book.
type BookState struct {
	Venue  string `json:"venue"`
	Symbol string `json:"symbol"`
	Live   bool   `json:"live"`
	Seq    uint64 `json:"seq"`
	Mid    string `json:"mid,omitempty"`
}

// PositionView is one instrument's account in GET /v1/positions.
type PositionView struct {
	Venue      string `json:"venue"`
	Symbol     string `json:"symbol"`
	Quote      string `json:"quote"`
	Qty        string `json:"qty"`
	OpenBuy    string `json:"open_buy"`
	OpenSell   string `json:"open_sell"`
	AvgEntry   string `json:"avg_entry,omitempty"`
	Mark       string `json:"mark,omitempty"`
	Realized   string `json:"realized_pnl"`
	Unrealized string `json:"unrealized_pnl"`
	Fees       string `json:"fees"`
	Fills      uint64 `json:"fills"`
}

// PnL is GET /v1/pnl, in USD.
type PnL struct {
	StartingEquity string `json:"starting_equity_usd"`
	Equity         string `json:"equity_usd"`
	Peak           string `json:"peak_equity_usd"`
	EquityKnown    bool   `json:"equity_known"`
	DrawdownPct    string `json:"drawdown_pct"` // exact to 10 decimals, as a string like every number here
	PnL            string `json:"pnl_usd"`
}

// RiskView is GET /v1/risk.
type RiskView struct {
	MaxPositionUSD    string `json:"max_position_usd"`
	MaxDrawdownPct    string `json:"max_drawdown_pct"`
	MaxOrderRate      string `json:"max_order_rate"`
	StartingEquityUSD string `json:"starting_equity_usd"`
	Halted            bool   `json:"halted"`
	HaltReason        string `json:"halt_reason,omitempty"`
	PnL               PnL    `json:"pnl"`
}

// Snapshot returns the status, positions and PnL in one consistent view.
func (t *Trader) Snapshot() (Status, []PositionView, PnL, RiskView) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, why := t.risk.Halted()
	st := Status{Env: t.env, Halted: h, HaltWhy: why, Expired: t.expired, Venues: map[string]VenueState{}, OpenOrder: len(t.venue.Resting()), Fills: len(t.fills)}
	for name, v := range t.venues {
		st.Venues[name] = VenueState{Healthy: v.healthy, State: v.state.String(), LastStatus: v.lastStatus}
	}
	var pos []PositionView
	for i, in := range t.inst {
		bs := BookState{Venue: in.Venue, Symbol: in.Symbol}
		if b := t.books[i]; b != nil {
			bs.Live, bs.Seq = b.Live(), b.Seq()
			if m, ok := b.Mid(); ok {
				bs.Mid = m.String()
			}
		}
		st.Books = append(st.Books, bs)
		p := t.risk.Position(risk.InstrumentID(i))
		pv := PositionView{Venue: p.Venue, Symbol: p.Symbol, Quote: p.Quote, Qty: p.Qty.String(), OpenBuy: p.OpenBuy.String(),
			OpenSell: p.OpenSell.String(), AvgEntry: p.AvgEntry, Realized: p.Realized.String(), Unrealized: p.Unrealized.String(),
			Fees: p.Fees.String(), Fills: p.Fills}
		if p.Mark.Mant != 0 {
			pv.Mark = p.Mark.String()
		}
		pos = append(pos, pv)
	}
	a := t.risk.Account()
	pnl, _ := a.Equity.Sub(a.StartingEquity)
	p := PnL{StartingEquity: a.StartingEquity.String(), Equity: a.Equity.String(), Peak: a.Peak.String(),
		EquityKnown: a.EquityKnown, DrawdownPct: drawdownPct(a.Peak, a.Equity), PnL: pnl.String()}
	l := t.risk.Limits()
	rv := RiskView{MaxPositionUSD: l.MaxPositionUSD.String(), MaxDrawdownPct: l.MaxDrawdownPct.String(),
		MaxOrderRate: l.MaxOrderRate.String(), StartingEquityUSD: l.StartingEquityUSD.String(), Halted: h, HaltReason: why, PnL: p}
	return st, pos, p, rv
}

// drawdownPct is (peak - equity) / peak x 100, computed exactly and written
// with at most 10 decimals, trailing zeros dropped.
func drawdownPct(peak, equity risk.Amount) string {
	p := peak.Rat()
	if p.Sign() <= 0 {
		return "0"
	}
	d := new(big.Rat).Sub(p, equity.Rat())
	if d.Sign() <= 0 {
		return "0"
	}
	d.Quo(d, p).Mul(d, big.NewRat(100, 1))
	s := strings.TrimRight(d.FloatString(10), "0")
	return strings.TrimSuffix(s, ".")
}

// StrategyStableAfter is how long a strategy process must have stayed up
// before the node reports it running in its readiness.
const StrategyStableAfter = 2 * time.Second

// readiness is whether the node does what it was asked: every declared
// book live, the strategy (if any) running, not halted; with the reasons
// when not. GET /readyz, the heartbeat and the manager's health use it.
func readiness(t *Trader, sup *Supervisor) client.Health {
	st, _, _, _ := t.Snapshot()
	h := client.Health{Books: len(st.Books), Halted: st.Halted, HaltReason: st.HaltWhy}
	if st.Expired != "" {
		h.Reasons = append(h.Reasons, st.Expired)
	}
	for _, b := range st.Books {
		if b.Live {
			h.BooksLive++
			continue
		}
		why := fmt.Sprintf("book %s:%s is not live", b.Venue, b.Symbol)
		switch v, ok := st.Venues[b.Venue]; {
		case !ok || v.LastStatus.IsZero():
			why += fmt.Sprintf(" (no health from the feed for %s: is the feed running, and does it carry it?)", b.Venue)
		case !v.Healthy:
			why += fmt.Sprintf(" (the feed reports %s %s)", b.Venue, v.State)
		}
		h.Reasons = append(h.Reasons, why)
	}
	if sup != nil {
		s := sup.Status()
		h.Strategy = &client.StrategyHealth{Running: s.Running, Restarts: s.Restarts, LastExit: s.LastExit}
		switch up := time.Since(s.UpSince); {
		case !s.Running && !s.Paused:
			why := fmt.Sprintf("the strategy is not running (%d restarts", s.Restarts)
			if s.LastExit != "" {
				why += ", last exit: " + s.LastExit
			}
			h.Reasons = append(h.Reasons, why+")")
		case s.Running && up < StrategyStableAfter:
			// A process that crashes at once is "running" for a moment: it
			// counts once it has stayed up a little.
			h.Reasons = append(h.Reasons, fmt.Sprintf("the strategy started %v ago (%d restarts); it counts as running after %v",
				up.Round(time.Millisecond), s.Restarts, StrategyStableAfter))
		}
	}
	if h.Halted {
		h.Reasons = append(h.Reasons, "halted: "+h.HaltReason)
	}
	h.Ready = len(h.Reasons) == 0
	return h
}

// adminHandler serves the node's admin API. Every route but /healthz needs
// the environment's API key (Authorization: Bearer <key>); resume needs the
// admin key.
func adminHandler(t *Trader, sup *Supervisor, k keys, reg *prometheus.Registry, natsStatus func() string) http.Handler {
	started := time.Now()
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(w http.ResponseWriter, code int, msg string) { writeJSON(w, code, map[string]string{"error": msg}) }
	auth := func(need int, h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			switch role := k.role(r); {
			case role == roleNone:
				w.Header().Set("WWW-Authenticate", `Bearer realm="paddock-node"`)
				fail(w, http.StatusUnauthorized, "missing or wrong API key (Authorization: Bearer <key>)")
			case role < need:
				fail(w, http.StatusForbidden, "this action needs the admin key")
			default:
				h(w, r)
			}
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "env": t.env, "pid": os.Getpid(), "nats": natsStatus(),
			"uptime_seconds": int(time.Since(started).Seconds())})
	})
	// /readyz is 200 only while the node works (every book live, the
	// strategy running, not halted), else 503 with the reasons; unlike
	// /healthz (the process answers), it is what "ready" means.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		h := readiness(t, sup)
		code := http.StatusOK
		if !h.Ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, h)
	})
	mux.HandleFunc("GET /v1/status", auth(roleEnv, func(w http.ResponseWriter, _ *http.Request) {
		st, _, _, _ := t.Snapshot()
		if sup != nil {
			s := sup.Status()
			st.Strategy = &s
		}
		writeJSON(w, http.StatusOK, st)
	}))
	mux.HandleFunc("GET /v1/positions", auth(roleEnv, func(w http.ResponseWriter, _ *http.Request) {
		_, pos, _, _ := t.Snapshot()
		writeJSON(w, http.StatusOK, pos)
	}))
	mux.HandleFunc("GET /v1/pnl", auth(roleEnv, func(w http.ResponseWriter, _ *http.Request) {
		_, _, p, _ := t.Snapshot()
		writeJSON(w, http.StatusOK, p)
	}))
	mux.HandleFunc("GET /v1/risk", auth(roleEnv, func(w http.ResponseWriter, _ *http.Request) {
		_, _, _, rv := t.Snapshot()
		writeJSON(w, http.StatusOK, rv)
	}))
	mux.HandleFunc("GET /v1/orders", auth(roleEnv, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, t.OpenOrders())
	}))
	mux.HandleFunc("POST /v1/orders", auth(roleEnv, func(w http.ResponseWriter, r *http.Request) {
		var req client.OrderRequest
		if err := jsonbody.Decode(r, &req, 64<<10, false); err != nil {
			var je *jsonbody.Error
			errors.As(err, &je)
			fail(w, je.Status, "order request: "+je.Msg)
			return
		}
		rep := t.Place(req)
		writeJSON(w, replyStatus(rep, http.StatusCreated), rep)
	}))
	mux.HandleFunc("DELETE /v1/orders/{id}", auth(roleEnv, func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			fail(w, http.StatusBadRequest, "order id must be a number")
			return
		}
		rep := t.Cancel(id)
		writeJSON(w, replyStatus(rep, http.StatusOK), rep)
	}))
	mux.HandleFunc("GET /v1/fills", auth(roleEnv, func(w http.ResponseWriter, r *http.Request) {
		n, err := countParam(r, "limit")
		if err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, t.Fills(n))
	}))
	mux.HandleFunc("POST /v1/halt", auth(roleEnv, func(w http.ResponseWriter, r *http.Request) {
		t.Halt("halted by request through the admin API")
		_, _, _, rv := t.Snapshot()
		writeJSON(w, http.StatusOK, rv)
	}))
	mux.HandleFunc("POST /v1/resume", auth(roleAdmin, func(w http.ResponseWriter, r *http.Request) {
		if !t.Resume("admin") {
			fail(w, http.StatusConflict, "the environment is not halted")
			return
		}
		_, _, _, rv := t.Snapshot()
		writeJSON(w, http.StatusOK, rv)
	}))
	mux.HandleFunc("GET /v1/strategy/logs", auth(roleEnv, func(w http.ResponseWriter, r *http.Request) {
		if sup == nil {
			fail(w, http.StatusNotFound, "this environment runs no strategy")
			return
		}
		n, err := countParam(r, "lines")
		if err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, sup.Logs(n))
	}))
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	mux.HandleFunc("GET /metrics", auth(roleEnv, metrics.ServeHTTP))
	return mux
}

// countParam reads an optional count from the query: absent is 0 (all),
// otherwise 1 to maxCount.
func countParam(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxCount {
		return 0, fmt.Errorf("%s must be a whole number from 1 to %d", name, maxCount)
	}
	return n, nil
}

const maxCount = 100_000

// replyStatus maps an order API reply to an HTTP status, in one place.
func replyStatus(r client.Reply, ok int) int {
	switch {
	case r.Error == "":
		return ok
	case r.Code == CodeNotFound:
		return http.StatusNotFound
	case r.Code == CodeInvalid:
		return http.StatusBadRequest
	case r.Code == risk.RejectOrderRate.String():
		return http.StatusTooManyRequests
	case r.Code == risk.RejectHalted.String(), r.Code == risk.RejectVenue.String(), r.Code == CodeBookNotLive,
		r.Code == risk.RejectNoMark.String(), r.Code == risk.RejectStaleMark.String(), r.Code == risk.RejectNoRate.String():
		return http.StatusServiceUnavailable
	}
	return http.StatusUnprocessableEntity // a risk limit
}
