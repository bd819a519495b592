package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/api"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/testnode"
)

const hostileSpec = `version: 1
environment: {name: %s}
exchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]
market_data: {mode: live}
risk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}
strategy: {binary: s}
`

// manager runs the whole manager (operator-mode NATS, local provisioner with
// real node processes, a fast reconcile tick) and returns its API URL.
func manager(t *testing.T, ns *embednats.Server, dir, authDir string) string {
	t.Helper()
	tokens, _ := api.NewTokens([]api.Token{
		{Name: "alice", Role: "developer", SHA256: api.HashToken("dev")},
		{Name: "root", Role: "admin", SHA256: api.HashToken("admin")},
	})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{NoFeedCheck: true, NATSURL: ns.ClientURL(), Listen: "127.0.0.1:0", StateDir: filepath.Join(dir, "state"), Tokens: tokens, AuthDir: authDir,
			NodeCommand: testnode.Command, ReconcileEvery: 100 * time.Millisecond, NodeReadyTimeout: 200 * time.Millisecond}, nil, func(s Started) { started <- s.APIURL })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	select {
	case url := <-started:
		return url
	case err := <-done:
		t.Fatal(err)
	}
	return ""
}

type hostile struct {
	name, method, path, token, ctype, body string
	header                                 map[string]string
}

// hostileRequests is a table of hostile input for every route: names that
// are long, wildcards, unicode, dotted or reserved; huge numbers; wrong
// content types; oversized headers, bodies and tokens; trailing data.
func hostileRequests() []hostile {
	long := strings.Repeat("a", 4100)
	names := []string{long, "*", ">", "a.b", "a%2Eb", "%2A", "_global", "%E2%82%AC", "UPPER", "a b", "a%00b", "-a", "a-", strings.Repeat("x", 41), "%2F..%2F..%2Fetc"}
	routes := []struct{ method, suffix string }{{"GET", ""}, {"DELETE", ""}, {"POST", "/stop"}, {"POST", "/start"}, {"POST", "/extend"}, {"GET", "/events"}, {"GET", "/audit"}}
	var out []hostile
	for _, tok := range []string{"", "dev", "admin"} {
		for _, n := range names {
			for _, r := range routes {
				out = append(out, hostile{name: fmt.Sprintf("%s %s name=%.20s token=%q", r.method, r.suffix, n, tok), method: r.method, path: "/v1/environments/" + n + r.suffix, token: tok})
			}
		}
	}
	huge := []string{"9223372036854775807", "-9223372036854775808", "18446744073709551616", "1e400", "-1", "0.5", `"24"`, "null"}
	for _, h := range huge {
		out = append(out,
			hostile{name: "extend hours=" + h, method: "POST", path: "/v1/environments/victim/extend", token: "dev", ctype: "application/json", body: `{"hours":` + h + `}`},
			hostile{name: "create pr_number=" + h, method: "POST", path: "/v1/environments", token: "dev", ctype: "application/json",
				body: `{"spec_yaml":"version: 1","pr_number":` + h + `}`})
	}
	specJSON := strconv.Quote(fmt.Sprintf(hostileSpec, "other"))
	out = append(out,
		hostile{name: "ttl overflow", method: "POST", path: "/v1/environments", token: "dev", body: `{"spec_yaml":` + strconv.Quote(strings.Replace(fmt.Sprintf(hostileSpec, "ttl"), "version: 1", "version: 1\nttl_hours: 9223372036854775807", 1)) + `}`},
		hostile{name: "order rate overflow", method: "POST", path: "/v1/environments", token: "dev", body: `{"spec_yaml":` + strconv.Quote(strings.Replace(fmt.Sprintf(hostileSpec, "rate"), "max_order_rate: 10", "max_order_rate: 9223372036854775807", 1)) + `}`},
		hostile{name: "text body", method: "POST", path: "/v1/environments", token: "dev", ctype: "text/plain", body: `{"spec_yaml":` + specJSON + `}`},
		hostile{name: "form body", method: "POST", path: "/v1/environments/victim/extend", token: "dev", ctype: "application/x-www-form-urlencoded", body: "hours=24"},
		hostile{name: "trailing data", method: "POST", path: "/v1/environments", token: "dev", body: `{"spec_yaml":` + specJSON + `} {"x":1}`},
		hostile{name: "array body", method: "POST", path: "/v1/environments", token: "dev", body: `[` + specJSON + `]`},
		hostile{name: "huge body", method: "POST", path: "/v1/environments", token: "dev", body: `{"spec_yaml":"` + strings.Repeat("a", 1<<20) + `"}`},
		hostile{name: "huge branch", method: "POST", path: "/v1/environments", token: "dev", body: `{"spec_yaml":` + strconv.Quote(fmt.Sprintf(hostileSpec, "branchy")) + `,"branch":"` + strings.Repeat("b", 100000) + `"}`},
		hostile{name: "bad sha", method: "POST", path: "/v1/environments", token: "dev", body: `{"spec_yaml":` + strconv.Quote(fmt.Sprintf(hostileSpec, "shay")) + `,"commit_sha":"zz` + strings.Repeat("9", 70) + `"}`},
		hostile{name: "squat a PR", method: "POST", path: "/v1/environments", token: "dev", body: `{"spec_yaml":` + strconv.Quote(fmt.Sprintf(hostileSpec, "pr-4242")) + `}`},
		hostile{name: "squat a PR by number", method: "POST", path: "/v1/environments", token: "dev", body: `{"spec_yaml":` + strconv.Quote(strings.Replace(fmt.Sprintf(hostileSpec, "x"), "environment: {name: x}\n", "", 1)) + `,"pr_number":4243}`},
		hostile{name: "1 MB header", method: "GET", path: "/v1/environments", token: "dev", header: map[string]string{"X-Junk": strings.Repeat("j", 1<<20)}},
		hostile{name: "1 MB token", method: "GET", path: "/v1/environments", token: strings.Repeat("t", 1<<20)},
		hostile{name: "long name unauthenticated, again", method: "GET", path: "/v1/environments/" + long},
		hostile{name: "no token", method: "GET", path: "/v1/environments"},
		hostile{name: "a wrong token", method: "POST", path: "/v1/environments/victim/stop", token: "not-a-token"},
	)
	return out
}

