package envmgr_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/natskv"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
)

// blockingProvisioner is a stand-in provisioner whose Provision blocks until
// the test releases it, reporting whether its context was cancelled: the
// real ones (a process start, a Terraform apply) cannot be held at a chosen
// moment. Everything else about the reconciler here is real, its store too.
type blockingProvisioner struct {
	started  chan struct{}
	release  chan struct{}
	canceled chan error
}

func (p *blockingProvisioner) Provision(ctx context.Context, _ envmgr.Environment, _ *spec.Spec) (string, error) {
	close(p.started)
	select {
	case <-p.release:
		return "http://node", nil
	case <-ctx.Done():
		p.canceled <- ctx.Err()
		return "", ctx.Err()
	}
}
func (p *blockingProvisioner) Stop(context.Context, string) error { return nil }
func (p *blockingProvisioner) Start(context.Context, string) (string, error) {
	return "http://node", nil
}
func (p *blockingProvisioner) Destroy(context.Context, string) error { return nil }
func (p *blockingProvisioner) Status(context.Context, string) (envmgr.NodeStatus, error) {
	return envmgr.NodeStatus{}, envmgr.ErrUnsupported
}
func (p *blockingProvisioner) Refresh(context.Context, envmgr.Environment, *spec.Spec) error {
	return envmgr.ErrUnsupported
}
func (p *blockingProvisioner) CredsRef(string) string { return "" }

const spec1 = `version: 1
environment: {name: drained}
exchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]
market_data: {mode: live}
risk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}
strategy: {binary: s}
`

// TestShutdownDrainsStepsInFlight: when the reconciler's context ends, a
// provisioning in flight is not cancelled; it finishes and its result is
// recorded (on the first wave's code the same context cancelled it at once:
// for Terraform, a SIGINT to every apply). Past the drain deadline it is
// cancelled.
func TestShutdownDrainsStepsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name       string
		drain      time.Duration
		release    bool
		wantState  envmgr.State
		wantCancel bool
	}{
		{"finishes within the drain", time.Minute, true, envmgr.StateReady, false},
		{"cancelled past the drain", 50 * time.Millisecond, false, envmgr.StateProvisioning, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
			store, err := natskv.Open(t.Context(), natstest.Connect(t, ns.ClientURL()), natskv.Options{})
			if err != nil {
				t.Fatal(err)
			}
			p := &blockingProvisioner{started: make(chan struct{}), release: make(chan struct{}), canceled: make(chan error, 1)}
			rec := envmgr.NewReconciler(store, p, nil, nil)
			rec.Workers, rec.Drain = 2, tc.drain
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- rec.Run(ctx, nil) }()
			mgr := envmgr.NewManager(store, nil, nil)
			if _, err := mgr.Create(t.Context(), envmgr.Actor{Name: "alice"}, envmgr.CreateRequest{SpecYAML: []byte(spec1)}); err != nil {
				t.Fatal(err)
			}
			<-p.started
			cancel() // the manager shuts down with a provisioning in flight
			if tc.release {
				select {
				case err := <-p.canceled:
					t.Fatalf("the provisioning in flight was cancelled at once: %v", err)
				case <-time.After(100 * time.Millisecond): // it must not be, while the drain lasts
				}
				close(p.release)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-p.canceled:
				if !tc.wantCancel || !errors.Is(err, context.Canceled) {
					t.Fatalf("cancelled: %v", err)
				}
			default:
				if tc.wantCancel {
					t.Fatal("the step outlived the drain deadline")
				}
			}
			e, _, err := store.Get(t.Context(), "drained")
			if err != nil || e.State != tc.wantState {
				t.Fatalf("state %s (%v), want %s", e.State, err, tc.wantState)
			}
		})
	}
}

// noRefresh is a stand-in for a backend that cannot re-issue a running
// node's credentials (the AWS provisioner today): it provisions at once and
// answers ErrUnsupported to Status and Refresh.
type noRefresh struct{ blockingProvisioner }

func (noRefresh) Provision(context.Context, envmgr.Environment, *spec.Spec) (string, error) {
	return "http://node", nil
}

