package local_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/local"
)

// BenchmarkCreateToNodeUp measures a developer's request until the
// environment's node answers: the reconciler provisions a real node process
// and waits for its /healthz (target < 1 s). No feed runs here, so the node
// never works and the provisioner is told not to wait for that: the
// environment ends degraded, which is what the loop waits for.
func BenchmarkCreateToNodeUp(b *testing.B) {
	r := newRigB(b)
	p, err := local.New(local.Config{StateDir: r.stateDir, NATSURL: r.natsURL, Command: nodeCommand, ReadyTimeout: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.StopAll(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = envmgr.NewReconciler(r.store, p, r.clock.Now, nil).Run(ctx, nil) }()
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("bench-%d", i)
		i++
		if _, err := r.mgr.Create(ctx, alice, envmgr.CreateRequest{SpecYAML: fmt.Appendf(nil, devEnv, name, 24)}); err != nil {
			b.Fatal(err)
		}
		for {
			e, _, err := r.store.Get(ctx, name)
			if err == nil && e.State == nodeUp {
				break
			}
			if err == nil && e.State == envmgr.StateFailed {
				b.Fatal(e.Reason)
			}
			time.Sleep(time.Millisecond) // polling the store for the asynchronous reconciler
		}
		b.StopTimer()
		_ = p.Destroy(ctx, name)
		b.StartTimer()
	}
}

// BenchmarkReconcilePass measures the steady-state cost per environment of
// a reconcile pass over running environments: read, nothing to change,
// check that the node still runs and ask its /readyz how it is.
func BenchmarkReconcilePass(b *testing.B) {
	r := newRigB(b)
	p := r.provisionerB(b)
	ctx := context.Background()
	rec := envmgr.NewReconciler(r.store, p, r.clock.Now, nil)
	const envs = 5
	for i := range envs {
		name := fmt.Sprintf("steady-%d", i)
		if _, err := r.mgr.Create(ctx, alice, envmgr.CreateRequest{SpecYAML: fmt.Appendf(nil, devEnv, name, 24)}); err != nil {
			b.Fatal(err)
		}
		for more := true; more; {
			var err error
			if more, err = rec.Step(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := rec.Step(ctx, fmt.Sprintf("steady-%d", i%envs)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
