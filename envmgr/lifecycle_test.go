package envmgr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/natskv"
	"github.com/paddockhq/paddock/envmgr/slack"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
)

// receiver is a webhook receiver on loopback that records every message it
// accepts; while down it answers 500 (and records nothing).
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []slackgo.WebhookMessage
	got  chan slackgo.WebhookMessage
	down atomic.Bool
	hits atomic.Int32
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan slackgo.WebhookMessage, 1024)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		if r.down.Load() {
			http.Error(w, "unavailable", http.StatusInternalServerError)
			return
		}
		var m slackgo.WebhookMessage
		if err := json.NewDecoder(req.Body).Decode(&m); err != nil {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
		r.got <- m
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.msgs) }

// next waits for the next message.
func (r *receiver) next(t *testing.T) slackgo.WebhookMessage {
	t.Helper()
	select {
	case m := <-r.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no notification arrived")
		return slackgo.WebhookMessage{}
	}
}

// text is everything a message says.
func text(m slackgo.WebhookMessage) string {
	raw, _ := json.Marshal(m.Blocks)
	return m.Text + " " + string(raw)
}

// lifecycleRig is a manager and reconcilers over a real JetStream store,
// real webhook notifiers posting to a loopback receiver, and one fake clock.
type lifecycleRig struct {
	t     *testing.T
	url   string
	store *natskv.Store
	clk   *clock.Fake
	recv  *receiver
	mgr   *envmgr.Manager
	prov  *quickProvisioner
}

// quickProvisioner is a stand-in provisioner (the lifecycle under test is
// the reconciler's, not a backend's): it provisions at once and fails
// Destroy while failDestroy > 0.
type quickProvisioner struct {
	noRefresh
	failDestroy atomic.Int32
	destroys    atomic.Int32
}

func (p *quickProvisioner) Destroy(context.Context, string) error {
	p.destroys.Add(1)
	if p.failDestroy.Add(-1) >= 0 {
		return errors.New("terraform destroy: the API timed out")
	}
	return nil
}

func newLifecycleRig(t *testing.T, start time.Time, owners map[string]slack.Owner) *lifecycleRig {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	g := &lifecycleRig{t: t, url: ns.ClientURL(), clk: clock.NewFake(start), recv: newReceiver(t), prov: &quickProvisioner{}}
	g.store = g.openStore()
	g.mgr = envmgr.NewManager(g.store, g.clk.Now, nil)
	return g
}

func (g *lifecycleRig) openStore() *natskv.Store {
	s, err := natskv.Open(g.t.Context(), natstest.Connect(g.t, g.url), natskv.Options{})
	if err != nil {
		g.t.Fatal(err)
	}
	return s
}

// notifier starts a webhook notifier on the rig's clock.
func (g *lifecycleRig) notifier(owners map[string]slack.Owner) *slack.Notifier {
	n, err := slack.New(slack.Config{Default: slack.Route{Webhook: g.recv.srv.URL}, Owners: owners}, slack.Options{Clock: g.clk})
	if err != nil {
		g.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = n.Run(ctx); close(done) }()
	g.t.Cleanup(func() { cancel(); <-done })
	return n
}

// reconciler is one manager replica's reconciler over its own connection.
func (g *lifecycleRig) reconciler(name string, n envmgr.Notifier) *envmgr.Reconciler {
	r := envmgr.NewReconciler(g.openStore(), g.prov, g.clk.Now, nil)
	r.Replica, r.Notify = name, n
	return r
}

// settle steps env until nothing more is due now.
func settle(t *testing.T, r *envmgr.Reconciler, env string) {
	t.Helper()
	for i := 0; ; i++ {
		more, err := r.Step(t.Context(), env)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			return
		}
		if i > 50 {
			t.Fatal("the reconciler does not settle")
		}
	}
}

