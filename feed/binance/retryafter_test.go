package binance

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/clock"
)

// TestRetryAfterIsWaitedOutInFull: a 429 with Retry-After: 11 is waited out
// for the whole 11 s before the next request; the first wave's code waited
// inside the request's 10 s timeout and asked again after 10 s, which
// Binance answers with an IP ban. The adapter's clock is a fake here, so the
// test observes the wait it asks for and when it asks again.
func TestRetryAfterIsWaitedOutInFull(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			w.Header().Set("Retry-After", "11")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = w.Write([]byte(`{"lastUpdateId":1,"bids":[["1.0","1.0"]],"asks":[["2.0","1.0"]]}`))
	}))
	defer srv.Close()
	clk := clock.NewFake(time.Unix(0, 0))
	// The request timeout is short, so that a wait bounded by it (the bug)
	// would end long before the fake clock fires.
	a := &Adapter{cfg: Config{RESTURL: srv.URL, DepthLimit: 10, HTTPClient: srv.Client(), SnapshotTimeout: 50 * time.Millisecond},
		fetchSem: make(chan struct{}, 1), clk: clk}
	done := make(chan error, 1)
	go func() {
		_, err := a.fetchSnapshot(t.Context(), "BTCUSDT")
		done <- err
	}()
	clk.WaitFor(t.Context(), func(armed int) bool { return armed == 1 }) // the Retry-After wait began
	select {
	case err := <-done:
		t.Fatalf("the Retry-After wait ended with the request's timeout: %v", err)
	case <-time.After(300 * time.Millisecond): // six request timeouts: the wait must outlast them
	}
	// While the wait lasts, the semaphore stays held: no other fetch goes out.
	select {
	case a.fetchSem <- struct{}{}:
		t.Fatal("the semaphore was released during the Retry-After wait")
	default:
	}
	clk.Advance(11*time.Second - time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the wait ended before the 11 s Retry-After: %v", err)
	default:
		if clk.Waiters() != 1 {
			t.Fatal("the Retry-After wait is no longer armed before 11 s")
		}
	}
	clk.Advance(time.Millisecond)
	if err := <-done; err == nil {
		t.Fatal("a 429 was not reported")
	}
	if snap, err := a.fetchSnapshot(t.Context(), "BTCUSDT"); err != nil || snap.lastID != 1 || requests.Load() != 2 {
		t.Fatalf("after the wait: %+v %v (%d requests)", snap, err, requests.Load())
	}
}
