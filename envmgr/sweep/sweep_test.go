package sweep

import (
	"testing"

	"github.com/paddockhq/paddock/envmgr"
)

// TestWhatIsAnOrphan: the rule, case by case. A resource belongs to an
// environment in any state but destroyed (a failed one's resources are its
// destroy's to remove); a shared artifact is an orphan only when nothing
// live uses it.
func TestWhatIsAnOrphan(t *testing.T) {
	records := map[string]envmgr.Environment{
		"live": {Name: "live", State: envmgr.StateReady}, "failed": {Name: "failed", State: envmgr.StateFailed},
		"gone": {Name: "gone", State: envmgr.StateDestroyed}, "new": {Name: "new", State: envmgr.StateRequested},
	}
	for _, tc := range []struct {
		name   string
		r      Resource
		orphan bool
	}{
		{"a live environment's", Resource{Env: "live"}, false},
		{"a failed environment's", Resource{Env: "failed"}, false},
		{"a requested environment's", Resource{Env: "new"}, false},
		{"a destroyed environment's", Resource{Env: "gone"}, true},
		{"an unknown environment's", Resource{Env: "nobody"}, true},
		{"nobody's", Resource{}, true},
		{"an artifact a live environment uses", Resource{Shared: true, UsedBy: []string{"gone", "live"}}, false},
		{"an artifact only destroyed ones used", Resource{Shared: true, UsedBy: []string{"gone", "nobody"}}, true},
		{"an artifact nothing uses", Resource{Shared: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if why := orphaned(tc.r, records); (why != "") != tc.orphan {
				t.Fatalf("orphan %v (%q), want %v", why != "", why, tc.orphan)
			}
		})
	}
}