func (g *lifecycleRig) create(name string, ttl int) envmgr.Environment {
	y := strings.Replace(spec1, "name: drained", "name: "+name, 1) + fmt.Sprintf("ttl_hours: %d\n", ttl)
	e, err := g.mgr.Create(g.t.Context(), envmgr.Actor{Name: "alice", Via: "cli"}, envmgr.CreateRequest{SpecYAML: []byte(y)})
	if err != nil {
		g.t.Fatal(err)
	}
	return e
}

// waitSent waits until the warning at before is recorded sent for env's
// deadline, watching the store.
func (g *lifecycleRig) waitSent(env string, before time.Duration) envmgr.Warning {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(g.t.Context(), 10*time.Second)
	defer cancel()
	ch, err := g.store.Watch(ctx)
	if err != nil {
		g.t.Fatal(err)
	}
	for e := range ch {
		if e.Name != env {
			continue
		}
		for _, w := range e.Warnings {
			if w.Before == int64(before/time.Second) && w.Deadline.Equal(e.ExpiresAt) && !w.SentAt.IsZero() {
				return w
			}
		}
	}
	g.t.Fatalf("the %s warning of %s was never recorded sent", before, env)
	return envmgr.Warning{}
}

// TestWarningsAtEachThresholdAndExtensionRearms walks one environment's
// life on the fake clock: nothing before TTL-4h, one warning at TTL-4h, one
// at TTL-1h, none repeated by later passes; an extension re-arms both for
// the new deadline; the deadline destroys it and says why.
func TestWarningsAtEachThresholdAndExtensionRearms(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	g := newLifecycleRig(t, start, nil)
	n := g.notifier(nil)
	r := g.reconciler("a", n)
	g.mgr.SetNotifier(n)
	e := g.create("warned", 24)
	if m := g.recv.next(t); !strings.Contains(text(m), "requested") {
		t.Fatalf("created: %s", text(m))
	}
	settle(t, r, e.Name)
	if m := g.recv.next(t); !strings.Contains(m.Text, "ready") {
		t.Fatalf("want ready, got %s", m.Text)
	}
	steps := []struct {
		at       time.Duration // since creation
		want     string        // a warning's title, or ""
		wantSent time.Duration
	}{
		{19*time.Hour + 59*time.Minute, "", 0},
		{20 * time.Hour, "expires in 4h", 4 * time.Hour},
		{20*time.Hour + 30*time.Minute, "", 0},
		{22*time.Hour + 59*time.Minute, "", 0},
		{23 * time.Hour, "expires in 1h", time.Hour},
		{23*time.Hour + 59*time.Minute, "", 0},
	}
	for _, s := range steps {
		g.clk.Advance(start.Add(s.at).Sub(g.clk.Now()))
		before := g.recv.count()
		settle(t, r, e.Name)
		if s.want == "" {
			continue
		}
		m := g.recv.next(t)
		if !strings.Contains(m.Text, s.want) {
			t.Fatalf("at +%s: got %q, want %q", s.at, m.Text, s.want)
		}
		body := text(m)
		for _, must := range []string{"Tue 2026-12-08 09:00 UTC", "TTL of 24h", "paddock env extend warned -hours 24"} {
			if !strings.Contains(body, must) {
				t.Fatalf("the warning does not say %q: %s", must, body)
			}
		}
		g.waitSent(e.Name, s.wantSent)
		if g.recv.count() != before+1 {
			t.Fatalf("at +%s: %d messages, want one more than %d", s.at, g.recv.count(), before)
		}
	}
	// Passes after both warnings send nothing more.
	settle(t, r, e.Name)

	// Extending re-arms both warnings for the new deadline.
	ext, err := g.mgr.Extend(t.Context(), envmgr.Actor{Name: "alice", Via: "slack"}, e.Name, 24)
	if err != nil {
		t.Fatal(err)
	}
	if m := g.recv.next(t); !strings.Contains(m.Text, "extended") || !strings.Contains(text(m), "via slack") {
		t.Fatalf("extension notice: %s", text(m))
	}
	g.clk.Advance(ext.ExpiresAt.Add(-4 * time.Hour).Sub(g.clk.Now()))
	settle(t, r, e.Name)
	if m := g.recv.next(t); !strings.Contains(m.Text, "expires in 4h") || !strings.Contains(text(m), "Wed 2026-12-09 09:00 UTC") {
		t.Fatalf("re-armed warning: %s", text(m))
	}
	g.waitSent(e.Name, 4*time.Hour)

	// The deadline destroys it; the notice says what and why.
	g.clk.Advance(ext.ExpiresAt.Sub(g.clk.Now()))
	settle(t, r, e.Name)
	m := g.recv.next(t)
	if !strings.Contains(m.Text, "destroyed") || !strings.Contains(text(m), "TTL of 48h ended") {
		t.Fatalf("destroy notice: %s", text(m))
	}
	audit, _ := g.store.Audit(t.Context(), e.Name)
	var ext1 string
	for _, a := range audit {
		if a.Action == "extend" {
			ext1 = a.Detail + " via=" + a.Via
		}
	}
	if !strings.Contains(ext1, "+24h by alice via slack") || !strings.Contains(ext1, "new deadline 2026-12-09T09:00:00Z") || !strings.Contains(ext1, "via=slack") {
		t.Fatalf("extension audit: %q", ext1)
	}
}

