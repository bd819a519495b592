package local_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/local"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/sandbox"
)

// TestStrategyResolution: a strategy path is a directory of Go code (built
// into the node's directory) or an executable (run as is); anything else
// fails provisioning with the reason. The node's configuration carries the
// risk limits, both keys and the strategy.
func TestStrategyResolution(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "strategies/gostrat"), 0o755))
	must(os.WriteFile(filepath.Join(src, "strategies/gostrat/go.mod"), []byte("module gostrat\n\ngo 1.22\n"), 0o644))
	must(os.WriteFile(filepath.Join(src, "strategies/gostrat/main.go"), []byte("package main\n\nfunc main() { select {} }\n"), 0o644))
	must(os.WriteFile(filepath.Join(src, "strategies/run.sh"), []byte("#!/bin/sh\nexec sleep 60\n"), 0o755))
	must(os.WriteFile(filepath.Join(src, "strategies/notes.txt"), []byte("not a program"), 0o644))
	must(os.WriteFile(filepath.Join(src, "strategies/s.yaml"), []byte("k: v\n"), 0o644))
	r := newRig(t)
	p, err := local.New(local.Config{StateDir: r.stateDir, NATSURL: r.natsURL, Command: nodeCommand, SourceDir: src, ReadyTimeout: upTimeout})
	must(err)
	for _, c := range []struct {
		name, binary, config string
		wantErr              string
	}{
		{"go-dir", "strategies/gostrat", "strategies/s.yaml", ""},
		{"script", "strategies/run.sh", "", ""},
		{"not-exec", "strategies/notes.txt", "", "neither a directory of Go code nor an executable"},
		{"missing", "strategies/nope", "", "not found"},
		{"missing-config", "strategies/run.sh", "strategies/none.yaml", "config strategies/none.yaml"},
	} {
		t.Run(c.name, func(t *testing.T) {
			y := fmt.Sprintf("version: 1\nenvironment: {name: %s}\nexchanges: [{name: binance, type: spot, sandbox: true, instruments: [ETH/BTC]}]\n"+
				"market_data: {mode: live}\nrisk_config: {max_position_usd: 750.5, max_drawdown_pct: 5, max_order_rate: 2.5}\nstrategy: {binary: %s",
				c.name, c.binary)
			if c.config != "" {
				y += ", config: " + c.config
			}
			y += "}\n"
			s, err := spec.Parse([]byte(y), spec.Options{})
			if err != nil {
				t.Fatal(err)
			}
			e := envmgr.Environment{Name: c.name, ExpiresAt: time.Now().Add(time.Hour)}
			_, err = p.Provision(t.Context(), e, s)
			defer func() { _ = p.Destroy(t.Context(), c.name) }()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(filepath.Join(r.stateDir, c.name, "node.json"))
			var nc sandbox.Config
			must(json.Unmarshal(raw, &nc))
			if nc.Strategy == nil || !filepath.IsAbs(nc.Strategy.Command[0]) || nc.Risk.MaxPositionUSD != "750.5" ||
				nc.Risk.MaxOrderRate != "2.5" || nc.Risk.StartingEquityUSD != "10000" || nc.Instruments[0].Quote != "BTC" {
				t.Fatalf("node config %s", raw)
			}
			if st, err := os.Stat(nc.Strategy.Command[0]); err != nil || st.Mode()&0o111 == 0 {
				t.Fatalf("strategy %s not executable: %v", nc.Strategy.Command[0], err)
			}
			for _, k := range []string{nc.APIKeyFile, nc.AdminKeyFile} {
				if st, err := os.Stat(k); err != nil || st.Mode().Perm() != 0o600 {
					t.Fatalf("key file %s: %v", k, err)
				}
			}
		})
	}
}
