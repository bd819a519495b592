package binance

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
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
	waits := make(chan time.Duration, 1)
	fire := make(chan time.Time)
	// The request timeout is short, so that a wait bounded by it (the bug)
	// would end long before the fake clock fires.
	a := &Adapter{cfg: Config{RESTURL: srv.URL, DepthLimit: 10, HTTPClient: srv.Client(), SnapshotTimeout: 50 * time.Millisecond},
		fetchSem: make(chan struct{}, 1), now: time.Now,
		after: func(d time.Duration) <-chan time.Time { waits <- d; return fire }}
	done := make(chan error, 1)
	go func() {
		_, err := a.fetchSnapshot(t.Context(), "BTCUSDT")
		done <- err
	}()
	if d := <-waits; d != 11*time.Second {
		t.Fatalf("waited %v, want the 11 s Retry-After", d)
	}
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
	fire <- time.Now()
	if err := <-done; err == nil {
		t.Fatal("a 429 was not reported")
	}
	if snap, err := a.fetchSnapshot(t.Context(), "BTCUSDT"); err != nil || snap.lastID != 1 || requests.Load() != 2 {
		t.Fatalf("after the wait: %+v %v (%d requests)", snap, err, requests.Load())
	}
}
