package terraform

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/natskv"
	"github.com/paddockhq/paddock/envmgr/sweep"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
)

// TestOrphanWorkdirsAreDestroyedNotJustRemoved leaks a Terraform working
// directory on purpose (applied with the real CLI, its environment's record
// destroyed) beside a stray one and a live one. The sweeper lists both
// leaks; cleaning runs terraform destroy on the applied one (its resources
// go, not only its state) and leaves the live one alone.
func TestOrphanWorkdirsAreDestroyedNotJustRemoved(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir, 10*time.Second)
	r.out = t.TempDir() // the stand-in's "resources", outside the state directory
	_ = os.Remove(filepath.Join(dir, "out"))
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	store, err := natskv.Open(t.Context(), natstest.Connect(t, ns.ClientURL()), natskv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, name := range []string{"keep", "leak"} {
		if _, err := r.p.Provision(t.Context(), env(name), nil); err != nil {
			t.Fatal(err)
		}
		state := envmgr.StateReady
		if name == "leak" {
			state = envmgr.StateDestroyed // destroyed on record; its workdir and resources leaked
		}
		if _, err := store.Create(t.Context(), envmgr.Environment{Name: name, Owner: "alice", State: state, Desired: envmgr.WantRunning, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "stray"), 0o700); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(now)
	sw := sweep.New(sweep.Config{Store: store, Sources: []sweep.Source{r.p}, Grace: time.Minute, Clock: clk})
	rep, err := sw.Find(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Orphans) != 2 || rep.Orphans[0].Env != "leak" || rep.Orphans[1].Env != "stray" {
		t.Fatalf("orphans %+v", rep.Orphans)
	}
	clk.Advance(time.Hour)
	if rep, err = sw.Clean(t.Context(), "sweeper"); err != nil || len(rep.Deleted) != 2 {
		t.Fatalf("clean: %v %v %+v", err, rep.Failed, rep.Deleted)
	}
	if _, err := os.Stat(filepath.Join(r.out, "leak.json")); !os.IsNotExist(err) {
		t.Fatal("the leaked environment's resource outlived the cleanup: its workdir was removed without terraform destroy")
	}
	if _, err := os.Stat(filepath.Join(r.out, "keep.json")); err != nil {
		t.Fatalf("the live environment's resource: %v", err)
	}
	for _, d := range []string{"leak", "stray"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("%s is still there", d)
		}
	}
}
