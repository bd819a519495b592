package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/natsauth"
)

// TestTapExitsOnAPermissionError: a subscription the credentials do not
// allow ends tap with an error (a non-zero exit) instead of a silent hang.
func TestTapExitsOnAPermissionError(t *testing.T) {
	dir := t.TempDir()
	auth, err := natsauth.LoadOrCreate(filepath.Join(dir, "auth"))
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.WriteServiceCreds(); err != nil {
		t.Fatal(err)
	}
	sc, _ := auth.Server()
	ns, err := embednats.Start(embednats.Options{Operator: &embednats.Operator{Claims: sc.Operator, SystemAccount: sc.SystemAccount,
		Accounts: sc.Accounts, ResolverDir: sc.ResolverDir}})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	obs := filepath.Join(dir, "auth", natsauth.ObserverCredsFile)
	var out syncBuffer
	err = run(t.Context(), []string{"tap", "-nats-url", ns.ClientURL(), "-nats-creds", obs, "env.other.orders.new"}, &out, &out)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "permission") {
		t.Fatalf("tap on a forbidden subject: %v", err)
	}
}
