package newcomer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const example = "example-mean-reversion"

// TestNewcomer is a new user's first ten minutes, as the README tells them.
// On the first wave's code it failed: the example strategy was built into
// its own source folder and never ran while everything said ready.
func TestNewcomer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make run in a copy of the repository (about a minute)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed; the README's two commands need it")
	}
	for _, addr := range []string{"127.0.0.1:4222", "127.0.0.1:9464", "127.0.0.1:8090"} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s is in use: make run needs its default ports", addr)
		}
	}
	dir := copyRepo(t)

	// First run.
	first := startMakeRun(t, dir)
	first.wait(t, "the example environment", 5*time.Minute, func(out string) bool {
		return strings.Contains(out, "example environment "+example+" is ready")
	})
	out := first.out.String()
	if strings.Contains(out, "NOT working") || strings.Contains(out, "failed while") {
		t.Fatalf("make run:\n%s", out)
	}
	// The strategy really trades: running, with orders and fills on both
	// of the example's venues (Binance spot and Bybit perpetual), and its
	// binary in the environment's folder, not in the source tree.
	st := waitTrading(t, dir)
	waitFillsOn(t, dir, "binance", "bybit-perp")
	if _, err := os.Stat(filepath.Join(dir, "examples/strategies/mean-reversion/.state")); err == nil {
		t.Error("the strategy was built into its source folder")
	}
	if !strings.HasPrefix(st.Strategy.Command[0], filepath.Join(dir, ".state", "envs", example)) {
		t.Errorf("strategy command %v is not in the environment's folder", st.Strategy.Command)
	}
	token, _ := os.ReadFile(filepath.Join(dir, ".state", "dev-token"))

	// Every command the program printed works as printed, from the
	// repository root.
	cmds := printedCommands(out)
	if len(cmds.run) < 6 {
		t.Fatalf("only %d commands printed:\n%s", len(cmds.run), out)
	}
	for _, c := range cmds.run {
		runPrinted(t, dir, cmds.exports, c)
	}

	// Closing the terminal stops everything.
	first.hangup(t)
	noneLeft(t, dir)

	// A second run finds the environment, starts it again and prints the
	// same details, with the same token.
	second := startMakeRun(t, dir)
	second.wait(t, "the example environment again", 3*time.Minute, func(out string) bool {
		return strings.Contains(out, "example environment "+example+" is ready")
	})
	out2 := second.out.String()
	if !strings.Contains(out2, "exists from an earlier run") {
		t.Errorf("the second run did not say it found the environment:\n%s", out2)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, ".state", "dev-token")); !bytes.Equal(again, token) {
		t.Error("the second run changed the developer token")
	}
	for _, line := range []string{"export PADDOCK_URL=http://127.0.0.1:8090 PADDOCK_TOKEN=$(cat .state/dev-token)", "bin/paddock env ls"} {
		if !strings.Contains(out2, line) {
			t.Errorf("the second run did not print %q:\n%s", line, out2)
		}
	}
	waitTrading(t, dir)
	// Ctrl-C reaches paddock (a terminal's foreground group is paddock's
	// own): it stops everything and make run exits 0.
	second.interruptPaddock(t)
	if err := second.exit(t); err != nil {
		t.Errorf("make run after Ctrl-C: %v\n%s", err, second.out.String())
	}
	noneLeft(t, dir)
}

// copyRepo copies the tracked and untracked-but-not-ignored files, as a
// fresh clone would have them.
func copyRepo(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "paddock")
	list, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("no git checkout to copy (%v)", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		info, err := os.Lstat(src)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the work tree, or a link
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, raw, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

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

type makeRun struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
	dir  string
}

func startMakeRun(t *testing.T, dir string) *makeRun {
	t.Helper()
	m := &makeRun{out: &syncBuffer{}, done: make(chan error, 1), dir: dir}
	m.cmd = exec.Command("make", "run")
	m.cmd.Dir = dir
	m.cmd.Env = userEnv()
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's job
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.done <- m.cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		killLeft(dir)
	})
	return m
}

// userEnv is the test's environment without paddock settings, so that make
// run starts on its defaults as a newcomer's would.
func userEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PADDOCK_") {
			env = append(env, kv)
		}
	}
	return env
}

func (m *makeRun) wait(t *testing.T, what string, limit time.Duration, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond(m.out.String()) {
		select {
		case err := <-m.done:
			t.Fatalf("make run exited (%v) before %s:\n%s", err, what, m.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s:\n%s", what, m.out.String())
		}
		time.Sleep(100 * time.Millisecond) // polling a child's output
	}
}

// hangup closes the terminal: SIGHUP to make's process group.
func (m *makeRun) hangup(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGHUP)
	_ = m.exit(t)
}

// interruptPaddock is Ctrl-C in a terminal where paddock took the
// foreground: SIGINT to paddock alone.
func (m *makeRun) interruptPaddock(t *testing.T) {
	t.Helper()
	pids := processesIn(m.dir, "bin/paddock\x00dev")
	if len(pids) != 1 {
		t.Fatalf("%d paddock dev processes, want 1", len(pids))
	}
	_ = syscall.Kill(pids[0], syscall.SIGINT)
}

func (m *makeRun) exit(t *testing.T) error {
	t.Helper()
	select {
	case err := <-m.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("make run did not exit within 60s:\n%s", m.out.String())
	}
	return nil
}

