package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/api"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a running
// command and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDevStartsAndStopsCleanly runs what `make run` runs, checks that it
// prints where to look and returns nil once interrupted.
func TestDevStartsAndStopsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "-nats-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0", "-state-dir", t.TempDir(), "-rate", "50", "-example", ""}, &out, &out)
	}()
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(out.String(), "PADDOCK_TOKEN=") {
		select {
		case err := <-done:
			t.Fatalf("dev exited early: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("dev printed no instructions within 15s:\n%s", out.String())
		case <-tick.C:
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dev did not stop within 15s")
	}
}

// TestDevRunsTheExampleEndToEnd is `make run` with the example environment:
// the manager provisions a node (this test binary as `paddock node`), which
// builds and supervises the example strategy; the strategy's orders pass the
// risk gate and fill on paper against the simulator's book. On interrupt
// everything stops and no process is left behind.
func TestDevRunsTheExampleEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example strategy")
	}
	// Children of this process (the node) act as the paddock binary.
	t.Setenv("PADDOCK_TEST_AS_PADDOCK", "1")
	state := t.TempDir()
	began := time.Now()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "-nats-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0",
			"-state-dir", state, "-rate", "200", "-example", "../../examples/.dev-env.yaml", "-source-dir", "../.."}, &out, &out)
	}()
	defer func() {
		if t.Failed() { // stop dev, and with it its nodes, before the test binary exits
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
			}
		}
	}()
	wait := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.After(limit)
		tick := time.NewTicker(50 * time.Millisecond) // polls: the system runs in other goroutines and processes
		defer tick.Stop()
		for !cond() {
			select {
			case err := <-done:
				t.Fatalf("dev exited early: %v\n%s", err, out.String())
			case <-deadline:
				t.Fatalf("timed out waiting for %s:\n%s", what, out.String())
			case <-tick.C:
			}
		}
	}
	wait("the example environment", 90*time.Second, func() bool {
		return strings.Contains(out.String(), "example environment example-mean-reversion is ready")
	})
	dir := filepath.Join(state, "envs", "example-mean-reversion")
	key, _ := os.ReadFile(filepath.Join(dir, "api-key"))
	ep, _ := os.ReadFile(filepath.Join(dir, "endpoint"))
	var st struct {
		Strategy struct {
			Running bool `json:"running"`
			PID     int  `json:"pid"`
		} `json:"strategy"`
		OpenOrders  int `json:"open_orders"`
		RecentFills int `json:"recent_fills"`
	}
	wait("the strategy's first fill", 60*time.Second, func() bool {
		req, _ := http.NewRequest("GET", string(ep)+"/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Strategy.Running && st.RecentFills > 0
	})
	nodePID, _ := os.ReadFile(filepath.Join(dir, "node.pid"))

	// The simulator has been recorded since the feed started: a replay
	// environment of the last few seconds comes up, and the same strategy
	// trades on the replayed books.
	apiURL := regexp.MustCompile(`export PADDOCK_URL=(\S+)`).FindStringSubmatch(out.String())
	if apiURL == nil {
		t.Fatalf("no API URL in the banner:\n%s", out.String())
	}
	token, _ := os.ReadFile(filepath.Join(state, devTokenFile))
	c := &api.Client{BaseURL: apiURL[1], Token: strings.TrimSpace(string(token))}
	// A window inside what is recorded: from a few seconds after the feed
	// started to a second ago.
	// (the example strategy trades once it has seen a window of prices)
	wait("half a minute of recording", 90*time.Second, func() bool { return time.Since(began) > 35*time.Second })
	start := began.Add(5 * time.Second).Truncate(time.Second)
	end := time.Now().Add(-time.Second).Truncate(time.Second)
	raw, _ := os.ReadFile("../../examples/replay.dev-env.yaml")
	y := regexp.MustCompile(`replay_start: "[^"]*"`).ReplaceAllString(string(raw), `replay_start: "`+start.UTC().Format(time.RFC3339)+`"`)
	y = regexp.MustCompile(`replay_end: "[^"]*"`).ReplaceAllString(y, `replay_end: "`+end.UTC().Format(time.RFC3339)+`"`)
	if _, err := c.Create(ctx, api.CreateBody{SpecYAML: y}); err != nil {
		t.Fatalf("the replay example over %s .. %s: %v", start, end, err)
	}
	rdir := filepath.Join(state, "envs", "replay-demo")
	defer func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(rdir, "node.log"))
			e, _, err := c.Get(context.Background(), "replay-demo")
			t.Logf("replay-demo: %s %s %s (%v)\nnode.log:\n%s", e.State, e.Reason, e.Health.Summary(), err, log)
		}
	}()
	// The node replays the window into its namespace and its book is live
	// on it, and the example strategy follows the replayed market: its
	// summary shows book updates on the replay clock, inside the window.
	// (Whether it orders in a half-minute window depends on the market:
	// it orders when the mid strays from its average. Orders and fills
	// against replayed books: TestANodeTradesOnAReplay in sandbox.)
	summary := regexp.MustCompile(`binance:btcusdt: ([1-9][0-9]*) book updates, live true, .*market clock (\S+)"`)
	wait("the replay environment to replay its window, its strategy following it", 90*time.Second, func() bool {
		e, _, err := c.Get(ctx, "replay-demo")
		log, _ := os.ReadFile(filepath.Join(rdir, "node.log"))
		followed := false
		for _, m := range summary.FindAllSubmatch(log, -1) {
			at, err := time.Parse(time.RFC3339Nano, string(m[2]))
			followed = followed || err == nil && !at.Before(start) && at.Before(end)
		}
		return err == nil && e.State == envmgr.StateReady && e.Health != nil && e.Health.BooksLive == 1 && followed &&
			regexp.MustCompile(`replay done.*messages=[1-9]`).Match(log)
	})
	// What the example file says to run: `paddock record coverage` with the
	// manager's credentials shows the recorded instrument; an import of a
	// Binance dump with the same credentials is stored and shown too.
	natsURL := regexp.MustCompile(`NATS\s+(nats://\S+)`).FindStringSubmatch(out.String())
	if natsURL == nil {
		t.Fatalf("no NATS URL in the banner:\n%s", out.String())
	}
	creds := filepath.Join(state, "nats-auth", "envmgr.creds")
	var rec bytes.Buffer
	if err := run(ctx, []string{"record", "coverage", "-nats-url", natsURL[1], "-nats-creds", creds}, &rec, &rec); err != nil ||
		!regexp.MustCompile(`(?m)^binance btcusdt recorded \S+Z \.\. \S+Z$`).Match(rec.Bytes()) {
		t.Fatalf("record coverage: %v\n%s", err, rec.String())
	}
	zp := binanceDump(t, "ETHUSDT-trades-2025-03-04", "1,2000.5,0.1,200.05,1741046400000,true,true\n2,2000.6,0.2,400.12,1741046460000,false,true\n")
	rec.Reset()
	if err := run(ctx, []string{"record", "import", "-nats-url", natsURL[1], "-nats-creds", creds, "-venue", "binance", "-symbol", "ethusdt", "-kind", "trades", zp}, &rec, &rec); err != nil ||
		!strings.Contains(rec.String(), "imported 2 messages of binance ethusdt") {
		t.Fatalf("record import: %v\n%s", err, rec.String())
	}
	rec.Reset()
	if err := run(ctx, []string{"record", "coverage", "-nats-url", natsURL[1], "-nats-creds", creds}, &rec, &rec); err != nil ||
		!strings.Contains(rec.String(), "binance ethusdt recorded 2025-03-04T00:00:00Z .. 2025-03-04T00:01:00Z (imported, 1 days, no books)") {
		t.Fatalf("record coverage after the import: %v\n%s", err, rec.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop within 30s")
	}
	for _, pid := range []string{strings.TrimSpace(string(nodePID)), strconv.Itoa(st.Strategy.PID)} {
		if n, _ := strconv.Atoi(pid); n > 0 && syscall.Kill(n, 0) == nil {
			if stat, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil && !strings.Contains(string(stat), ") Z ") {
				t.Errorf("process %s still running after dev stopped", pid)
			}
		}
	}
}

// binanceDump writes a Binance public-data dump (a zip of one CSV) and its
// .CHECKSUM beside it, as data.binance.vision serves them.
func binanceDump(t *testing.T, name, csv string) string {
	t.Helper()
	zp := filepath.Join(t.TempDir(), name+".zip")
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create(name + ".csv")
	_, _ = w.Write([]byte(csv))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zp, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b.Bytes())
	if err := os.WriteFile(zp+".CHECKSUM", []byte(hex.EncodeToString(sum[:])+"  "+name+".zip\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return zp
}
