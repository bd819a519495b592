package local_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/local"
	"github.com/paddockhq/paddock/envmgr/natskv"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/internal/testnode"
)

func TestMain(m *testing.M) {
	testnode.MaybeRun()
	os.Exit(m.Run())
}

var nodeCommand = testnode.Command

const devEnv = `version: 1
environment:
  name: %s
exchanges:
  - {name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}
market_data: {mode: live}
risk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}
strategy: {binary: strategies/x}
ttl_hours: %d
`

type rig struct {
	store    *natskv.Store
	mgr      *envmgr.Manager
	natsURL  string
	stateDir string
	clock    *fakeClock
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newRig(t *testing.T) *rig { return newRigB(t) }

func newRigB(t testing.TB) *rig {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	nc := natstest.Connect(t, ns.ClientURL())
	store, err := natskv.Open(context.Background(), nc, natskv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Now()}
	return &rig{store: store, mgr: envmgr.NewManager(store, clock.Now, nil), natsURL: ns.ClientURL(), stateDir: t.TempDir(), clock: clock}
}

func (r *rig) provisioner(t *testing.T) *local.Provisioner { return r.provisionerB(t) }

func (r *rig) provisionerB(t testing.TB) *local.Provisioner {
	p, err := local.New(local.Config{StateDir: r.stateDir, NATSURL: r.natsURL, Command: nodeCommand, ReadyTimeout: upTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.StopAll(context.Background()) })
	return p
}

// No feed runs in these tests, so a node's book is never live: a node that is
// up is truthfully degraded ("book binance:btcusdt is not live"), never
// ready, and the provisioner need not wait long for it to work.
const (
	nodeUp    = envmgr.StateDegraded
	upTimeout = 200 * time.Millisecond
)

// runReconciler runs a reconciler until the returned stop is called.
func (r *rig) runReconciler(t *testing.T, p envmgr.Provisioner, tick <-chan time.Time) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- envmgr.NewReconciler(r.store, p, r.clock.Now, nil).Run(ctx, tick) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("reconciler: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (r *rig) waitState(t *testing.T, name string, want envmgr.State) envmgr.Environment {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		e, _, err := r.store.Get(t.Context(), name)
		if err == nil && e.State == want {
			return e
		}
		if err == nil && e.State == envmgr.StateFailed && want != envmgr.StateFailed {
			t.Fatalf("%s failed while %s: %s", name, e.FailedAt, e.Reason)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s (err %v), want %s", name, e.State, err, want)
		}
		time.Sleep(5 * time.Millisecond) // polling the store: the reconciler works asynchronously
	}
}

