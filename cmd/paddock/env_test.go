package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr/api"
	"github.com/paddockhq/paddock/envmgr/daemon"
	"github.com/paddockhq/paddock/internal/embednats"
)

const testSpec = `version: 1
environment: {name: cli-test}
exchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]
market_data: {mode: live}
risk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}
strategy: {binary: strategies/x}
`

// TestEnvCLI drives the developer CLI against a running manager whose local
// provisioner starts real `paddock node` processes (this test binary).
func TestEnvCLI(t *testing.T) {
	ns, err := embednats.Start(embednats.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	tokens, _ := api.NewTokens([]api.Token{{Name: "alice", Role: "developer", SHA256: api.HashToken("s3cret")}})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Config{NATSURL: ns.ClientURL(), Listen: "127.0.0.1:0", StateDir: t.TempDir(), Tokens: tokens,
			NodeCommand: func(cfg string) *exec.Cmd {
				c := exec.Command(os.Args[0], "node", "-config", cfg)
				c.Env = append(os.Environ(), "PADDOCK_TEST_AS_PADDOCK=1")
				return c
			}}, nil, func(s daemon.Started) { started <- s.APIURL })
	}()
	var url string
	select {
	case url = <-started:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("manager did not start")
	}
	file := filepath.Join(t.TempDir(), ".dev-env.yaml")
	if err := os.WriteFile(file, []byte(testSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(args ...string) (string, error) {
		var out syncBuffer
		err := run(ctx, append(append([]string{"env"}, args...), "-server", url, "-token", "s3cret"), &out, &out)
		return out.String(), err
	}
	code := func(err error) int {
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

	if out, err := env("validate", "-f", file); err != nil || !strings.Contains(out, "is valid") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	out, err := env("up", "-f", file, "-wait", "-timeout", "30s")
	if err != nil || !strings.Contains(out, "cli-test is ready") {
		t.Fatalf("up -wait: %v\n%s", err, out)
	}
	admin := regexp.MustCompile(`admin URL\s+(http://\S+)`).FindStringSubmatch(out)
	if admin == nil {
		t.Fatalf("no admin URL printed:\n%s", out)
	}
	out, err = env("ls", "-o", "json")
	var list []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["state"] != "ready" {
		t.Fatalf("ls -o json: %v\n%s", err, out)
	}
	if out, err := env("show", "cli-test"); err != nil || !strings.Contains(out, "transition -> ready") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if out, err := env("stop", "cli-test", "-wait"); err != nil {
		t.Fatalf("stop -wait: %v\n%s", err, out)
	}
	if out, err := env("start", "cli-test", "-wait"); err != nil || !strings.Contains(out, "is ready") {
		t.Fatalf("start -wait: %v\n%s", err, out)
	}
	if out, err := env("down", "cli-test", "-wait"); err != nil {
		t.Fatalf("down -wait: %v\n%s", err, out)
	}

	// Exit codes scripts rely on.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("version: 1\nexchanges: []\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"validate", "-f", bad}, exitRefused},
		{[]string{"up", "-f", bad}, exitRefused},
		{[]string{"show", "nope"}, exitNotFound},
		{[]string{"stop"}, exitUsage},
		{[]string{"frob"}, exitUsage},
	} {
		_, err := env(tc.args...)
		if got := code(err); got != tc.want {
			t.Errorf("env %v: exit %d (%v), want %d", tc.args, got, err, tc.want)
		}
	}
	var out2 syncBuffer
	err = run(ctx, []string{"env", "ls", "-server", url, "-token", "wrong"}, &out2, &out2)
	if code(err) != exitAuth {
		t.Errorf("wrong token: exit %d (%v), want %d", code(err), err, exitAuth)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("manager: %v", err)
	}
}
