package clock

import (
	"context"
	"sync"
	"time"
)

// Fake is a clock that moves only when Advance is called. Timers and tickers
// fire (non-blocking, channel capacity 1, like the runtime's) when the clock
// passes their deadline. Safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters map[*fakeTimer]struct{}
	changed chan struct{} // closed and replaced whenever waiters change
}

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, waiters: map[*fakeTimer]struct{}{}, changed: make(chan struct{})}
}

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *Fake) NewTimer(d time.Duration) Timer { return f.add(d, 0) }

func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive ticker interval")
	}
	return fakeTicker{f.add(d, d)}
}

// fakeTicker adapts a periodic fakeTimer to Ticker.
type fakeTicker struct{ t *fakeTimer }

func (k fakeTicker) C() <-chan time.Time { return k.t.c }
func (k fakeTicker) Stop()               { k.t.Stop() }

func (f *Fake) add(d, period time.Duration) *fakeTimer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1), period: period}
	f.mu.Lock()
	t.at = f.now.Add(d)
	f.arm(t)
	f.mu.Unlock()
	return t
}

// arm registers t. Caller holds f.mu.
func (f *Fake) arm(t *fakeTimer) {
	f.waiters[t] = struct{}{}
	close(f.changed)
	f.changed = make(chan struct{})
}

// Advance moves the clock forward by d, firing every timer and ticker whose
// deadline it passes, in deadline order.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.now.Add(d)
	for {
		var next *fakeTimer
		for t := range f.waiters {
			if !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		if next.at.After(f.now) {
			f.now = next.at
		}
		select {
		case next.c <- f.now:
		default: // the reader is behind; like the runtime, drop the tick
		}
		if next.period > 0 {
			next.at = next.at.Add(next.period)
		} else {
			delete(f.waiters, next)
		}
	}
	f.now = end
	close(f.changed)
	f.changed = make(chan struct{})
}

// Waiters returns how many timers and tickers are armed.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// WaitFor blocks until cond (called with the number of armed timers and
// tickers) holds or ctx ends; it reports whether cond held. Tests use it to
// know that the code under test has reached its next wait before advancing.
func (f *Fake) WaitFor(ctx context.Context, cond func(armed int) bool) bool {
	for {
		f.mu.Lock()
		n, ch := len(f.waiters), f.changed
		f.mu.Unlock()
		if cond(n) {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

type fakeTimer struct {
	f      *Fake
	c      chan time.Time
	at     time.Time
	period time.Duration
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	_, armed := t.f.waiters[t]
	if armed {
		delete(t.f.waiters, t)
		close(t.f.changed)
		t.f.changed = make(chan struct{})
	}
	t.drain()
	return armed
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	_, armed := t.f.waiters[t]
	t.drain()
	t.at = t.f.now.Add(d)
	t.f.arm(t)
	return armed
}

// drain discards an undelivered value, as Go 1.23 timers do on Stop/Reset.
func (t *fakeTimer) drain() {
	select {
	case <-t.c:
	default:
	}
}

// Next returns how long until the earliest armed timer or ticker fires, and
// whether any is armed: tests read the wait the code under test chose.
func (f *Fake) Next() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var next *fakeTimer
	for t := range f.waiters {
		if next == nil || t.at.Before(next.at) {
			next = t
		}
	}
	if next == nil {
		return 0, false
	}
	return next.at.Sub(f.now), true
}
