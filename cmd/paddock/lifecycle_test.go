package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLifecycleFile: the example loads as documented, and every value that
// would be accepted and then not work is refused with its field named.
func TestLifecycleFile(t *testing.T) {
	lc, err := loadLifecycle("../../examples/lifecycle.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(lc.WarnBefore) != 2 || lc.WarnBefore[0] != 4*time.Hour || lc.NodeGrace != 15*time.Minute || lc.OrphanEvery != 168*time.Hour ||
		lc.Notify == nil || lc.Notify.Owners["alice"].TimeZone != "Europe/London" {
		t.Fatalf("loaded %+v", lc)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"warn_before: [-1h]", "warn_before"},
		{"warn_before: [1000h]", "warn_before"},
		{"warn_before: [soon]", "cannot unmarshal"},
		{"node_grace: 200h", "node_grace"},
		{"destroy_retry: {min: 1h, max: 1m}", "destroy_retry"},
		{"notifications: {default: {webhook: 'http://hooks.example.com/x'}}", "want https"},
		{"notifications: {owners: {a: {time_zone: Nowhere/City}}}", "not an IANA zone"},
		{"notifications: {give_up_after: 1h}", "give_up_after"},
		{"orphans: {grace: -1h}", "orphans.grace"},
		{"warn_befor: [1h]", "field warn_befor not found"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "l.yaml")
			_ = os.WriteFile(path, []byte(tc.yaml), 0o600)
			if _, err := loadLifecycle(path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: got %v, want %q", tc.yaml, err, tc.want)
			}
		})
	}
}

// FuzzLifecycleFile: any file is loaded or refused with an error, never a
// panic; what loads has notifications that pass their own check.
func FuzzLifecycleFile(f *testing.F) {
	raw, _ := os.ReadFile("../../examples/lifecycle.yaml")
	f.Add(raw)
	f.Add([]byte("warn_before: [1h, 2h, 3h]\norphans: {every: -1s}\n"))
	f.Add([]byte("notifications: {owners: {a: {slack_user: U1}, b: {slack_user: U1}}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "l.yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		lc, err := loadLifecycle(path)
		if err != nil {
			return
		}
		if lc.Notify != nil {
			if err := lc.Notify.Check(); err != nil {
				t.Fatalf("accepted notifications that fail their check: %v", err)
			}
		}
		for _, d := range lc.WarnBefore {
			if d <= 0 {
				t.Fatalf("accepted warning offset %s", d)
			}
		}
	})
}
