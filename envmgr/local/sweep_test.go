package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/local"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/envmgr/sweep"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestOrphanSweepFindsAndCleansLocalLeaks leaks on purpose, with real node
// processes: a node running for an environment that has no record, a stray
// node directory, and a record whose node is gone. The dry run lists each
// with why; a cleanup deletes only what is older than the grace period,
// never a live environment's, and audits and counts every deletion.
func TestOrphanSweepFindsAndCleansLocalLeaks(t *testing.T) {
	r := newRig(t)
	p := r.provisioner(t)
	stop := r.runReconciler(t, p, nil)
	if _, err := r.mgr.Create(t.Context(), alice, envmgr.CreateRequest{SpecYAML: fmt.Appendf(nil, devEnv, "keep", 24)}); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, "keep", nodeUp)
	stop()
	keepPID := pidOf(t, r.stateDir, "keep")

	// A node whose record never made it (or was lost).
	s, err := spec.Parse(fmt.Appendf(nil, devEnv, "leak", 24), spec.Options{Now: r.clock.Now(), TTLApproved: true})
	if err != nil {
		t.Fatal(err)
	}
	now := r.clock.Now()
	if _, err := p.Provision(t.Context(), envmgr.Environment{Name: "leak", Owner: "alice", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, s); err != nil {
		t.Fatal(err)
	}
	leakPID := pidOf(t, r.stateDir, "leak")
	if !alive(leakPID) {
		t.Fatal("the leaked node does not run")
	}
	// A stray directory, and a record that says ready with nothing behind it.
	if err := os.MkdirAll(filepath.Join(r.stateDir, "stray"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.Create(t.Context(), envmgr.Environment{Name: "ghost", Owner: "bob", State: envmgr.StateReady, Desired: envmgr.WantRunning,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	clk := clock.NewFake(time.Now())
	reg := prometheus.NewRegistry()
	sw := sweep.New(sweep.Config{Store: r.store, Sources: []sweep.Source{p}, Grace: time.Hour, Clock: clk, Metrics: sweep.NewMetrics(reg)})
	rep, err := sw.Find(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range rep.Orphans {
		got[o.Kind+" "+o.Env] = o.Why
		if o.Eligible {
			t.Errorf("%s %s is eligible before its grace period", o.Kind, o.ID)
		}
		if o.Env == "keep" {
			t.Errorf("a live environment's %s is called an orphan: %s", o.Kind, o.Why)
		}
	}
	for want, why := range map[string]string{local.KindNodeDir + " leak": "there is no environment record named leak",
		local.KindNodeProcess + " leak": "there is no environment record named leak", local.KindNodeDir + " stray": "there is no environment record named stray"} {
		if got[want] != why {
			t.Errorf("orphan %q: why %q, want %q (found %v)", want, got[want], why, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("orphans %v, want 3", got)
	}
	var missing []string
	for _, m := range rep.Missing {
		missing = append(missing, m.Kind+" "+m.Env)
	}
	slices.Sort(missing)
	if !slices.Equal(missing, []string{local.KindNodeDir + " ghost", local.KindNodeProcess + " ghost"}) {
		t.Fatalf("missing %v", missing)
	}

	// Within the grace period a cleanup deletes nothing.
	if rep, err := sw.Clean(t.Context(), "admin"); err != nil || len(rep.Deleted) != 0 {
		t.Fatalf("cleanup within the grace period deleted %v (%v)", rep.Deleted, err)
	}
	clk.Advance(2 * time.Hour)
	rep, err = sw.Clean(t.Context(), "admin")
	if err != nil {
		t.Fatalf("%v: %v", err, rep.Failed)
	}
	if len(rep.Deleted) != 3 {
		t.Fatalf("deleted %+v", rep.Deleted)
	}
	if alive(leakPID) {
		t.Fatal("the leaked node still runs")
	}
	for _, d := range []string{"leak", "stray"} {
		if _, err := os.Stat(filepath.Join(r.stateDir, d)); !os.IsNotExist(err) {
			t.Errorf("%s's directory is still there", d)
		}
	}
	if !alive(keepPID) {
		t.Fatal("the live environment's node was stopped")
	}
	audit, _ := r.store.Audit(t.Context(), "leak")
	var n int
	for _, a := range audit {
		if a.Action == "orphan-deleted" && a.Actor == "admin" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d deletions audited in leak's log, want 2: %+v", n, audit)
	}
	const want = `
# HELP paddock_envmgr_orphans_deleted_total Orphaned resources deleted, by kind.
# TYPE paddock_envmgr_orphans_deleted_total counter
paddock_envmgr_orphans_deleted_total{kind="node-dir"} 2
paddock_envmgr_orphans_deleted_total{kind="node-process"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "paddock_envmgr_orphans_deleted_total"); err != nil {
		t.Fatal(err)
	}
	// Nothing is left but the live environment's.
	rep, _ = sw.Find(context.Background())
	if len(rep.Orphans) != 0 {
		t.Fatalf("orphans after the cleanup: %+v", rep.Orphans)
	}
}
