//go:build !linux

package clock

import (
	"runtime"
	"time"
)

// preciseSleep yields until d has passed: without nanosleep, a spin that
// lets other goroutines run is the precise option.
func preciseSleep(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		runtime.Gosched()
	}
}
