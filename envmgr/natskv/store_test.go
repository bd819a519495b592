package natskv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
)

func open(tb testing.TB) *Store {
	tb.Helper()
	ns := natstest.Server(tb, embednats.Options{StoreDir: tb.TempDir()})
	nc := natstest.Connect(tb, ns.ClientURL())
	s, err := Open(context.Background(), nc, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func env(name string) envmgr.Environment {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return envmgr.Environment{Name: name, Owner: "alice", State: envmgr.StateRequested, Desired: envmgr.WantRunning,
		TTLHours: 48, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(48 * time.Hour)}
}

func TestCreateGetUpdateHistory(t *testing.T) {
	ctx := t.Context()
	s := open(t)
	rev, err := s.Create(ctx, env("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, env("a")); !errors.Is(err, envmgr.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, _, err := s.Get(ctx, "nope"); !errors.Is(err, envmgr.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	e, r, err := s.Get(ctx, "a")
	if err != nil || r != rev || e.Owner != "alice" || !e.ExpiresAt.Equal(env("a").ExpiresAt) {
		t.Fatalf("get: %+v %d %v", e, r, err)
	}
	for _, st := range []envmgr.State{envmgr.StateProvisioning, envmgr.StateReady} {
		if err := e.Move(st, time.Now()); err != nil {
			t.Fatal(err)
		}
		if r, err = s.Update(ctx, e, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Update(ctx, e, rev); !errors.Is(err, envmgr.ErrConflict) {
		t.Fatalf("update at a stale revision: %v", err)
	}
	h, err := s.History(ctx, "a")
	if err != nil || len(h) != 3 || h[0].State != envmgr.StateRequested || h[2].State != envmgr.StateReady {
		t.Fatalf("history: %v %v", h, err)
	}
}

// TestConcurrentWritersOneWins: many requests read the same revision and
// write; exactly one succeeds, the rest get ErrConflict.
func TestConcurrentWritersOneWins(t *testing.T) {
	ctx := t.Context()
	s := open(t)
	if _, err := s.Create(ctx, env("race")); err != nil {
		t.Fatal(err)
	}
	e, rev, err := s.Get(ctx, "race")
	if err != nil {
		t.Fatal(err)
	}
	const writers = 20
	var wg sync.WaitGroup
	results := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := e
			mine.Reason = fmt.Sprintf("writer %d", i)
			_, err := s.Update(ctx, mine, rev)
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	wins, conflicts := 0, 0
	for err := range results {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, envmgr.ErrConflict):
			conflicts++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if wins != 1 || conflicts != writers-1 {
		t.Fatalf("%d wins, %d conflicts; want exactly one winner", wins, conflicts)
	}
}

func TestListAndWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s := open(t)
	for _, n := range []string{"a", "b", "c"} {
		if _, err := s.Create(ctx, env(n)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d %v", len(list), err)
	}
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]envmgr.State{}
	for len(seen) < 3 {
		e := <-ch
		seen[e.Name] = e.State
	}
	e, rev, _ := s.Get(ctx, "b")
	_ = e.Move(envmgr.StateProvisioning, time.Now())
	if _, err := s.Update(ctx, e, rev); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ch:
		if got.Name != "b" || got.State != envmgr.StateProvisioning {
			t.Fatalf("watch sent %+v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no watch update within 5s")
	}
}

func TestAuditPerEnvironment(t *testing.T) {
	ctx := t.Context()
	s := open(t)
	for i := range 5 {
		for _, n := range []string{"x", "y"} {
			r := envmgr.AuditRecord{Env: n, Actor: "alice", Action: fmt.Sprintf("step-%d", i), CommitSHA: "abc123"}
			if err := s.AppendAudit(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := s.Audit(ctx, "x")
	if err != nil || len(got) != 5 {
		t.Fatalf("audit x: %d records, %v", len(got), err)
	}
	for i, r := range got {
		if r.Env != "x" || r.Action != fmt.Sprintf("step-%d", i) || r.At.IsZero() || r.CommitSHA != "abc123" {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if none, err := s.Audit(ctx, "nobody"); err != nil || len(none) != 0 {
		t.Fatalf("audit of an unknown environment: %v %v", none, err)
	}
}

// BenchmarkList lists 1,000 environments (target < 20 ms).
func BenchmarkList(b *testing.B) {
	ctx := context.Background()
	s := open(b)
	for i := range 1000 {
		if _, err := s.Create(ctx, env(fmt.Sprintf("env-%04d", i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		list, err := s.List(ctx)
		if err != nil || len(list) != 1000 {
			b.Fatalf("%d %v", len(list), err)
		}
	}
}

// TestStoreOutlivesAClosedConnection reproduces what closed the first wave's
// manager for good: a publish whose subject is over NATS's control-line
// limit makes the server close the connection, and nats.go does not
// reconnect after that. The store replaces the connection (Redial) and its
// watch carries on.
func TestStoreOutlivesAClosedConnection(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	nc := natstest.Connect(t, ns.ClientURL())
	var redials atomic.Int32
	s, err := Open(t.Context(), nc, Options{Redial: func() (*nats.Conn, error) {
		redials.Add(1)
		return nats.Connect(ns.ClientURL())
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx := t.Context()
	w, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, env("before")); err != nil {
		t.Fatal(err)
	}
	if e := <-w; e.Name != "before" {
		t.Fatalf("watched %q", e.Name)
	}
	// A name the store refuses never reaches the server.
	if _, _, err := s.Get(ctx, strings.Repeat("a", 4100)); !errors.Is(err, envmgr.ErrInvalid) {
		t.Fatalf("long name: %v", err)
	}
	if err := s.AppendAudit(ctx, envmgr.AuditRecord{Env: "a.b"}); !errors.Is(err, envmgr.ErrInvalid) {
		t.Fatalf("dotted name: %v", err)
	}
	// Kill the connection the way the hostile subject did.
	_ = nc.Publish("paddock.audit."+strings.Repeat("a", 5000), nil)
	_ = nc.Flush()
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsClosed() {
		if time.Now().After(deadline) {
			t.Fatal("the server did not close the connection")
		}
		time.Sleep(5 * time.Millisecond) // the server's close arrives asynchronously
	}
	var created bool
	for !created {
		_, err := s.Create(ctx, env("after"))
		switch {
		case err == nil:
			created = true
		case errors.Is(err, envmgr.ErrUnavailable) && time.Now().Before(deadline):
			time.Sleep(50 * time.Millisecond) // redials are rate-limited to one a second
		default:
			t.Fatalf("create after the close: %v", err)
		}
	}
	if n := redials.Load(); n != 1 {
		t.Fatalf("%d redials, want 1", n)
	}
	if err := s.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	for e := range w {
		if e.Name == "after" {
			return
		}
	}
	t.Fatal("the watch ended")
}

// TestAuditRetention: the audit stream keeps at most AuditMaxPerEnv records
// per environment, dropping the oldest, so no caller can grow it without
// bound.
func TestAuditRetention(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	nc := natstest.Connect(t, ns.ClientURL())
	s, err := Open(t.Context(), nc, Options{AuditMaxPerEnv: 3, AuditMaxAge: time.Hour, AuditMaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.AppendAudit(t.Context(), envmgr.AuditRecord{Env: "kept", Actor: "alice", Action: fmt.Sprint("a", i)}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := s.Audit(t.Context(), "kept")
	if err != nil || len(recs) != 3 || recs[0].Action != "a2" || recs[2].Action != "a4" {
		t.Fatalf("kept %d records (%v): %+v", len(recs), err, recs)
	}
}