// TestExtensionAuditsOnlyWhatHappened: when the provisioner cannot re-issue
// the node's credentials after an extension, the audit log says so (once),
// and the recorded expiry stays the old one; the first wave wrote
// "re-issued" for every provisioner.
func TestExtensionAuditsOnlyWhatHappened(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	store, err := natskv.Open(t.Context(), natstest.Connect(t, ns.ClientURL()), natskv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := envmgr.NewReconciler(store, &noRefresh{}, nil, nil)
	mgr := envmgr.NewManager(store, nil, nil)
	alice := envmgr.Actor{Name: "alice"}
	if _, err := mgr.Create(t.Context(), alice, envmgr.CreateRequest{SpecYAML: []byte(spec1)}); err != nil {
		t.Fatal(err)
	}
	settle := func() {
		for more := true; more; {
			if more, err = rec.Step(t.Context(), "drained"); err != nil {
				t.Fatal(err)
			}
		}
	}
	settle()
	before, _, _ := store.Get(t.Context(), "drained")
	if _, err := mgr.Extend(t.Context(), alice, "drained", 24); err != nil {
		t.Fatal(err)
	}
	settle()
	settle() // a second pass must not audit again
	after, _, _ := store.Get(t.Context(), "drained")
	if !after.CredsExpireAt.Equal(before.CredsExpireAt) {
		t.Fatalf("the recorded credentials expiry moved to %s though nothing was re-issued", after.CredsExpireAt)
	}
	recs, _ := store.Audit(t.Context(), "drained")
	var creds []string
	for _, r := range recs {
		if r.Action == "credentials" {
			creds = append(creds, r.Detail)
		}
	}
	if len(creds) != 1 || !strings.HasPrefix(creds[0], "NOT re-issued") {
		t.Fatalf("credentials audit: %q", creds)
	}
}

// waitingProvisioner answers ErrWaiting for env "slow" until the test says
// its node reported, and provisions everything else at once: a stand-in for
// an instance that boots for minutes (the AWS provisioner's own wait is
// exercised end to end in envmgr/daemon).
type waitingProvisioner struct {
	noRefresh
	reported chan struct{}
}

func (p *waitingProvisioner) Provision(_ context.Context, e envmgr.Environment, _ *spec.Spec) (string, error) {
	if e.Name == "slow" {
		select {
		case <-p.reported:
		default:
			return "", fmt.Errorf("%w: slow has not reported yet", envmgr.ErrWaiting)
		}
	}
	return "http://" + e.Name, nil
}

// TestWaitingHoldsNoWorker: with one worker, an environment whose node has
// not reported yet does not hold it: another environment is provisioned
// meanwhile, the wait is recorded (once) as the reason, and a wake-up once
// the node reported makes it ready. On the first wave's code the wait
// blocked a worker for up to 10 minutes (and every TTL expiry behind it).
func TestWaitingHoldsNoWorker(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	store, err := natskv.Open(t.Context(), natstest.Connect(t, ns.ClientURL()), natskv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := &waitingProvisioner{reported: make(chan struct{})}
	rec := envmgr.NewReconciler(store, p, nil, nil)
	rec.Workers = 1
	go func() { _ = rec.Run(t.Context(), nil) }() // no tick: only changes and wake-ups drive it
	mgr := envmgr.NewManager(store, nil, nil)
	create := func(name string) {
		t.Helper()
		if _, err := mgr.Create(t.Context(), envmgr.Actor{Name: "alice"}, envmgr.CreateRequest{SpecYAML: []byte(strings.Replace(spec1, "drained", name, 1))}); err != nil {
			t.Fatal(err)
		}
	}
	waitState := func(name string, want envmgr.State, reason string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for { // polls: the reconciler works in its own goroutine
			e, _, err := store.Get(t.Context(), name)
			if err == nil && e.State == want && strings.Contains(e.Reason, reason) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s (%s), want %s with %q", name, e.State, e.Reason, want, reason)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	create("slow")
	waitState("slow", envmgr.StateProvisioning, "has not reported yet")
	create("fast")
	waitState("fast", envmgr.StateReady, "")
	close(p.reported)
	rec.Enqueue("slow") // what the provisioner does when the node reports
	waitState("slow", envmgr.StateReady, "")
	audit, err := store.Audit(t.Context(), "slow")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range audit {
		if a.To == envmgr.StateFailed {
			t.Fatalf("the wait was audited as a failure: %+v", a)
		}
	}
}
