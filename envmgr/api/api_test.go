package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/natskv"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const devEnv = `version: 1
environment: {name: %s}
exchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]
market_data: {mode: live}
risk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}
strategy: {binary: strategies/x}
`

type fixture struct {
	srv      *httptest.Server
	store    *natskv.Store
	progress *envmgr.ProgressHub
	metrics  *Metrics
}

func newFixture(t *testing.T) *fixture {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	nc := natstest.Connect(t, ns.ClientURL())
	store, err := natskv.Open(t.Context(), nc, natskv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := NewTokens([]Token{
		{Name: "alice", Role: "developer", SHA256: HashToken("alice-token")},
		{Name: "bob", Role: "developer", SHA256: HashToken("bob-token")},
		{Name: "root", Role: "admin", SHA256: HashToken("admin-token")},
		{Name: "github", Role: "integration", SHA256: HashToken("ci-token")},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry())
	s := New(envmgr.NewManager(store, nil, nil), store, tokens, ConnectInfo{NATSURL: ns.ClientURL()}, nil, Options{Metrics: m, Health: store})
	hub := envmgr.NewProgressHub()
	s.SetProgress(hub)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, store: store, progress: hub, metrics: m}
}

func (f *fixture) do(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestRequestsAndStatusCodes(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"no token", "GET", "/v1/environments", "", nil, 401, "unauthenticated"},
		{"wrong token", "GET", "/v1/environments", "nope", nil, 401, "unauthenticated"},
		{"create", "POST", "/v1/environments", "alice-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "alpha"), CommitSHA: "c0ffee"}, 201, ""},
		{"create again", "POST", "/v1/environments", "alice-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "alpha")}, 409, "exists"},
		{"invalid spec", "POST", "/v1/environments", "alice-token", CreateBody{SpecYAML: "version: 1\nttl_hour: 3\n"}, 422, "invalid_spec"},
		{"unknown body field", "POST", "/v1/environments", "alice-token", map[string]any{"spec": "x"}, 400, "bad_request"},
		{"get own", "GET", "/v1/environments/alpha", "alice-token", nil, 200, ""},
		{"get other's is not found", "GET", "/v1/environments/alpha", "bob-token", nil, 404, "not_found"},
		{"admin gets any", "GET", "/v1/environments/alpha", "admin-token", nil, 200, ""},
		{"missing", "GET", "/v1/environments/nope", "alice-token", nil, 404, "not_found"},
		{"stop other's is not found", "POST", "/v1/environments/alpha/stop", "bob-token", nil, 404, "not_found"},
		{"extend", "POST", "/v1/environments/alpha/extend", "alice-token", map[string]int{"hours": 24}, 202, ""},
		{"extend past 96h is a request", "POST", "/v1/environments/alpha/extend", "alice-token", map[string]int{"hours": 48}, 202, ""},
		{"extend past 720h", "POST", "/v1/environments/alpha/extend", "alice-token", map[string]int{"hours": 700}, 403, "forbidden"},
		{"extend by too much", "POST", "/v1/environments/alpha/extend", "alice-token", map[string]int{"hours": 721}, 400, "bad_request"},
		{"extend by less than nothing", "POST", "/v1/environments/alpha/extend", "alice-token", map[string]int{"hours": -1}, 400, "bad_request"},
		{"admin extends past 96h", "POST", "/v1/environments/alpha/extend", "admin-token", map[string]int{"hours": 48}, 202, ""},
		{"stop", "POST", "/v1/environments/alpha/stop", "alice-token", nil, 202, ""},
		{"delete", "DELETE", "/v1/environments/alpha", "alice-token", nil, 202, ""},
		{"start while destroying", "POST", "/v1/environments/alpha/start", "alice-token", nil, 409, "illegal_transition"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do(t, tc.method, tc.path, tc.token, tc.body)
			if status != tc.status || (tc.code != "" && body["code"] != tc.code) {
				t.Fatalf("%s %s: %d %v; want %d %s", tc.method, tc.path, status, body, tc.status, tc.code)
			}
			if tc.status >= 400 && (body["error"] == nil || body["error"] == "") {
				t.Fatalf("error response without a reason: %v", body)
			}
		})
	}
	// The validation error carries every field problem with its line.
	_, body := f.do(t, "POST", "/v1/environments", "alice-token", CreateBody{SpecYAML: "version: 1\nttl_hour: 3\n"})
	fields, _ := body["fields"].([]any)
	if len(fields) < 2 || !strings.Contains(fmt.Sprint(fields), "ttl_hour") {
		t.Fatalf("fields: %v", body["fields"])
	}
	// Developers list their own; admins all.
	f.do(t, "POST", "/v1/environments", "bob-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "bravo")})
	_, mine := f.do(t, "GET", "/v1/environments", "bob-token", nil)
	_, all := f.do(t, "GET", "/v1/environments", "admin-token", nil)
	if len(mine["environments"].([]any)) != 1 || len(all["environments"].([]any)) != 2 {
		t.Fatalf("bob sees %d, admin %d", len(mine["environments"].([]any)), len(all["environments"].([]any)))
	}
	// Refusals are audited.
	recs, err := f.store.Audit(t.Context(), "alpha")
	if err != nil {
		t.Fatal(err)
	}
	refusals := 0
	for _, r := range recs {
		if r.Action == "refused" {
			refusals++
		}
	}
	if refusals < 2 { // bob's stop, alice's extend past 720h
		t.Fatalf("%d refusals audited for alpha: %+v", refusals, recs)
	}
	// Unauthenticated refusals are counted, never audited: an anonymous
	// caller cannot fill an audit log.
	global, _ := f.store.Audit(t.Context(), "_global")
	for _, r := range global {
		if r.Actor == "" || r.Actor == "unauthenticated" {
			t.Fatalf("an unauthenticated request was audited: %+v", r)
		}
	}
	if n := testutil.ToFloat64(f.metrics.refused.WithLabelValues("unauthenticated")); n != 2 {
		t.Fatalf("unauthenticated refusals counted %v, want 2", n)
	}
}

func TestEventsStream(t *testing.T) {
	f := newFixture(t)
	f.do(t, "POST", "/v1/environments", "alice-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "watched")})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/v1/environments/watched/events", nil)
	req.Header.Set("Authorization", "Bearer alice-token")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(resp.Body)
	next := func() envmgr.Environment {
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var e envmgr.Environment
				if err := json.Unmarshal([]byte(data), &e); err != nil {
					t.Fatal(err)
				}
				return e
			}
		}
	}
	if e := next(); e.State != envmgr.StateRequested {
		t.Fatalf("first event %s", e.State)
	}
	// A reconciler would do this; do it directly so the test needs no node.
	e, rev, _ := f.store.Get(t.Context(), "watched")
	_ = e.Move(envmgr.StateProvisioning, time.Now())
	if _, err := f.store.Update(t.Context(), e, rev); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.State != envmgr.StateProvisioning {
		t.Fatalf("second event %s", e.State)
	}
}

// TestOpenAPIMatchesRoutes: the committed document describes exactly the
// routes the server serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openapi, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" {
				documented = append(documented, strings.ToUpper(m)+" "+p)
			}
		}
	}
	src, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, line := range strings.Split(string(src), "\n") {
		for _, prefix := range []string{`s.handle("`, `s.mux.HandleFunc("`, `s.mux.Handle("`} {
			if i := strings.Index(line, prefix); i >= 0 {
				rest := line[i+len(prefix):]
				served = append(served, rest[:strings.Index(rest, `"`)])
			}
		}
	}
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("OpenAPI and server disagree:\ndocumented:\n%s\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
}

