package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testSpec = `version: 1
environment: {name: %s}
exchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]
market_data: {mode: live}
risk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}
strategy: {binary: strategies/%s}
`

// devStack runs `paddock dev` (simulator, feed, NATS, manager) with no
// example, on free ports, and returns the manager's URL and the developer
// and admin tokens it keeps under its state directory.
type devStack struct {
	url, devToken, adminToken, state, src string
}

func startDev(t *testing.T, extra ...string) devStack {
	t.Helper()
	state, src := t.TempDir(), t.TempDir()
	for name, script := range map[string]string{
		"sleeper": "#!/bin/sh\nexec sleep 600\n",
		"crasher": "#!/bin/sh\necho crashing on purpose\nexit 3\n",
	} {
		if err := os.MkdirAll(filepath.Join(src, "strategies"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "strategies", name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"dev", "-nats-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0",
			"-state-dir", state, "-source-dir", src, "-example", "", "-rate", "50"}, extra...), &out, &out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("dev did not stop within 30s")
		}
	})
	re := regexp.MustCompile(`PADDOCK_URL=(\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for re.FindStringSubmatch(out.String()) == nil {
		select {
		case err := <-done:
			t.Fatalf("dev exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev printed no manager URL:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond) // polling the banner
	}
	read := func(f string) string {
		raw, err := os.ReadFile(filepath.Join(state, f))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(raw))
	}
	return devStack{url: re.FindStringSubmatch(out.String())[1], devToken: read(devTokenFile), adminToken: read(adminTokenFile), state: state, src: src}
}

func (d devStack) env(t *testing.T, token string, args ...string) (string, error) {
	var out syncBuffer
	full := append([]string{"env"}, args...)
	if args[0] != "validate" && args[0] != "token-hash" {
		full = append(full, "-server", d.url, "-token", token)
	}
	err := run(t.Context(), full, &out, &out)
	return out.String(), err
}

func exitCode(err error) int {
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	if _, ok := err.(usageError); ok {
		return exitUsage
	}
	if err != nil {
		return -1
	}
	return 0
}

func specFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), ".dev-env.yaml")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestEnvCLI drives the developer CLI against `paddock dev`: a real feed,
// manager and node processes (this test binary as `paddock node`).
func TestEnvCLI(t *testing.T) {
	d := startDev(t)
	file := specFile(t, fmt.Sprintf(testSpec, "cli-test", "sleeper"))
	if out, err := d.env(t, "", "validate", "-f", file); err != nil || !strings.Contains(out, "is valid") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	out, err := d.env(t, d.devToken, "up", "-f", file, "-wait", "-timeout", "60s")
	if err != nil || !strings.Contains(out, "cli-test is ready") {
		t.Fatalf("up -wait: %v\n%s", err, out)
	}
	admin := regexp.MustCompile(`admin URL\s+(http://\S+)`).FindStringSubmatch(out)
	if admin == nil {
		t.Fatalf("no admin URL printed:\n%s", out)
	}
	out, err = d.env(t, d.devToken, "ls", "-o", "json")
	var list []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["state"] != "ready" {
		t.Fatalf("ls -o json: %v\n%s", err, out)
	}
	if h, _ := list[0]["health"].(map[string]any); h["ready"] != true || h["books_live"] != 1.0 || h["strategy"].(map[string]any)["running"] != true {
		t.Fatalf("health in ls: %v", list[0]["health"])
	}
	if out, err := d.env(t, d.devToken, "ls"); err != nil || !strings.Contains(out, "books 1/1, strategy running (0 restarts)") {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	if out, err := d.env(t, d.devToken, "show", "cli-test"); err != nil || !strings.Contains(out, "transition -> ready") || !strings.Contains(out, "health") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if out, err := d.env(t, d.devToken, "extend", "cli-test", "-hours", "24"); err != nil || !strings.Contains(out, "ttl 72h") {
		t.Fatalf("extend: %v\n%s", err, out)
	}
	if out, err := d.env(t, d.devToken, "extend", "cli-test", "-hours", "48"); err != nil || !strings.Contains(out, "an admin must approve it") {
		t.Fatalf("extend past 96h: %v\n%s", err, out)
	}
	if out, err := d.env(t, d.devToken, "approve", "cli-test"); exitCode(err) != exitAuth {
		t.Fatalf("a developer approving: %v\n%s", err, out)
	}
	if out, err := d.env(t, d.adminToken, "approve", "cli-test"); err != nil || !strings.Contains(out, "ttl 120h") {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	if out, err := d.env(t, d.devToken, "stop", "cli-test", "-wait"); err != nil {
		t.Fatalf("stop -wait: %v\n%s", err, out)
	}
	if out, err := d.env(t, d.devToken, "start", "cli-test", "-wait"); err != nil || !strings.Contains(out, "is ready") {
		t.Fatalf("start -wait: %v\n%s", err, out)
	}
	if out, err := d.env(t, d.devToken, "down", "cli-test", "-wait"); err != nil {
		t.Fatalf("down -wait: %v\n%s", err, out)
	}
	// The name is free again.
	if out, err := d.env(t, d.devToken, "up", "-f", file); err != nil {
		t.Fatalf("up again after down: %v\n%s", err, out)
	}

	// Exit codes scripts rely on.
	bad := specFile(t, "version: 1\nexchanges: []\n")
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"validate", "-f", bad}, exitRefused},
		{[]string{"up", "-f", bad}, exitRefused},
		{[]string{"show", "nope"}, exitNotFound},
		{[]string{"stop"}, exitUsage},
		{[]string{"frob"}, exitUsage},
		{[]string{"extend", "cli-test", "-hours", "0"}, exitUsage},
		{[]string{"extend", "cli-test", "-hours", "-5"}, exitUsage},
		{[]string{"ls", "-hours", "3"}, exitUsage}, // a flag ls does not take
		{[]string{"show", "Not.A.Name"}, exitRefused},
	} {
		_, err := d.env(t, d.devToken, tc.args...)
		if got := exitCode(err); got != tc.want {
			t.Errorf("env %v: exit %d (%v), want %d", tc.args, got, err, tc.want)
		}
	}
	if _, err := d.env(t, "wrong", "ls"); exitCode(err) != exitAuth {
		t.Errorf("wrong token: exit %d (%v), want %d", exitCode(err), err, exitAuth)
	}
}

