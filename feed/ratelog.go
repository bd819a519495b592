package feed

import (
	"sync/atomic"
	"time"
)

// RateLog lets one log line through per 5 seconds and counts the rest, so a
// venue adapter can report bad frames without logging per tick. The zero
// value is ready; safe for concurrent use.
type RateLog struct {
	last       atomic.Int64
	suppressed atomic.Int64
}

// Maybe calls log with the number of lines suppressed since the last one,
// unless a line went out less than 5 s before now.
func (r *RateLog) Maybe(now time.Time, log func(suppressed int64)) {
	last := r.last.Load()
	if now.UnixNano()-last < int64(5*time.Second) || !r.last.CompareAndSwap(last, now.UnixNano()) {
		r.suppressed.Add(1)
		return
	}
	log(r.suppressed.Swap(0))
}