func pidOf(t *testing.T, dir, name string) int {
	raw, err := os.ReadFile(filepath.Join(dir, name, "node.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	return pid
}

// alive reports whether pid runs; a zombie (exited, not yet reaped by the
// goroutine waiting for it) counts as gone.
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name: "pid (comm) S ...".
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func healthy(t *testing.T, endpoint string) bool {
	resp, err := http.Get(endpoint + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

var alice = envmgr.Actor{Name: "alice"}

func TestLifecycleWithLocalNodes(t *testing.T) {
	r := newRig(t)
	p := r.provisioner(t)
	r.runReconciler(t, p, nil)

	start := time.Now()
	if _, err := r.mgr.Create(t.Context(), alice, envmgr.CreateRequest{SpecYAML: fmt.Appendf(nil, devEnv, "life", 48), CommitSHA: "abc123"}); err != nil {
		t.Fatal(err)
	}
	e := r.waitState(t, "life", nodeUp)
	t.Logf("create -> node up in %v", time.Since(start))
	if e.Health == nil || e.Health.Ready || e.Health.Books != 1 || !strings.Contains(e.Reason, "book binance:btcusdt is not live") {
		t.Fatalf("a node without market data is not degraded with the reason: %q %+v", e.Reason, e.Health)
	}
	if !healthy(t, e.Endpoint) {
		t.Fatalf("ready but %s/healthz is not healthy", e.Endpoint)
	}
	pid1 := pidOf(t, r.stateDir, "life")

	// Another developer can neither see nor stop it: to them it does not exist.
	bob := envmgr.Actor{Name: "bob"}
	if _, err := r.mgr.Stop(t.Context(), bob, "life"); !errors.Is(err, envmgr.ErrNotFound) {
		t.Fatalf("bob stopping alice's environment: %v", err)
	}

	if _, err := r.mgr.Stop(t.Context(), alice, "life"); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, "life", envmgr.StateStopped)
	if alive(pid1) {
		t.Fatal("node still running after stop")
	}
	if _, err := r.mgr.Start(t.Context(), alice, "life"); err != nil {
		t.Fatal(err)
	}
	e = r.waitState(t, "life", nodeUp)
	pid2 := pidOf(t, r.stateDir, "life")
	if pid2 == pid1 || !alive(pid2) || !healthy(t, e.Endpoint) {
		t.Fatalf("restart: pid %d -> %d, healthy %v", pid1, pid2, healthy(t, e.Endpoint))
	}

	ext, err := r.mgr.Extend(t.Context(), alice, "life", 0)
	if err != nil || ext.TTLHours != 72 {
		t.Fatalf("extend: %+v %v", ext, err)
	}
	// The reconciler re-issues credentials for the new deadline; let it
	// settle so the next request does not race its write.
	for {
		e, _, _ := r.store.Get(t.Context(), "life")
		if e.CredsExpireAt.Equal(e.ExpiresAt) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling the store for the asynchronous reconciler
	}
	if e, err := r.mgr.Extend(t.Context(), alice, "life", 48); err != nil || e.PendingTTL == nil || e.TTLHours != 72 {
		t.Fatalf("extending past 96h without an admin is a request: %+v %v", e, err)
	}
	if _, err := r.mgr.Extend(t.Context(), alice, "life", 720); !errors.Is(err, envmgr.ErrForbidden) {
		t.Fatalf("extending past the absolute 720h: %v", err)
	}

	if _, err := r.mgr.Destroy(t.Context(), alice, "life"); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, "life", envmgr.StateDestroyed)
	if alive(pid2) {
		t.Fatal("node still running after destroy")
	}
	if _, err := os.Stat(filepath.Join(r.stateDir, "life")); !os.IsNotExist(err) {
		t.Fatalf("node directory left behind: %v", err)
	}

	// The reconciler appends a transition's audit record just after it
	// writes the state: wait for the last one.
	var audit []envmgr.AuditRecord
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		if audit, err = r.store.Audit(t.Context(), "life"); err != nil {
			t.Fatal(err)
		}
		if n := len(audit); n > 0 && audit[n-1].To == envmgr.StateDestroyed || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling the audit stream
	}
	var trail []string
	for _, a := range audit {
		trail = append(trail, a.Actor+":"+a.Action+":"+string(a.To))
	}
	got := strings.Join(trail, " ")
	for _, want := range []string{"alice:create:requested", "reconciler:transition:provisioning", "reconciler:transition:degraded",
		"bob:refused:", "alice:stop:", "reconciler:transition:stopped", "alice:extend:", "alice:refused:", "reconciler:transition:destroyed"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit trail lacks %s:\n%s", want, got)
		}
	}
	if audit[0].CommitSHA != "abc123" {
		t.Errorf("create record lacks the commit SHA: %+v", audit[0])
	}
}

// crashAfterProvision provisions for real, then "crashes" the reconciler
// before it can record that the environment is ready.
type crashAfterProvision struct {
	envmgr.Provisioner
	crash func()
}

func (c crashAfterProvision) Provision(ctx context.Context, e envmgr.Environment, s *spec.Spec) (string, error) {
	if _, err := c.Provisioner.Provision(ctx, e, s); err != nil {
		return "", err
	}
	c.crash()
	// The manager is dead: nothing after this point of the step happens. Its
	// context ends with the reconciler's drain deadline.
	<-ctx.Done()
	return "", ctx.Err()
}

