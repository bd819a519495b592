package sandbox

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func runSupervisor(t *testing.T, c *StrategyConfig) (*Supervisor, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	s := NewSupervisor(c, []string{"PADDOCK_ENV=sup"}, slog.New(slog.DiscardHandler), m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, m
}

// TestCrashingStrategyIsRestarted: a strategy that exits at once is started
// again and again, with backoff, its output captured.
func TestCrashingStrategyIsRestarted(t *testing.T) {
	s, m := runSupervisor(t, &StrategyConfig{Command: []string{"sh", "-c", `echo "up in $PADDOCK_ENV"; exit 3`},
		RestartMinMillis: 10, RestartMaxMillis: 40})
	eventually(t, "three restarts", func() bool { return s.Status().Restarts >= 3 })
	var pm dto.Metric
	if err := m.strategyRestarts.Write(&pm); err != nil || pm.GetCounter().GetValue() < 3 {
		got := pm.GetCounter().GetValue()
		t.Fatalf("restart metric %v", got)
	}
	if logs := s.Logs(0); !slices.Contains(logs, "up in sup") {
		t.Fatalf("logs %q", logs)
	}
	if st := s.Status(); !strings.Contains(st.LastExit, "exit status 3") {
		t.Fatalf("last exit %q", st.LastExit)
	}
}

// TestHaltStopsTheStrategy: Pause stops a running strategy (its whole
// process group) and keeps it stopped; Resume starts it again.
func TestHaltStopsTheStrategy(t *testing.T) {
	s, _ := runSupervisor(t, &StrategyConfig{Command: []string{"sh", "-c", "echo started; sleep 60 & wait"}, RestartMinMillis: 10})
	eventually(t, "the strategy to run", func() bool { return s.Status().Running && slices.Contains(s.Logs(0), "started") })
	pid := s.Status().PID
	s.Pause()
	eventually(t, "the strategy to stop", func() bool { st := s.Status(); return !st.Running && st.Paused })
	if running(pid) {
		t.Fatalf("process %d still running after Pause", pid)
	}
	if s.Status().Restarts != 0 {
		t.Fatal("a paused strategy counted as a crash")
	}
	s.Resume()
	eventually(t, "the strategy to run again", func() bool { st := s.Status(); return st.Running && st.PID != pid })
}
