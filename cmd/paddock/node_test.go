package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/sandbox"
)

// TestNodeExitsWithTheDeadlineStatus: a node whose deadline and grace
// period have passed ends with sandbox.ExitDeadline, the status the AWS
// unit powers the machine off on (and does not restart).
func TestNodeExitsWithTheDeadlineStatus(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{})
	dir := t.TempDir()
	c := sandbox.Config{Name: "late", NATSURL: ns.ClientURL(), AdminListen: "127.0.0.1:0",
		Instruments: []sandbox.Instrument{{Venue: "binance", Symbol: "btcusdt"}},
		Risk:        sandbox.RiskConfig{MaxPositionUSD: "1000", MaxDrawdownPct: "5", MaxOrderRate: "10"},
		APIKeyFile:  filepath.Join(dir, "api-key"), AdminKeyFile: filepath.Join(dir, "admin-key"),
		Deadline: time.Now().Add(-time.Hour).UTC(), DeadlineGraceSeconds: 60}
	for _, f := range []string{c.APIKeyFile, c.AdminKeyFile} {
		if err := os.WriteFile(f, []byte("key-0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := json.Marshal(c)
	path := filepath.Join(dir, "node.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"node", "-config", path}, os.Stdout, os.Stderr)
	if err == nil || processStatus(err) != sandbox.ExitDeadline {
		t.Fatalf("node ended with %v (status %d), want status %d", err, processStatus(err), sandbox.ExitDeadline)
	}
}