// TestWarningTimesAcrossADSTChange: offsets are absolute, so a deadline just
// after a DST change in the owner's zone is warned exactly 4h before it, and
// the owner reads the deadline in their zone's new offset.
func TestWarningTimesAcrossADSTChange(t *testing.T) {
	// New York moves to EDT at 2026-03-08 07:00 UTC.
	start := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	owners := map[string]slack.Owner{"alice": {TimeZone: "America/New_York"}}
	g := newLifecycleRig(t, start, owners)
	n := g.notifier(owners)
	r := g.reconciler("a", n)
	e := g.create("dst", 24) // deadline 2026-03-08 12:00 UTC = 08:00 EDT
	settle(t, r, e.Name)
	g.recv.next(t) // ready
	g.clk.Advance(20*time.Hour - time.Second)
	settle(t, r, e.Name)
	if got, _, _ := g.store.Get(t.Context(), e.Name); len(got.Warnings) != 0 {
		t.Fatalf("warned early: %+v", got.Warnings)
	}
	g.clk.Advance(time.Second) // 08:00 UTC = 04:00 EDT, 4h before
	settle(t, r, e.Name)
	body := text(g.recv.next(t))
	for _, must := range []string{"Sun 2026-03-08 12:00 UTC", "08:00 EDT America/New_York"} {
		if !strings.Contains(body, must) {
			t.Fatalf("warning does not say %q: %s", must, body)
		}
	}
}

// blackHole is a stand-in for a manager that crashed after claiming a
// warning and before sending it: it takes the event and never answers.
type blackHole struct{ took atomic.Int32 }

func (b *blackHole) Notify(envmgr.Event, func(error)) { b.took.Add(1) }

// TestCrashBetweenClaimAndSend: the claim a crashed replica left behind
// keeps other replicas off the warning for the lease, then any replica
// claims it again and the warning is delivered once.
func TestCrashBetweenClaimAndSend(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	g := newLifecycleRig(t, start, nil)
	crashed := &blackHole{}
	a := g.reconciler("crashed", crashed)
	b := g.reconciler("survivor", g.notifier(nil))
	e := g.create("crash", 24)
	settle(t, b, e.Name)
	g.recv.next(t) // ready
	g.clk.Advance(20 * time.Hour)
	settle(t, a, e.Name)
	if crashed.took.Load() != 1 {
		t.Fatalf("the crashing replica took %d warnings", crashed.took.Load())
	}
	g.clk.Advance(envmgr.DefaultLease - time.Second)
	settle(t, b, e.Name)
	if g.recv.count() != 1 {
		t.Fatal("the survivor sent a warning another replica holds")
	}
	g.clk.Advance(time.Second)
	settle(t, b, e.Name)
	if m := g.recv.next(t); !strings.Contains(m.Text, "expires in 3h50m") {
		t.Fatalf("want the reclaimed warning, got %s", m.Text)
	}
	w := g.waitSent(e.Name, 4*time.Hour)
	if w.ClaimedBy != "survivor" {
		t.Fatalf("claimed by %s", w.ClaimedBy)
	}
	settle(t, b, e.Name)
	settle(t, a, e.Name)
	if g.recv.count() != 2 || crashed.took.Load() != 1 {
		t.Fatalf("%d messages and %d to the crashed replica after more passes", g.recv.count(), crashed.took.Load())
	}
}