// TestProgressOnTheEventsStream: a provisioner's progress reaches a
// client's Watch beside the state changes.
func TestProgressOnTheEventsStream(t *testing.T) {
	f := newFixture(t)
	f.do(t, "POST", "/v1/environments", "alice-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "prog")})
	got := make(chan envmgr.ProgressEvent, 1)
	c := &Client{BaseURL: f.srv.URL, Token: "alice-token", Progress: func(p envmgr.ProgressEvent) { got <- p }}
	done := make(chan error, 1)
	states := make(chan envmgr.State, 4)
	go func() {
		done <- c.Watch(t.Context(), "prog", func(e envmgr.Environment) bool { states <- e.State; return e.State != envmgr.StateProvisioning })
	}()
	if s := <-states; s != envmgr.StateRequested {
		t.Fatalf("first state %s", s)
	}
	// The watcher is subscribed once its first state arrived; publish until
	// the event gets through (the subscription races the first publish).
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var p envmgr.ProgressEvent
	deadline := time.After(10 * time.Second)
wait:
	for {
		select {
		case p = <-got:
			break wait
		case <-tick.C:
			f.progress.Publish(envmgr.ProgressEvent{Env: "prog", Op: "apply", Type: "apply_start",
				Message: "module.env.aws_instance.node: Creating...", Resource: "module.env.aws_instance.node"})
		case <-deadline:
			t.Fatal("no progress event")
		}
	}
	if p.Op != "apply" || p.Resource != "module.env.aws_instance.node" {
		t.Fatalf("progress %+v", p)
	}
	f.progress.Publish(envmgr.ProgressEvent{Env: "other", Message: "not for this watcher"})
	e, rev, _ := f.store.Get(t.Context(), "prog")
	_ = e.Move(envmgr.StateProvisioning, time.Now())
	if _, err := f.store.Update(t.Context(), e, rev); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p.Env != "prog" {
			t.Fatalf("another environment's progress: %+v", p)
		}
	default:
	}
}