// TestHostileRequestsLeaveTheManagerWorking fires every hostile request at
// a running manager, then checks that it still lists, creates, reconciles
// (restarts a killed node) and reports healthy. On the first wave's code the
// first long name closed the manager's NATS connection for good.
func TestHostileRequestsLeaveTheManagerWorking(t *testing.T) {
	dir := t.TempDir()
	ns, authDir := operatorNATS(t, dir)
	url := manager(t, ns, dir, authDir)
	dev := &api.Client{BaseURL: url, Token: "dev"}
	ctx := t.Context()
	if _, err := dev.Create(ctx, api.CreateBody{SpecYAML: fmt.Sprintf(hostileSpec, "victim")}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, h := range hostileRequests() {
		req, err := http.NewRequestWithContext(ctx, h.method, url+h.path, strings.NewReader(h.body))
		if err != nil {
			continue // a name net/http itself refuses to send
		}
		if h.token != "" {
			req.Header.Set("Authorization", "Bearer "+h.token)
		}
		if h.ctype != "" {
			req.Header.Set("Content-Type", h.ctype)
		}
		for k, v := range h.header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%.80s: %v", h.name, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%.80s: %d %.200s", h.name, resp.StatusCode, body)
		}
		if resp.StatusCode < 400 && !strings.HasSuffix(h.path, "/victim/extend") {
			t.Fatalf("%.80s: accepted with %d %.200s", h.name, resp.StatusCode, body)
		}
		if strings.Contains(string(body), "nats:") || strings.Contains(string(body), "paddock.audit") {
			t.Fatalf("%.80s: the response leaks internals: %.200s", h.name, body)
		}
	}
	victim, _, err := dev.Get(ctx, "victim")
	if err != nil {
		t.Fatal(err)
	}
	if victim.TTLHours > 720 || victim.ExpiresAt.After(victim.CreatedAt.Add(720*time.Hour)) {
		t.Fatalf("an extension went beyond the limit: %d h, expires %s", victim.TTLHours, victim.ExpiresAt)
	}
	for _, n := range []string{"pr-4242", "pr-4243"} {
		if _, _, err := dev.Get(ctx, n); err == nil {
			t.Fatalf("a developer claimed %s", n)
		}
	}

	// Still working: healthy, lists, creates, provisions, and restarts a
	// node that dies.
	resp, err := client.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the hostile requests: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := dev.List(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Create(ctx, api.CreateBody{SpecYAML: fmt.Sprintf(hostileSpec, "after")}); err != nil {
		t.Fatal(err)
	}
	ready := waitState(t, dev, "after", nodeUp)
	waitState(t, dev, "victim", nodeUp)
	// The manager's /metrics counts what happened.
	resp, err = client.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`paddock_envmgr_environments{state="degraded"} 2`, `paddock_envmgr_operation_seconds_count{op="provision",result="ok"}`,
		`paddock_envmgr_api_refused_total{reason="bad_name"}`, `paddock_envmgr_api_refused_total{reason="unauthenticated"}`,
		`paddock_envmgr_api_requests_total{code="400",route="GET /v1/environments/{name}"}`, `paddock_envmgr_reconcile_errors_total`, `paddock_build_info{`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s\n%s", want, grepLines(string(metrics), "_count{"))
		}
	}

	pidFile := filepath.Join(dir, "state", "envs", "after", "node.pid")
	pid := readPID(t, pidFile)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if p, err := os.ReadFile(pidFile); err == nil {
			if np, _ := strconv.Atoi(strings.TrimSpace(string(p))); np != 0 && np != pid && alive(np) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reconciler did not restart the killed node of %s (endpoint %s)", ready.Name, ready.Endpoint)
		}
		time.Sleep(20 * time.Millisecond) // polling the provisioner's pid file
	}
}