type nodeStatus struct {
	Strategy struct {
		Running bool     `json:"running"`
		Command []string `json:"command"`
	} `json:"strategy"`
	OpenOrders  int `json:"open_orders"`
	RecentFills int `json:"recent_fills"`
}

// waitTrading waits until the example's node reports its strategy running
// with fills, asked through the node's admin API with the printed key.
func waitTrading(t *testing.T, dir string) nodeStatus {
	t.Helper()
	envDir := filepath.Join(dir, ".state", "envs", example)
	deadline := time.Now().Add(2 * time.Minute)
	var st nodeStatus
	for {
		key, _ := os.ReadFile(filepath.Join(envDir, "api-key"))
		ep, _ := os.ReadFile(filepath.Join(envDir, "endpoint"))
		if len(key) > 0 && len(ep) > 0 {
			req, _ := http.NewRequest("GET", string(ep)+"/v1/status", nil)
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				err = json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
				if err == nil && st.Strategy.Running && st.RecentFills > 0 {
					return st
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example strategy did not trade within 2 minutes: %+v", st)
		}
		time.Sleep(200 * time.Millisecond) // polling the node's admin API
	}
}

// waitFillsOn waits until the example's node has filled orders on every
// named venue, asked through its admin API's /v1/fills.
func waitFillsOn(t *testing.T, dir string, venues ...string) {
	t.Helper()
	envDir := filepath.Join(dir, ".state", "envs", example)
	deadline := time.Now().Add(2 * time.Minute)
	seen := map[string]int{}
	for {
		key, _ := os.ReadFile(filepath.Join(envDir, "api-key"))
		ep, _ := os.ReadFile(filepath.Join(envDir, "endpoint"))
		req, _ := http.NewRequest("GET", string(ep)+"/v1/fills?limit=1000", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var fills []struct {
				Venue string `json:"venue"`
			}
			if json.NewDecoder(resp.Body).Decode(&fills) == nil {
				for _, f := range fills {
					seen[f.Venue]++
				}
			}
			resp.Body.Close()
		}
		missing := 0
		for _, v := range venues {
			if seen[v] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example strategy filled nothing on some of %v within 2 minutes: fills by venue %v", venues, seen)
		}
		time.Sleep(500 * time.Millisecond) // polling the node's admin API
	}
}

type printed struct {
	exports []string
	run     []string
}

// printedCommands picks the commands out of make run's output: indented
// lines that start with a program the user would run.
func printedCommands(out string) printed {
	var p printed
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "export "):
			p.exports = append(p.exports, line)
		case strings.HasPrefix(line, "bin/paddock "), strings.HasPrefix(line, "curl "), strings.HasPrefix(line, "nats "):
			if i := strings.Index(line, "   ("); i > 0 { // a trailing remark
				line = strings.TrimSpace(line[:i])
			}
			p.run = append(p.run, line)
		}
	}
	return p
}

// runPrinted runs one printed command with sh from the repository root,
// after the printed exports. Streaming commands (tap, nats sub) must print
// something, then stop cleanly on Ctrl-C (SIGINT) with exit 0; the others
// must exit 0 with some output.
func runPrinted(t *testing.T, dir string, exports []string, line string) {
	t.Helper()
	if strings.HasPrefix(line, "nats ") {
		if _, err := exec.LookPath("nats"); err != nil {
			t.Logf("skipped (no nats CLI here): %s", line)
			return
		}
	}
	script := strings.Join(append(append([]string{}, exports...), "exec "+line), "\n")
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = userEnv()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	streaming := strings.Contains(line, " tap ") || strings.HasPrefix(line, "nats sub")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	if streaming {
		for strings.Count(out.String(), "\n") < 1 {
			select {
			case err := <-done:
				t.Errorf("%s\n  exited (%v) before printing anything:\n%s", line, err, out.String())
				return
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Errorf("%s\n  printed nothing within 60s", line)
				return
			case <-time.After(50 * time.Millisecond): // polling its output
			}
		}
		_ = cmd.Process.Signal(syscall.SIGINT)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s\n  exit: %v\n%s", line, err, out.String())
			return
		}
	case <-deadline:
		_ = cmd.Process.Kill()
		t.Errorf("%s\n  did not finish within 60s:\n%s", line, out.String())
		return
	}
	text := strings.TrimSpace(out.String())
	switch {
	case text == "":
		t.Errorf("%s\n  printed nothing", line)
	case strings.HasPrefix(line, "curl ") && !json.Valid([]byte(text)):
		t.Errorf("%s\n  did not print JSON:\n%s", line, text)
	case strings.Contains(strings.ToLower(text), "error") && !strings.Contains(line, " tap "):
		t.Errorf("%s\n  printed an error:\n%s", line, text)
	}
	t.Logf("ok: %s", line)
}

// processesIn lists the processes whose working directory is dir or below
// it, or whose command line mentions dir, and whose command line contains
// match (if not empty). Zombies are not processes.
func processesIn(dir, match string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
				continue
			}
		}
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if !strings.HasPrefix(cwd, dir) && !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		if match != "" && !bytes.Contains(cmdline, []byte(match)) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// noneLeft checks that no process of the run is left: make, paddock, the
// node, the strategy.
func noneLeft(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := processesIn(dir, "")
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, pid := range left {
				cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
				desc = append(desc, strconv.Itoa(pid)+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
			t.Fatalf("processes left after stopping:\n%s", strings.Join(desc, "\n"))
		}
		time.Sleep(100 * time.Millisecond) // polling /proc while they exit
	}
}

func killLeft(dir string) {
	for _, pid := range processesIn(dir, "") {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
