package clock

import (
	"runtime"
	"time"
)

// SleepUntil waits until due on c, or until done is closed; it reports
// whether due was reached. On a fake clock it is a timer. On the real
// clock a runtime timer alone is not precise enough for pacing: the
// runtime's poller sleeps in whole milliseconds, so a sub-millisecond wait
// wakes up to a millisecond late. The bulk of a wait is a timer (done can
// interrupt it); then the thread sleeps in the kernel (preciseSleep) until
// spinWait before due, and yields for the rest: a wait costs at most
// spinWait of a core, and done is noticed within fineWait.
func SleepUntil(c Clock, due time.Time, done <-chan struct{}) bool {
	if c != Real {
		if d := due.Sub(c.Now()); d > 0 {
			return Sleep(c, d, done)
		}
		return !closed(done)
	}
	if d := time.Until(due); d > fineWait {
		if !Sleep(c, d-fineWait, done) {
			return false
		}
	}
	for {
		d := time.Until(due)
		switch {
		case d <= 0:
			return !closed(done)
		case d > spinWait:
			preciseSleep(d - spinWait)
		default:
			runtime.Gosched()
		}
	}
}

const (
	// fineWait is the stretch before a due time not left to a runtime
	// timer: more than the poller's millisecond granularity.
	fineWait = 2 * time.Millisecond
	// spinWait is the stretch spun: more than the kernel's timer slack
	// (50µs) and a thread's return from a system call.
	spinWait = 300 * time.Microsecond
)

func closed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}