// TestCrashMidProvisionConverges: the manager dies between starting the node
// and recording it; a new manager (new provisioner, new reconciler) finds the
// environment provisioning, adopts the running node and reaches ready with
// exactly one node.
func TestCrashMidProvisionConverges(t *testing.T) {
	r := newRig(t)
	ctx, crash := context.WithCancel(context.Background())
	first := r.provisioner(t)
	done := make(chan error, 1)
	go func() {
		rec := envmgr.NewReconciler(r.store, crashAfterProvision{first, crash}, r.clock.Now, nil)
		rec.Drain = 10 * time.Millisecond
		done <- rec.Run(ctx, nil)
	}()
	if _, err := r.mgr.Create(t.Context(), alice, envmgr.CreateRequest{SpecYAML: fmt.Appendf(nil, devEnv, "crashy", 24)}); err != nil {
		t.Fatal(err)
	}
	<-done
	e, _, _ := r.store.Get(t.Context(), "crashy")
	if e.State != envmgr.StateProvisioning {
		t.Fatalf("after the crash the environment is %s, want provisioning", e.State)
	}
	pid := pidOf(t, r.stateDir, "crashy")
	if !alive(pid) {
		t.Fatal("the crashed manager's node is not running")
	}

	second, err := local.New(local.Config{StateDir: r.stateDir, NATSURL: r.natsURL, Command: nodeCommand, ReadyTimeout: upTimeout})
	if err != nil {
		t.Fatal(err)
	}
	r.runReconciler(t, second, nil)
	e = r.waitState(t, "crashy", nodeUp)
	if got := pidOf(t, r.stateDir, "crashy"); got != pid || !healthy(t, e.Endpoint) {
		t.Fatalf("node pid %d after restart, was %d: provisioned twice", got, pid)
	}
	_ = second.Destroy(context.Background(), "crashy")
	if alive(pid) {
		t.Fatal("the adopted node survived destroy")
	}
}

// TestSupervisionRestartsDeadNode: a node that dies is started again on the
// next tick.
func TestSupervisionRestartsDeadNode(t *testing.T) {
	r := newRig(t)
	tick := make(chan time.Time)
	r.runReconciler(t, r.provisioner(t), tick)
	if _, err := r.mgr.Create(t.Context(), alice, envmgr.CreateRequest{SpecYAML: fmt.Appendf(nil, devEnv, "fragile", 24)}); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, "fragile", nodeUp)
	pid := pidOf(t, r.stateDir, "fragile")
	_ = syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(15 * time.Second)
	for {
		tick <- time.Now()
		if p := pidOf(t, r.stateDir, "fragile"); p != pid && alive(p) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dead node was not restarted")
		}
		time.Sleep(20 * time.Millisecond) // between ticks; the restart happens on a tick
	}
}

// TestTTLExpiryDestroys drives expiry with an injected clock and tick.
func TestTTLExpiryDestroys(t *testing.T) {
	r := newRig(t)
	tick := make(chan time.Time, 1)
	r.runReconciler(t, r.provisioner(t), tick)
	if _, err := r.mgr.Create(t.Context(), alice, envmgr.CreateRequest{SpecYAML: fmt.Appendf(nil, devEnv, "brief", 1)}); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, "brief", nodeUp)
	r.clock.Advance(61 * time.Minute)
	tick <- r.clock.Now()
	r.waitState(t, "brief", envmgr.StateDestroyed)
	audit, _ := r.store.Audit(t.Context(), "brief")
	found := false
	for _, a := range audit {
		found = found || a.Action == "expire"
	}
	if !found {
		t.Fatal("no expire record in the audit log")
	}
}

// TestWaitingForANodeIsAState: with a Wake hook (the manager's reconciler),
// Provision starts the node and answers envmgr.ErrWaiting at once instead of
// holding the caller while the node comes up; a watcher wakes the
// environment when the node has decided, and the next call returns its
// endpoint (without starting a second node).
func TestWaitingForANodeIsAState(t *testing.T) {
	r := newRig(t)
	woken := make(chan string, 4)
	p, err := local.New(local.Config{StateDir: r.stateDir, NATSURL: r.natsURL, Command: nodeCommand, ReadyTimeout: time.Second,
		Wake: func(name string) { woken <- name }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.StopAll(context.Background()) })
	e, err := r.mgr.Create(t.Context(), alice, envmgr.CreateRequest{SpecYAML: []byte(fmt.Sprintf(devEnv, "waits", 1))})
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse([]byte(e.SpecYAML), spec.Options{Now: e.CreatedAt, TTLApproved: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Provision(t.Context(), e, s); !errors.Is(err, envmgr.ErrWaiting) {
		t.Fatalf("first Provision: %v, want ErrWaiting", err)
	}
	pid := pidOf(t, r.stateDir, "waits")
	select {
	case name := <-woken:
		if name != "waits" {
			t.Fatalf("woke %q", name)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the watcher never woke the environment")
	}
	endpoint, err := p.Provision(t.Context(), e, s)
	if err != nil || !healthy(t, endpoint) {
		t.Fatalf("after the wake-up: %q %v", endpoint, err)
	}
	if got := pidOf(t, r.stateDir, "waits"); got != pid || !alive(pid) {
		t.Fatalf("node pid %d -> %d: a second node was started", pid, got)
	}
}
