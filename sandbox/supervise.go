package sandbox

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Supervisor runs the strategy as a child process: it captures its output
// into the node's log and a ring of recent lines, restarts it with doubling
// backoff when it exits, and stops it on halt (Pause) or when the node stops.
// Its methods are safe for concurrent use.
type Supervisor struct {
	cmd      []string
	env      []string
	dir      string
	min, max time.Duration
	log      *slog.Logger
	metrics  *Metrics

	mu       sync.Mutex
	paused   bool
	running  bool
	upSince  time.Time // when the current process started
	pid      int
	restarts int
	lastExit string
	lines    []string // the most recent output lines
	wake     chan struct{}
	stop     chan struct{} // closed to stop the current process
}

const logLines = 500

// NewSupervisor prepares a supervisor; Run starts it.
func NewSupervisor(c *StrategyConfig, env []string, log *slog.Logger, m *Metrics) *Supervisor {
	s := &Supervisor{cmd: c.Command, env: env, dir: c.Dir, log: log.With("component", "strategy"), metrics: m,
		min: time.Second, max: 30 * time.Second, wake: make(chan struct{}, 1)}
	if c.RestartMinMillis > 0 {
		s.min = time.Duration(c.RestartMinMillis) * time.Millisecond
	}
	if c.RestartMaxMillis > 0 {
		s.max = time.Duration(c.RestartMaxMillis) * time.Millisecond
	}
	return s
}

// Pause stops the strategy and keeps it stopped until Resume.
func (s *Supervisor) Pause() {
	s.mu.Lock()
	s.paused = true
	if s.stop != nil {
		close(s.stop)
		s.stop = nil
	}
	s.mu.Unlock()
}

// Resume lets the strategy run again.
func (s *Supervisor) Resume() {
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// StrategyStatus is what the admin API shows.
type StrategyStatus struct {
	Command  []string `json:"command"`
	Running  bool     `json:"running"`
	Paused   bool     `json:"paused"`
	PID      int      `json:"pid,omitempty"`
	Restarts int      `json:"restarts"`
	LastExit string   `json:"last_exit,omitempty"`
	// UpSince is when the running process started (zero when none runs).
	UpSince time.Time `json:"up_since,omitzero"`
}

// Status reports the strategy's state.
func (s *Supervisor) Status() StrategyStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := StrategyStatus{Command: s.cmd, Running: s.running, Paused: s.paused, PID: s.pid, Restarts: s.restarts, LastExit: s.lastExit}
	if s.running {
		st.UpSince = s.upSince
	}
	return st
}

// Logs returns up to n recent output lines.
func (s *Supervisor) Logs(n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 || n > len(s.lines) {
		n = len(s.lines)
	}
	return append([]string{}, s.lines[len(s.lines)-n:]...)
}

// Run supervises until ctx ends, then stops the strategy (SIGTERM, then
// SIGKILL after 5 s) and returns.
func (s *Supervisor) Run(ctx context.Context) {
	backoff := s.min
	for ctx.Err() == nil {
		s.mu.Lock()
		paused := s.paused
		s.mu.Unlock()
		if paused {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				backoff = s.min
				continue
			}
		}
		started := time.Now()
		err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		paused = s.paused
		s.mu.Unlock()
		if paused {
			continue // stopped by Pause, not a crash
		}
		if time.Since(started) > time.Minute {
			backoff = s.min
		}
		s.log.Warn("strategy exited; restarting", "err", err, "after", backoff)
		s.metrics.strategyRestarts.Inc()
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, s.max)
	}
}

func (s *Supervisor) runOnce(ctx context.Context) error {
	cmd := exec.Command(s.cmd[0], s.cmd[1:]...)
	// Only what client/GUIDE.md documents: the PADDOCK_ settings and what
	// finding programs needs. Nothing the node inherited reaches it.
	cmd.Env = append(strategyBaseEnv(), s.env...)
	cmd.Dir = s.dir
	// Its own process group, so stopping it stops whatever it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pw.Close()
		s.record("start: " + err.Error())
		return err
	}
	stop := make(chan struct{})
	s.mu.Lock()
	s.running, s.pid, s.stop, s.upSince = true, cmd.Process.Pid, stop, time.Now()
	s.mu.Unlock()
	s.metrics.strategyRunning.Set(1)
	s.log.Info("strategy started", "pid", cmd.Process.Pid, "command", s.cmd)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			line := sc.Text()
			s.log.Info(line)
			s.mu.Lock()
			if len(s.lines) == logLines {
				s.lines = append(s.lines[:0], s.lines[1:]...)
			}
			s.lines = append(s.lines, line)
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-ctx.Done():
		err = terminate(cmd, exited)
	case <-stop:
		err = terminate(cmd, exited)
	}
	pw.Close()
	<-copied
	s.mu.Lock()
	s.running, s.pid = false, 0
	if s.stop == stop {
		s.stop = nil
	}
	s.mu.Unlock()
	s.metrics.strategyRunning.Set(0)
	if err == nil {
		err = errors.New("exited with status 0")
	}
	s.record(err.Error())
	return err
}

// strategyBaseEnv is what a strategy gets besides its PADDOCK_ settings.
func strategyBaseEnv() []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	for _, k := range []string{"HOME", "TMPDIR", "TZ", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (s *Supervisor) record(exit string) {
	s.mu.Lock()
	s.lastExit = exit
	s.mu.Unlock()
}

// terminate sends SIGTERM to the process group, then SIGKILL after 5 s.
func terminate(cmd *exec.Cmd, exited <-chan error) error {
	pgid := -cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case err := <-exited:
		return err
	case <-t.C:
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		return <-exited
	}
}

// running reports whether a process exists and is not a zombie.
func running(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(stat), ") Z ")
}
