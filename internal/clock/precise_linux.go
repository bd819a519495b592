package clock

import (
	"syscall"
	"time"
)

// preciseSleep blocks the calling thread for d with the kernel's
// high-resolution timer (within its ~50µs default slack), where a runtime
// timer would round up to the poller's millisecond.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil) // EINTR: the caller re-checks the time
}
