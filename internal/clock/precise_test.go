package clock_test

import (
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/clock"
)

func TestSleepUntilReachesDueOnTheRealClock(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, 0, 50 * time.Microsecond, 700 * time.Microsecond, 3 * time.Millisecond} {
		due := time.Now().Add(d)
		if !clock.SleepUntil(clock.Real, due, nil) {
			t.Fatalf("%v: SleepUntil reported an interruption", d)
		}
		if now := time.Now(); now.Before(due) {
			t.Fatalf("%v: woke %v early", d, due.Sub(now))
		}
	}
}

func TestSleepUntilStopsWhenDone(t *testing.T) {
	done := make(chan struct{})
	close(done)
	start := time.Now()
	if clock.SleepUntil(clock.Real, start.Add(time.Hour), done) {
		t.Fatal("SleepUntil reached an hour away with done closed")
	}
	if clock.SleepUntil(clock.Real, start.Add(-time.Second), done) {
		t.Fatal("SleepUntil reported success with done closed")
	}
}

func TestSleepUntilOnAFakeClockWaitsForTheClock(t *testing.T) {
	f := clock.NewFake(time.Unix(1000, 0))
	res := make(chan bool, 1)
	go func() { res <- clock.SleepUntil(f, f.Now().Add(time.Minute), nil) }()
	if !f.WaitFor(t.Context(), func(armed int) bool { return armed == 1 }) {
		t.Fatal("no timer armed")
	}
	select {
	case <-res:
		t.Fatal("returned before the fake clock moved")
	default:
	}
	f.Advance(time.Minute)
	if !<-res {
		t.Fatal("SleepUntil reported an interruption")
	}
}
