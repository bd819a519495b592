package slack_test

import (
	"net/http"
	"testing"
)

// FuzzSlashCommand: whatever a signed command says, the handler answers
// (200 with a message, or a refusal), never panics, and extends only
// alice's own environment.
func FuzzSlashCommand(f *testing.F) {
	for _, s := range []string{"extend alice-env", "extend alice-env 3", "extend bob-env 1", "help", "", "extend", "extend a b c d",
		"extend alice-env 99999999999999999999", "extend \x00 1", "extend alice-env\t2", "extend ALICE-ENV"} {
		f.Add("U0ALICE", s)
	}
	f.Add("U0MALLORY", "extend alice-env")
	g := newCommandRig(f)
	f.Fuzz(func(t *testing.T, user, text string) {
		bob, _, _ := g.store.Get(t.Context(), "bob-env")
		code, _ := g.send(t, 0, sign(g.clk.Now(), user, text, secret))
		if code != http.StatusOK && code != http.StatusUnauthorized {
			t.Fatalf("status %d", code)
		}
		if after, _, _ := g.store.Get(t.Context(), "bob-env"); !after.ExpiresAt.Equal(bob.ExpiresAt) {
			t.Fatalf("%s extended bob's environment with %q", user, text)
		}
	})
}
