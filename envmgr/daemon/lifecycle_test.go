package daemon

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr/api"
	"github.com/paddockhq/paddock/envmgr/slack"
	"github.com/paddockhq/paddock/internal/testnode"
)

// TestLifecycleWiring runs the whole manager with notifications and the
// slash command configured, on an operator-mode server with real local
// nodes, and checks what a developer and an admin see: notices at a real
// webhook receiver on loopback, an extension through a signed slash command
// (audited as via slack, reaching the node's deadline), and the orphan
// sweeper's dry run through the API (admins only).
func TestLifecycleWiring(t *testing.T) {
	dir := t.TempDir()
	ns, authDir := operatorNATS(t, dir)
	got := make(chan string, 64)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Text string }
		_ = json.NewDecoder(r.Body).Decode(&m)
		got <- m.Text
		_, _ = w.Write([]byte("ok"))
	}))
	defer hook.Close()
	const secret = "0123456789abcdef0123456789abcdef"
	secretFile := filepath.Join(dir, "slack-secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, _ := api.NewTokens([]api.Token{{Name: "alice", Role: "developer", SHA256: api.HashToken("a")}, {Name: "root", Role: "admin", SHA256: api.HashToken("r")}})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan string, 1)
	done := make(chan error, 1)
	stateDir := filepath.Join(dir, "state")
	go func() {
		done <- Run(ctx, Config{NoFeedCheck: true, NATSURL: ns.ClientURL(), Listen: "127.0.0.1:0", StateDir: stateDir, Tokens: tokens, AuthDir: authDir,
			NodeCommand: testnode.Command, NodeReadyTimeout: 200 * time.Millisecond, Lifecycle: Lifecycle{Notify: &slack.Config{
				Default: slack.Route{Webhook: hook.URL}, SigningSecretFile: secretFile,
				Owners: map[string]slack.Owner{"alice": {SlackUser: "U0ALICE", TimeZone: "Europe/London"}}}}},
			nil, func(s Started) { started <- s.APIURL })
	}()
	var base string
	select {
	case base = <-started:
	case err := <-done:
		t.Fatal(err)
	}
	next := func(want string) {
		t.Helper()
		for {
			select {
			case m := <-got:
				if strings.Contains(m, want) {
					return
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("no %q notification", want)
			}
		}
	}
	alice := &api.Client{BaseURL: base, Token: "a", Via: "cli"}
	if _, err := alice.Create(ctx, api.CreateBody{SpecYAML: `version: 1
environment: {name: wired}
exchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]
market_data: {mode: live}
risk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}
strategy: {binary: s}
ttl_hours: 8
`}); err != nil {
		t.Fatal(err)
	}
	next("Environment wired requested")
	next("Environment wired is degraded") // no feed runs here: truthfully not working
	e, _, err := alice.Get(ctx, "wired")
	if err != nil {
		t.Fatal(err)
	}

	// Extend through Slack, signed as Slack signs.
	body := url.Values{"command": {"/paddock"}, "text": {"extend wired 2"}, "user_id": {"U0ALICE"}}.Encode()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/slack/command", strings.NewReader(body))
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(reply), "extended by 2h") {
		t.Fatalf("slash command: %d %s", resp.StatusCode, reply)
	}
	next("Environment wired extended")
	want := e.ExpiresAt.Add(2 * time.Hour).UTC().Format(time.RFC3339)
	// The node's dead man's switch hears of it: the reconciler rewrites its
	// deadline file.
	deadline := filepath.Join(stateDir, "envs", "wired", "deadline")
	waitUntil(t, "the node's deadline to move", func() bool {
		raw, _ := os.ReadFile(deadline)
		return strings.TrimSpace(string(raw)) == want
	})
	audit, err := alice.Audit(ctx, "wired")
	if err != nil {
		t.Fatal(err)
	}
	var vias []string
	for _, a := range audit {
		if a.Action == "create" || a.Action == "extend" {
			vias = append(vias, a.Action+" via "+a.Via)
		}
	}
	if strings.Join(vias, ", ") != "create via cli, extend via slack" {
		t.Fatalf("audited channels: %v", vias)
	}

	// The sweeper, through the API: admins only, a dry run by default.
	if err := os.MkdirAll(filepath.Join(stateDir, "envs", "leaked"), 0o700); err != nil {
		t.Fatal(err)
	}
	var se *api.StatusError
	if _, err := alice.Orphans(ctx); !errors.As(err, &se) || se.Status != 403 {
		t.Fatalf("a developer listed orphans: %v", err)
	}
	root := &api.Client{BaseURL: base, Token: "r"}
	rep, err := root.Orphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Orphans) != 1 || rep.Orphans[0].Env != "leaked" || rep.Orphans[0].Why != "there is no environment record named leaked" {
		t.Fatalf("orphans %+v", rep.Orphans)
	}
	if rep, err := root.CleanOrphans(ctx); err != nil || len(rep.Deleted) != 0 {
		t.Fatalf("a cleanup within the grace period deleted %+v (%v)", rep.Deleted, err)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`paddock_envmgr_notifications_sent_total{kind="extended"} 1`, `paddock_envmgr_orphans{kind="node-dir"} 1`} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if _, err := root.Action(ctx, "wired", "down", 0); err != nil {
		t.Fatal(err)
	}
	next("Environment wired destroyed")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond (the manager works on its own goroutines).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