// No feed runs here: a node that is up is truthfully degraded (its book is
// never live), never ready.
const nodeUp = envmgr.StateDegraded

func waitState(t *testing.T, c *api.Client, name string, want envmgr.State) envmgr.Environment {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var last envmgr.Environment
	_ = c.Watch(ctx, name, func(e envmgr.Environment) bool {
		last = e
		return e.State != want && e.State != envmgr.StateFailed
	})
	if last.State != want {
		t.Fatalf("%s is %s (%s), want %s", name, last.State, last.Reason, want)
	}
	return last
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestManagerOutlivesANATSOutage stops the NATS server under a running
// manager and starts it again on the same address and store: health reports
// the outage (503) and the recovery, and the manager then creates and
// provisions as before.
func TestManagerOutlivesANATSOutage(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := func() *embednats.Server {
		ns, err := embednats.Start(embednats.Options{Listen: addr, StoreDir: filepath.Join(dir, "js")})
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	ns := start()
	url := manager(t, ns, dir, "")
	c := &api.Client{BaseURL: url, Token: "dev"}
	if _, err := c.Create(t.Context(), api.CreateBody{SpecYAML: fmt.Sprintf(hostileSpec, "before")}); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "before", nodeUp)
	health := func() int {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ns.Shutdown()
	waitFor(t, "healthz 503 while NATS is down", func() bool { return health() == http.StatusServiceUnavailable })
	if _, err := c.List(t.Context()); err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("list while NATS is down: %v", err)
	}
	ns = start()
	t.Cleanup(ns.Shutdown)
	waitFor(t, "healthz 200 once NATS is back", func() bool { return health() == http.StatusOK })
	if _, err := c.Create(t.Context(), api.CreateBody{SpecYAML: fmt.Sprintf(hostileSpec, "after")}); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "after", nodeUp)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling an HTTP endpoint
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
