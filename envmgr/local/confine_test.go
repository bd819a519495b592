package local_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/local"
	"github.com/paddockhq/paddock/envmgr/spec"
)

func strategySpec(t *testing.T, name, binary, config string) *spec.Spec {
	t.Helper()
	y := fmt.Sprintf("version: 1\nenvironment: {name: %s}\nexchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]\n"+
		"market_data: {mode: live}\nrisk_config: {max_position_usd: 100, max_drawdown_pct: 5, max_order_rate: 2}\nstrategy: {binary: %s", name, binary)
	if config != "" {
		y += ", config: " + config
	}
	s, err := spec.Parse([]byte(y+"}\n"), spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// TestStrategyPathsStayInTheSource: a strategy (or its config) is found by
// its real path, every link followed, and must lie inside the checkout,
// outside .git and outside the manager's state directory. On the first
// wave's code a link to /usr/bin ran /usr/bin/id.
func TestStrategyPathsStayInTheSource(t *testing.T) {
	src := t.TempDir()
	state := filepath.Join(src, ".state", "envs") // the default layout: state inside the checkout
	write(t, filepath.Join(src, "strategies/run.sh"), "#!/bin/sh\nexec sleep 60\n", 0o755)
	write(t, filepath.Join(src, "strategies/cfg.yaml"), "k: v\n", 0o644)
	write(t, filepath.Join(src, ".git/hooks/run.sh"), "#!/bin/sh\nexec sleep 60\n", 0o755)
	write(t, filepath.Join(state, "other/strategy"), "#!/bin/sh\nexec sleep 60\n", 0o755)
	for link, target := range map[string]string{
		"strategies/bin":      "/usr/bin",
		"strategies/git":      "../.git",
		"strategies/state":    "../.state",
		"strategies/alias.sh": "run.sh",
		"strategies/etc.yaml": "/etc/passwd",
	} {
		if err := os.Symlink(target, filepath.Join(src, link)); err != nil {
			t.Fatal(err)
		}
	}
	r := newRig(t)
	p, err := local.New(local.Config{StateDir: state, NATSURL: r.natsURL, Command: nodeCommand, SourceDir: src, ReadyTimeout: upTimeout})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, binary, config, wantErr string
	}{
		{"link-out", "strategies/bin/id", "", "outside the source directory"},
		{"link-git", "strategies/git/hooks/run.sh", "", ".git"},
		{"link-state", "strategies/state/envs/other/strategy", "", "state directory"},
		{"config-out", "strategies/run.sh", "strategies/etc.yaml", "outside the source directory"},
		{"link-in", "strategies/alias.sh", "strategies/cfg.yaml", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := p.Provision(t.Context(), envmgr.Environment{Name: c.name, ExpiresAt: time.Now().Add(time.Hour)}, strategySpec(t, c.name, c.binary, c.config))
			defer func() { _ = p.Destroy(t.Context(), c.name) }()
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatal(err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("err %v, want %q", err, c.wantErr)
			}
		})
	}
}

// TestStrategyGetsAMinimalEnvironment: neither the node nor its strategy
// inherits the manager's environment (here a cloud secret); the strategy's
// paths are absolute.
func TestStrategyGetsAMinimalEnvironment(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
	src := t.TempDir()
	write(t, filepath.Join(src, "strategies/dump.sh"), "#!/bin/sh\nenv > \"$PWD/strategy.env.tmp\" && mv \"$PWD/strategy.env.tmp\" \"$PWD/strategy.env\"\nexec sleep 60\n", 0o755)
	write(t, filepath.Join(src, "strategies/cfg.yaml"), "k: v\n", 0o644)
	r := newRig(t)
	p, err := local.New(local.Config{StateDir: r.stateDir, NATSURL: r.natsURL, Command: nodeCommand, SourceDir: src, ReadyTimeout: upTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Provision(t.Context(), envmgr.Environment{Name: "envdump", ExpiresAt: time.Now().Add(time.Hour)}, strategySpec(t, "envdump", "strategies/dump.sh", "strategies/cfg.yaml")); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Destroy(t.Context(), "envdump") }()
	dump := filepath.Join(r.stateDir, "envdump", "strategy.env")
	raw := waitFile(t, dump)
	env := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k := range env {
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "GO") {
			t.Errorf("the strategy inherited %s", k)
		}
	}
	if env["PADDOCK_STRATEGY_CONFIG"] != filepath.Join(src, "strategies/cfg.yaml") || env["PADDOCK_ENV"] != "envdump" {
		t.Errorf("strategy settings %v", env)
	}
	nodePID := pidOf(t, r.stateDir, "envdump")
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", nodePID))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(environ), "AWS_SECRET_ACCESS_KEY") {
		t.Error("the node inherited AWS_SECRET_ACCESS_KEY")
	}
}

// TestRelativeStateDirRunsTheStrategy is the first wave's broken demo: with
// the default relative state directory, the Go strategy was built into its
// own source folder and never ran. The binary now lands in the
// environment's directory and runs.
func TestRelativeStateDirRunsTheStrategy(t *testing.T) {
	repo := t.TempDir()
	write(t, filepath.Join(repo, "strategies/gostrat/go.mod"), "module gostrat\n\ngo 1.22\n", 0o644)
	write(t, filepath.Join(repo, "strategies/gostrat/main.go"), `package main

import "os"

func main() {
	_ = os.WriteFile("ran", []byte(os.Getenv("PADDOCK_NATS_CREDS")), 0o600)
	select {}
}
`, 0o644)
	r := newRig(t)
	t.Chdir(repo)
	p, err := local.New(local.Config{StateDir: ".state/envs", NATSURL: r.natsURL, Command: nodeCommand, SourceDir: ".", ReadyTimeout: upTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Provision(t.Context(), envmgr.Environment{Name: "rel", ExpiresAt: time.Now().Add(time.Hour)}, strategySpec(t, "rel", "strategies/gostrat", "")); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Destroy(t.Context(), "rel") }()
	waitFile(t, filepath.Join(repo, ".state/envs/rel/ran"))
	if _, err := os.Stat(filepath.Join(repo, "strategies/gostrat/.state")); err == nil {
		t.Fatal("the strategy was built into its source folder")
	}
}

func waitFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if raw, err := os.ReadFile(path); err == nil {
			return raw
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(20 * time.Millisecond) // polling a file the strategy writes
	}
}

// TestStopAllStopsAdoptedNodes: a manager restarted after a crash adopts
// the nodes its predecessor started, and on shutdown stops those too, not
// only the ones it started itself.
func TestStopAllStopsAdoptedNodes(t *testing.T) {
	r := newRig(t)
	first := r.provisioner(t)
	s := strategySpec(t, "adopted", "x", "")
	e := envmgr.Environment{Name: "adopted", ExpiresAt: time.Now().Add(time.Hour)}
	if _, err := first.Provision(t.Context(), e, s); err != nil {
		t.Fatal(err)
	}
	pid := pidOf(t, r.stateDir, "adopted")
	second := r.provisioner(t) // the restarted manager's
	if _, err := second.Provision(t.Context(), e, s); err != nil {
		t.Fatal(err)
	}
	if pidOf(t, r.stateDir, "adopted") != pid {
		t.Fatal("the restarted manager started a second node instead of adopting")
	}
	second.StopAll(t.Context())
	if alive(pid) {
		t.Fatal("the adopted node outlived the manager's shutdown")
	}
}
