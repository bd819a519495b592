package local_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
)

// BenchmarkCreateToReady measures a developer's request until the
// environment is ready: the reconciler provisions a real node process and
// waits for its /healthz (target < 1 s).
func BenchmarkCreateToReady(b *testing.B) {
	r := newRigB(b)
	p := r.provisionerB(b)
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
// a reconcile pass over ready environments: read, nothing to change, check
// that the node still runs.
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
