package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/api"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/testnode"
	"github.com/paddockhq/paddock/natsauth"
)

func TestMain(m *testing.M) {
	testnode.MaybeRun()
	os.Exit(m.Run())
}

// operatorNATS starts an operator-mode NATS server with a new authority
// under dir (the service credentials written), as the manager runs in
// production, and returns it with the authority's directory.
func operatorNATS(t *testing.T, dir string) (*embednats.Server, string) {
	t.Helper()
	authDir := filepath.Join(dir, "auth")
	auth, err := natsauth.LoadOrCreate(authDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.WriteServiceCreds(); err != nil {
		t.Fatal(err)
	}
	sc, _ := auth.Server()
	ns, err := embednats.Start(embednats.Options{StoreDir: filepath.Join(dir, "js"), Operator: &embednats.Operator{
		Claims: sc.Operator, SystemAccount: sc.SystemAccount, Accounts: sc.Accounts, ResolverDir: sc.ResolverDir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns, authDir
}

// TestNodesGetScopedCredentials runs the manager on an operator-mode server:
// the node of an environment connects with credentials minted for it, and
// destroying the environment revokes them.
func TestNodesGetScopedCredentials(t *testing.T) {
	dir := t.TempDir()
	ns, authDir := operatorNATS(t, dir)
	tokens, _ := api.NewTokens([]api.Token{{Name: "alice", Role: "developer", SHA256: api.HashToken("t")}})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{NoFeedCheck: true, NATSURL: ns.ClientURL(), Listen: "127.0.0.1:0", StateDir: filepath.Join(dir, "state"), Tokens: tokens, AuthDir: authDir,
			NodeCommand: testnode.Command, NodeReadyTimeout: 200 * time.Millisecond}, nil, func(s Started) { started <- s.APIURL })
	}()
	var url string
	select {
	case url = <-started:
	case err := <-done:
		t.Fatal(err)
	}
	c := &api.Client{BaseURL: url, Token: "t"}
	spec := `version: 1
environment: {name: scoped}
exchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]
market_data: {mode: live}
risk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}
strategy: {binary: s}
`
	if _, err := c.Create(ctx, api.CreateBody{SpecYAML: spec}); err != nil {
		t.Fatal(err)
	}
	var ready envmgr.Environment
	_ = c.Watch(ctx, "scoped", func(e envmgr.Environment) bool {
		ready = e
		return e.State != nodeUp && e.State != envmgr.StateFailed
	})
	if ready.State != nodeUp {
		t.Fatalf("environment %s: %s", ready.State, ready.Reason)
	}
	resp, err := http.Get(ready.Endpoint + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ NATS string }
	_ = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h.NATS != "CONNECTED" {
		t.Fatalf("node NATS status %q: its credentials did not work", h.NATS)
	}
	credsFile := filepath.Join(dir, "state", "envs", "scoped", "node.creds")
	if ready.CredsRef != credsFile {
		t.Fatalf("creds_ref %q, want %q", ready.CredsRef, credsFile)
	}
	expiry := func() int64 {
		raw, err := os.ReadFile(credsFile)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.ParseDecoratedJWT(raw)
		if err != nil {
			t.Fatal(err)
		}
		uc, err := jwt.DecodeUserClaims(tok)
		if err != nil {
			t.Fatal(err)
		}
		return uc.Expires
	}
	if got := expiry(); got != ready.ExpiresAt.Unix() {
		t.Fatalf("node credentials expire at %d, the environment at %d", got, ready.ExpiresAt.Unix())
	}
	// An extension re-issues the credentials with the new deadline.
	ext, err := c.Action(ctx, "scoped", "extend", 24)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for expiry() != ext.ExpiresAt.Unix() {
		if time.Now().After(deadline) {
			t.Fatalf("credentials still expire at %d after extending to %d", expiry(), ext.ExpiresAt.Unix())
		}
		time.Sleep(10 * time.Millisecond) // the reconciler re-issues asynchronously
	}

	users, err := os.ReadFile(filepath.Join(dir, "state", "envs", "scoped", "nats-users"))
	if err != nil {
		t.Fatal(err)
	}
	pubs := strings.Fields(string(users))
	if len(pubs) != 2 {
		t.Fatalf("%d users minted, want 2 (provision and extension)", len(pubs))
	}

	if _, err := c.Action(ctx, "scoped", "down", 0); err != nil {
		t.Fatal(err)
	}
	_ = c.Watch(ctx, "scoped", func(e envmgr.Environment) bool { return e.State != envmgr.StateDestroyed })
	raw, err := os.ReadFile(filepath.Join(authDir, "account.jwt"))
	if err != nil {
		t.Fatal(err)
	}
	ac, err := jwt.DecodeAccountClaims(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, pub := range pubs {
		if !ac.Revocations.IsRevoked(pub, time.Now().Add(-time.Minute)) {
			t.Fatalf("user %s of the destroyed environment was not revoked", pub)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