// TestNamesAreClaimedFairly: a pull request's name (pr-<n>, by pr_number or
// written in the file) is claimed only by the PR integration or an admin, so
// no developer can squat another's; a destroyed environment's name is free
// again, and its history stays.
func TestNamesAreClaimedFairly(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	byNumber := strings.Replace(fmt.Sprintf(devEnv, "x"), "environment: {name: x}\n", "", 1)
	for _, tc := range []struct {
		name, token string
		body        CreateBody
		status      int
	}{
		{"developer by number", "alice-token", CreateBody{SpecYAML: byNumber, PRNumber: 4242}, 403},
		{"developer by name", "alice-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "pr-4242")}, 403},
		{"integration by number", "ci-token", CreateBody{SpecYAML: byNumber, PRNumber: 4242}, 201},
		{"admin by name", "admin-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "pr-7")}, 201},
		{"pr_number out of range", "ci-token", CreateBody{SpecYAML: byNumber, PRNumber: 1<<30 + 1}, 400},
		{"a name like a PR that is not one", "alice-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "pr-07")}, 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := f.do(t, "POST", "/v1/environments", tc.token, tc.body); status != tc.status {
				t.Fatalf("%d %v, want %d", status, body, tc.status)
			}
		})
	}
	// A taken name stays taken until its environment is destroyed.
	f.do(t, "POST", "/v1/environments", "alice-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "reuse")})
	if status, _ := f.do(t, "POST", "/v1/environments", "bob-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "reuse")}); status != 409 {
		t.Fatalf("a live name was taken again: %d", status)
	}
	e, rev, err := f.store.Get(ctx, "reuse")
	if err != nil {
		t.Fatal(err)
	}
	e.State, e.Desired = envmgr.StateDestroyed, envmgr.WantDestroyed // as the reconciler leaves it
	if _, err := f.store.Update(ctx, e, rev); err != nil {
		t.Fatal(err)
	}
	if status, body := f.do(t, "POST", "/v1/environments", "bob-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "reuse")}); status != 201 || body["owner"] != "bob" {
		t.Fatalf("a destroyed name was not reusable: %d %v", status, body)
	}
	// A failed environment's name is free for its owner (and admins), not
	// for another developer.
	e, rev, _ = f.store.Get(ctx, "reuse")
	e.State, e.Reason = envmgr.StateFailed, "provision: boom"
	if _, err := f.store.Update(ctx, e, rev); err != nil {
		t.Fatal(err)
	}
	if status, _ := f.do(t, "POST", "/v1/environments", "alice-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "reuse")}); status != 409 {
		t.Fatalf("another developer took a failed environment's name: %d", status)
	}
	if status, _ := f.do(t, "POST", "/v1/environments", "bob-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "reuse")}); status != 201 {
		t.Fatalf("the owner could not create a failed environment again: %d", status)
	}
	hist, err := f.store.History(ctx, "reuse")
	if err != nil || len(hist) != 5 || hist[0].Owner != "alice" {
		t.Fatalf("history of reuse: %d versions, %v", len(hist), err)
	}
	recs, _ := f.store.Audit(ctx, "reuse")
	creates := 0
	for _, r := range recs {
		if r.Action == "create" {
			creates++
		}
	}
	if creates != 3 {
		t.Fatalf("audit keeps %d creates, want all three", creates)
	}
}

// TestExtensionApprovals: beyond 96 hours in total a developer's extension
// (or ttl_hours) is a request that an admin approves or refuses; the audit
// log says who added how many hours and the new deadline.
func TestExtensionApprovals(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	long := strings.Replace(fmt.Sprintf(devEnv, "long"), "version: 1", "version: 1\nttl_hours: 200", 1)
	status, body := f.do(t, "POST", "/v1/environments", "alice-token", CreateBody{SpecYAML: long})
	if status != 201 || body["ttl_hours"] != 96.0 || body["pending_ttl"].(map[string]any)["hours"] != 200.0 {
		t.Fatalf("create with ttl_hours 200: %d %v", status, body)
	}
	if status, _ := f.do(t, "POST", "/v1/environments/long/approve", "alice-token", nil); status != 403 {
		t.Fatalf("a developer approved: %d", status)
	}
	if status, body := f.do(t, "POST", "/v1/environments/long/approve", "admin-token", nil); status != 202 || body["ttl_hours"] != 200.0 || body["pending_ttl"] != nil {
		t.Fatalf("approve: %d %v", status, body)
	}
	if status, _ := f.do(t, "POST", "/v1/environments/long/approve", "admin-token", nil); status != 409 {
		t.Fatalf("approve without a request: %d", status)
	}
	f.do(t, "POST", "/v1/environments", "alice-token", CreateBody{SpecYAML: fmt.Sprintf(devEnv, "short")})
	if status, body := f.do(t, "POST", "/v1/environments/short/extend", "alice-token", map[string]int{"hours": 24}); status != 202 || body["ttl_hours"] != 72.0 {
		t.Fatalf("extend within 96h: %d %v", status, body)
	}
	if status, body := f.do(t, "POST", "/v1/environments/short/extend", "alice-token", map[string]int{"hours": 48}); status != 202 || body["ttl_hours"] != 72.0 || body["pending_ttl"] == nil {
		t.Fatalf("extend past 96h: %d %v", status, body)
	}
	if status, body := f.do(t, "POST", "/v1/environments/short/refuse", "admin-token", nil); status != 202 || body["ttl_hours"] != 72.0 || body["pending_ttl"] != nil {
		t.Fatalf("refuse: %d %v", status, body)
	}
	recs, _ := f.store.Audit(ctx, "short")
	var details []string
	for _, r := range recs {
		details = append(details, r.Actor+" "+r.Action+": "+r.Detail)
	}
	got := strings.Join(details, "\n")
	for _, want := range []string{"alice extend: +24h by alice via api: 72h in total, new deadline ", "alice extend: +48h requested by alice: 120h in total",
		"root refuse: refused alice's request for 120h in total"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit lacks %q:\n%s", want, got)
		}
	}
}