// TestTwoReplicasRaceOnOneDeadline: two replicas (two connections, one
// store) pass over the same environments at the same instant; each
// environment gets exactly one warning.
func TestTwoReplicasRaceOnOneDeadline(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	g := newLifecycleRig(t, start, nil)
	n := g.notifier(nil)
	reps := []*envmgr.Reconciler{g.reconciler("a", n), g.reconciler("b", n)}
	const envs = 16
	for i := range envs {
		e := g.create(fmt.Sprintf("race-%d", i), 24)
		settle(t, reps[0], e.Name)
	}
	for range envs {
		g.recv.next(t) // ready
	}
	g.clk.Advance(20 * time.Hour)
	var wg sync.WaitGroup
	for _, r := range reps {
		for i := range envs {
			wg.Go(func() { settle(t, r, fmt.Sprintf("race-%d", i)) })
		}
	}
	wg.Wait()
	for i := range envs {
		g.waitSent(fmt.Sprintf("race-%d", i), 4*time.Hour)
	}
	for _, r := range reps {
		for i := range envs {
			settle(t, r, fmt.Sprintf("race-%d", i))
		}
	}
	if got := g.recv.count(); got != 2*envs {
		t.Fatalf("%d messages, want %d ready and %d warnings", got, envs, envs)
	}
}

// TestReceiverDownThenUp: a warning whose receiver is down is retried with
// backoff on the injected clock and delivered once when it comes back.
func TestReceiverDownThenUp(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	g := newLifecycleRig(t, start, nil)
	r := g.reconciler("a", g.notifier(nil))
	e := g.create("flaky", 24)
	settle(t, r, e.Name)
	g.recv.next(t)
	g.recv.down.Store(true)
	g.clk.Advance(23 * time.Hour)
	settle(t, r, e.Name)
	// Three failed attempts, each followed by a backoff timer.
	for want := int32(2); want <= 4; want++ {
		if !g.clk.WaitFor(t.Context(), func(armed int) bool { return armed > 0 && g.recv.hits.Load() >= want }) {
			t.Fatal("no retry timer")
		}
		if want == 4 {
			g.recv.down.Store(false)
		}
		d, _ := g.clk.Next()
		g.clk.Advance(d)
	}
	if m := g.recv.next(t); !strings.Contains(m.Text, "expires in 1h") {
		t.Fatalf("got %s", m.Text)
	}
	g.waitSent(e.Name, time.Hour)
	settle(t, r, e.Name)
	if g.recv.count() != 2 {
		t.Fatalf("%d messages, want ready and one warning", g.recv.count())
	}
}

