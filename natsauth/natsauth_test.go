package natsauth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/internal/embednats"
)

type rig struct {
	auth *Authority
	url  string
	dir  string
}

func newRig(t *testing.T) *rig {
	dir := t.TempDir()
	a, err := LoadOrCreate(filepath.Join(dir, "auth"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := a.Server()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := embednats.Start(embednats.Options{StoreDir: filepath.Join(dir, "js"), Operator: &embednats.Operator{
		Claims: sc.Operator, SystemAccount: sc.SystemAccount, Accounts: sc.Accounts, ResolverDir: sc.ResolverDir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return &rig{auth: a, url: ns.ClientURL(), dir: dir}
}

// asyncErrs collects permission violations and other asynchronous errors.
type asyncErrs struct {
	mu   sync.Mutex
	errs []string
	c    chan string
}

func (e *asyncErrs) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err.Error())
	e.mu.Unlock()
	select {
	case e.c <- err.Error():
	default:
	}
}

func (r *rig) connect(t *testing.T, u User, extra ...nats.Option) (*nats.Conn, *asyncErrs, string) {
	t.Helper()
	creds, pub, err := r.auth.Creds(u)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(r.dir, u.Name+".creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	ae := &asyncErrs{c: make(chan string, 16)}
	opts := append([]nats.Option{nats.UserCredentials(path), nats.ErrorHandler(ae.handler), nats.MaxReconnects(0)}, extra...)
	nc, err := nats.Connect(r.url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", u.Name, err)
	}
	t.Cleanup(nc.Close)
	return nc, ae, pub
}

func (e *asyncErrs) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-e.c:
			if strings.Contains(strings.ToLower(got), strings.ToLower(want)) {
				return
			}
		case <-deadline:
			t.Fatalf("no async error containing %q; got %v", want, e.errs)
		}
	}
}

func TestEnvironmentUserScope(t *testing.T) {
	r := newRig(t)
	feed, _, _ := r.connect(t, FeedUser())
	mgr, _, _ := r.connect(t, ManagerUser())
	u, err := EnvUser("alpha", []Instrument{{"binance", "btcusdt"}}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	env, errs, _ := r.connect(t, u, nats.CustomInboxPrefix(InboxPrefix("alpha")))

	// Declared instrument: allowed, and data flows.
	trades, err := env.SubscribeSync("market.data.binance.btcusdt.trades")
	if err != nil {
		t.Fatal(err)
	}
	_ = env.Flush()
	if err := feed.Publish("market.data.binance.btcusdt.trades", []byte("t")); err != nil {
		t.Fatal(err)
	}
	if _, err := trades.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("declared instrument: %v", err)
	}

	// Undeclared instrument and another environment's prefix: refused.
	if _, err := env.SubscribeSync("market.data.binance.ethusdt.trades"); err != nil {
		t.Fatal(err)
	}
	errs.wait(t, "permissions violation for subscription to \"market.data.binance.ethusdt.trades\"")
	if _, err := env.SubscribeSync("env.beta.>"); err != nil {
		t.Fatal(err)
	}
	errs.wait(t, "permissions violation for subscription to \"env.beta.>\"")
	if _, err := env.SubscribeSync(">"); err != nil {
		t.Fatal(err)
	}
	errs.wait(t, "permissions violation for subscription to \">\"")

	// Publishing: its own prefix yes, another's no.
	orders, _ := mgr.SubscribeSync("env.>")
	_ = mgr.Flush()
	_ = env.Publish("env.alpha.orders", []byte("o"))
	if m, err := orders.NextMsg(5 * time.Second); err != nil || m.Subject != "env.alpha.orders" {
		t.Fatalf("own prefix: %v %v", m, err)
	}
	_ = env.Publish("env.beta.orders", []byte("x"))
	errs.wait(t, "permissions violation for publish to \"env.beta.orders\"")
	_ = env.Publish("market.data.binance.btcusdt.trades", []byte("spoof"))
	errs.wait(t, "permissions violation for publish to \"market.data.binance.btcusdt.trades\"")

	// Snapshot requests for its instruments work, replies come to its own inbox.
	if _, err := feed.Subscribe("market.snapshot.>", func(m *nats.Msg) { _ = m.Respond([]byte("snap")) }); err != nil {
		t.Fatal(err)
	}
	_ = feed.Flush()
	if m, err := env.Request("market.snapshot.binance.btcusdt", nil, 5*time.Second); err != nil || string(m.Data) != "snap" {
		t.Fatalf("snapshot request: %v %v", m, err)
	}
}

func TestEnvironmentUserExpires(t *testing.T) {
	r := newRig(t)
	u, _ := EnvUser("brief", nil, time.Now().Add(2*time.Second))
	closed := make(chan struct{})
	nc, _, _ := r.connect(t, u, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if !nc.IsConnected() {
		t.Fatal("not connected")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("connection still open 8s after its JWT expired")
	}
	if err := nc.LastError(); err == nil || !strings.Contains(strings.ToLower(err.Error()), "expired") {
		t.Logf("closed with %v", err)
	}
	// A JWT that has expired cannot connect at all.
	creds, _, _ := r.auth.Creds(User{Name: "stale", Expires: time.Now().Add(-time.Minute)})
	path := filepath.Join(r.dir, "stale.creds")
	_ = os.WriteFile(path, creds, 0o600)
	if _, err := nats.Connect(r.url, nats.UserCredentials(path), nats.MaxReconnects(0)); err == nil {
		t.Fatal("an expired user connected")
	}
}

func TestRevokeClosesConnection(t *testing.T) {
	r := newRig(t)
	sys, _, _ := r.connect(t, SystemUser())
	u, _ := EnvUser("doomed", nil, time.Now().Add(time.Hour))
	closed := make(chan struct{})
	env, _, pub := r.connect(t, u, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if !env.IsConnected() {
		t.Fatal("not connected")
	}
	if err := r.auth.Revoke(t.Context(), sys, pub); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("revoked user still connected")
	}
	// The revocation survives a restart of the authority (kept in account.jwt).
	again, err := LoadOrCreate(filepath.Join(r.dir, "auth"))
	if err != nil {
		t.Fatal(err)
	}
	ac, _ := again.accountClaims()
	if !ac.Revocations.IsRevoked(pub, time.Now().Add(-time.Minute)) {
		t.Fatal("revocation lost on reload")
	}
}

func TestWrongCredentialsRefused(t *testing.T) {
	r := newRig(t)
	other, err := LoadOrCreate(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	creds, _, _ := other.Creds(FeedUser())
	path := filepath.Join(r.dir, "foreign.creds")
	_ = os.WriteFile(path, creds, 0o600)
	_, err = nats.Connect(r.url, nats.UserCredentials(path), nats.MaxReconnects(0))
	if err == nil || !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("credentials from another authority: %v", err)
	}
	if _, err := nats.Connect(r.url, nats.MaxReconnects(0)); err == nil {
		t.Fatal("anonymous connection accepted in operator mode")
	}
}