// TestReadinessTellsTheTruth: ready means the node works. A strategy that
// keeps crashing leaves its environment degraded with the reason, not
// ready; an instrument or venue the feed does not carry, and replay, are
// refused when the environment is created.
func TestReadinessTellsTheTruth(t *testing.T) {
	d := startDev(t, "-node-ready-timeout", "3s")
	crash := specFile(t, fmt.Sprintf(testSpec, "crashy", "crasher"))
	out, err := d.env(t, d.devToken, "up", "-f", crash, "-wait", "-timeout", "60s")
	if exitCode(err) != exitRefused || !strings.Contains(err.Error()+out, "the strategy is not running") || !strings.Contains(err.Error()+out, "exit status 3") {
		t.Fatalf("a crash-looping strategy: exit %d %v\n%s", exitCode(err), err, out)
	}
	out, _ = d.env(t, d.devToken, "ls")
	if !strings.Contains(out, "degraded") || strings.Contains(out, "crashy  ready") {
		t.Fatalf("ls shows a crash-looping environment as:\n%s", out)
	}
	// Fixed: the same strategy path now runs, and the environment becomes
	// ready by itself.
	if err := os.WriteFile(filepath.Join(d.src, "strategies", "crasher"), []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ = d.env(t, d.devToken, "ls", "-o", "json")
		var list []map[string]any
		_ = json.Unmarshal([]byte(out), &list)
		if len(list) == 1 && list[0]["state"] == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fixed strategy never made the environment ready:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond) // polling the manager: the reconciler ticks every 10s
	}

	for _, tc := range []struct{ name, spec, want string }{
		{"uncarried venue", strings.Replace(fmt.Sprintf(testSpec, "bybitty", "sleeper"), "{name: binance, type: spot", "{name: bybit, type: spot", 1),
			"the feed does not carry bybit spot"},
		{"uncarried instrument", strings.Replace(fmt.Sprintf(testSpec, "dogey", "sleeper"), "BTC/USDT", "DOGE/USDT", 1), "not DOGE/USDT"},
		{"replay", strings.Replace(fmt.Sprintf(testSpec, "replayer", "sleeper"), "{mode: live}", "{mode: replay, replay_start: \"2025-01-01\", replay_end: \"2025-01-02\"}", 1),
			"is not covered: binance btcusdt recorded"},
	} {
		out, err := d.env(t, d.devToken, "up", "-f", specFile(t, tc.spec))
		if exitCode(err) != exitRefused || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: exit %d %v\n%s", tc.name, exitCode(err), err, out)
		}
	}
}