// TestDestroyFailuresAreRetriedAndSurfaced: a destroy that fails moves the
// environment to failed (step destroying, the error), announces it, and is
// retried after a capped, growing backoff until it works.
func TestDestroyFailuresAreRetriedAndSurfaced(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	g := newLifecycleRig(t, start, nil)
	r := g.reconciler("a", g.notifier(nil))
	r.Lifecycle = envmgr.Lifecycle{RetryMin: 30 * time.Second, RetryMax: 2 * time.Minute}
	g.prov.failDestroy.Store(4)
	e := g.create("stuck", 24)
	settle(t, r, e.Name)
	g.recv.next(t)
	if _, err := g.mgr.Destroy(t.Context(), envmgr.Actor{Name: "alice", Via: "cli"}, e.Name); err != nil {
		t.Fatal(err)
	}
	for i, wait := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 2 * time.Minute} {
		settle(t, r, e.Name)
		got, _, _ := g.store.Get(t.Context(), e.Name)
		if got.State != envmgr.StateFailed || got.FailedAt != envmgr.StateDestroying || !strings.Contains(got.Reason, "the API timed out") ||
			!got.RetryAt.Equal(g.clk.Now().Add(wait)) || got.DestroyAttempts != i+1 {
			t.Fatalf("after failure %d: %s at %s (%q), retry %s, attempts %d", i+1, got.State, got.FailedAt, got.Reason, got.RetryAt, got.DestroyAttempts)
		}
		if m := g.recv.next(t); !strings.Contains(m.Text, "could not be destroyed") || !strings.Contains(text(m), "tries again at") {
			t.Fatalf("failure notice: %s", text(m))
		}
		g.clk.Advance(wait - time.Second)
		settle(t, r, e.Name)
		if n := g.prov.destroys.Load(); n != int32(i+1) {
			t.Fatalf("destroy retried before its backoff: %d attempts", n)
		}
		g.clk.Advance(time.Second)
	}
	settle(t, r, e.Name)
	got, _, _ := g.store.Get(t.Context(), e.Name)
	if got.State != envmgr.StateDestroyed || got.DestroyAttempts != 0 {
		t.Fatalf("state %s, attempts %d", got.State, got.DestroyAttempts)
	}
	if m := g.recv.next(t); !strings.Contains(m.Text, "destroyed") || !strings.Contains(text(m), "requested by alice via cli") {
		t.Fatalf("destroy notice: %s", text(m))
	}
}

// TestShortTTLHasNoEarlyWarning: an offset whose time came before the
// deadline was set is never due (a 2h environment gets the 1h warning
// only), and a manager that was down through several offsets sends the
// nearest one only.
func TestShortTTLHasNoEarlyWarning(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var l envmgr.Lifecycle
	e := envmgr.Environment{Name: "x", State: envmgr.StateReady, Desired: envmgr.WantRunning, CreatedAt: now, DeadlineSetAt: now, ExpiresAt: now.Add(2 * time.Hour)}
	if d := l.Check(&e, now.Add(30*time.Minute)); d.Any() {
		t.Fatalf("due at +30m: %+v", d)
	}
	if d := l.Check(&e, now.Add(time.Hour)); d.Warn == nil || d.Warn.Before != 3600 {
		t.Fatalf("at +1h: %+v", d)
	}
	e.ExpiresAt, e.DeadlineSetAt = now.Add(24*time.Hour), now
	d := l.Check(&e, now.Add(23*time.Hour+30*time.Minute))
	if d.Warn == nil || d.Warn.Before != 3600 || len(d.Skip) != 1 || d.Skip[0] != 4*3600 {
		t.Fatalf("after downtime: %+v", d)
	}
}

// TestNoWarningAtCreation: an environment whose TTL equals a warning offset
// is not warned the moment it is created.
func TestNoWarningAtCreation(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var l envmgr.Lifecycle
	e := envmgr.Environment{Name: "x", State: envmgr.StateReady, Desired: envmgr.WantRunning, CreatedAt: now, DeadlineSetAt: now, ExpiresAt: now.Add(4 * time.Hour)}
	if d := l.Check(&e, now); d.Warn != nil {
		t.Fatalf("warned at creation: %+v", d.Warn)
	}
	if d := l.Check(&e, now.Add(3*time.Hour)); d.Warn == nil || d.Warn.Before != 3600 {
		t.Fatalf("the 1h warning: %+v", d)
	}
}
