package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
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