// TestCLIConventions: -h and --help print usage and exit 0 for every
// command and subcommand; a secret never appears in help; version and
// completion work.
func TestCLIConventions(t *testing.T) {
	t.Setenv("PADDOCK_TOKEN", "s3cret-token-value")
	var cmds [][]string
	for name := range commands {
		cmds = append(cmds, []string{name})
	}
	for _, sub := range envCommands {
		cmds = append(cmds, []string{"env", sub})
	}
	cmds = append(cmds, []string{"wire", "decode"}, []string{})
	for _, c := range cmds {
		for _, h := range []string{"-h", "--help"} {
			var out syncBuffer
			err := run(t.Context(), append(append([]string{}, c...), h), &out, &out)
			if err != nil {
				t.Errorf("paddock %v %s: %v", c, h, err)
			}
			if strings.Contains(out.String(), "s3cret") {
				t.Errorf("paddock %v %s prints the token:\n%s", c, h, out.String())
			}
			if len(c) == 2 && c[0] == "env" && !strings.Contains(out.String(), "usage: paddock env "+c[1]) {
				t.Errorf("paddock %v %s: no usage of its own:\n%s", c, h, out.String())
			}
		}
	}
	var out syncBuffer
	if err := run(t.Context(), []string{"env", "ls", "-h"}, &out, &out); err != nil || strings.Contains(out.String(), "-hours") || strings.Contains(out.String(), "-wait") {
		t.Errorf("env ls -h lists flags ls does not take:\n%s", out.String())
	}
	out = syncBuffer{}
	if err := run(t.Context(), []string{"version"}, &out, &out); err != nil || !strings.HasPrefix(out.String(), "paddock ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	for _, sh := range []string{"bash", "zsh"} {
		out = syncBuffer{}
		if err := run(t.Context(), []string{"completion", sh}, &out, &out); err != nil || !strings.Contains(out.String(), "complete -F _paddock paddock") {
			t.Errorf("completion %s: %v", sh, err)
		}
	}
	if err := run(t.Context(), []string{"completion", "fish"}, &out, &out); exitCode(err) != exitUsage {
		t.Errorf("completion fish: %v", err)
	}
	// validate -o json: the documented spec, or the errors, as JSON; errors
	// name the file.
	good := specFile(t, fmt.Sprintf(testSpec, "jsony", "sleeper"))
	out = syncBuffer{}
	var doc struct {
		Valid bool `json:"valid"`
		Spec  struct {
			RiskConfig map[string]string `json:"risk_config"`
		} `json:"spec"`
	}
	if err := run(t.Context(), []string{"env", "validate", "-f", good, "-o", "json"}, &out, &out); err != nil ||
		json.Unmarshal([]byte(out.String()), &doc) != nil || !doc.Valid || doc.Spec.RiskConfig["max_order_rate"] != "10" {
		t.Errorf("validate -o json: %v\n%s", err, out.String())
	}
	bad := specFile(t, "version: 1\nenvironment: {name: x}\nrisk_config:\n  max_position_usd: 5\n")
	out = syncBuffer{}
	var errs struct {
		File   string `json:"file"`
		Errors []struct {
			Line int    `json:"Line"`
			Path string `json:"Path"`
		} `json:"errors"`
	}
	err := run(t.Context(), []string{"env", "validate", "-f", bad, "-o", "json"}, &out, &out)
	if exitCode(err) != exitRefused || !strings.Contains(err.Error(), bad) || json.Unmarshal([]byte(out.String()), &errs) != nil || errs.File != bad {
		t.Fatalf("validate -o json of a bad file: %v\n%s", err, out.String())
	}
	for _, e := range errs.Errors {
		if e.Path == "risk_config.max_order_rate" && e.Line != 3 {
			t.Errorf("a missing field points at line %d, not its parent's (3)", e.Line)
		}
	}
}
