package envmgr_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/natskv"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
)

// fleet is n environments as a busy installation has them: most running
// with deadlines spread over four days, some inside a warning window, some
// expired, stopped, failing to destroy, or destroyed.
func fleet(n int, now time.Time) []envmgr.Environment {
	out := make([]envmgr.Environment, n)
	states := []envmgr.State{envmgr.StateReady, envmgr.StateReady, envmgr.StateDegraded, envmgr.StateStopped, envmgr.StateDestroyed, envmgr.StateFailed}
	for i := range out {
		created := now.Add(-time.Duration(i%96) * time.Hour)
		e := envmgr.Environment{Name: fmt.Sprintf("env-%d", i), Owner: "o", State: states[i%len(states)], Desired: envmgr.WantRunning,
			CreatedAt: created, DeadlineSetAt: created, TTLHours: 24 + i%72, ExpiresAt: created.Add(time.Duration(24+i%72) * time.Hour)}
		if e.State == envmgr.StateFailed {
			e.FailedAt, e.Desired, e.RetryAt = envmgr.StateDestroying, envmgr.WantDestroyed, now.Add(time.Minute)
		}
		if i%7 == 0 {
			e.Warnings = []envmgr.Warning{{Deadline: e.ExpiresAt, Before: 4 * 3600, ClaimedAt: now, SentAt: now}}
		}
		out[i] = e
	}
	return out
}

// BenchmarkLifecyclePass is one reaper/warning pass: deciding, for every
// environment, whether it expires, is due a warning or a destroy retry.
// Target: under 100ms for 10,000 environments.
func BenchmarkLifecyclePass(b *testing.B) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("envs=%d", n), func(b *testing.B) {
			all := fleet(n, now)
			var l envmgr.Lifecycle
			b.ReportAllocs()
			due := 0
			for b.Loop() {
				due = 0
				for i := range all {
					if d := l.Check(&all[i], now); d.Any() {
						due++
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/env")
			b.ReportMetric(float64(due), "due")
		})
	}
}

// BenchmarkLifecyclePassWithStore is the same pass with the store read it
// needs: every record listed from the JetStream key-value bucket on an
// embedded server, then decided.
func BenchmarkLifecyclePassWithStore(b *testing.B) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	const n = 10_000
	ns := natstest.Server(b, embednats.Options{StoreDir: b.TempDir()})
	store, err := natskv.Open(b.Context(), natstest.Connect(b, ns.ClientURL()), natskv.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range fleet(n, now) {
		if _, err := store.Create(b.Context(), e); err != nil {
			b.Fatal(err)
		}
	}
	var l envmgr.Lifecycle
	b.ReportAllocs()
	for b.Loop() {
		all, err := store.List(b.Context())
		if err != nil || len(all) != n {
			b.Fatalf("%d listed: %v", len(all), err)
		}
		for i := range all {
			l.Check(&all[i], now)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/env")
}
