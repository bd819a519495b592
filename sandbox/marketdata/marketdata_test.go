package marketdata

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
)

// TestSlowConsumerDropsAreBoundedAndCounted: a Market that cannot keep up
// buffers at most Pending messages; NATS drops the rest for it, and the
// drops are counted (Dropped, which the node exports) and reported as
// ErrSlow with their number, never lost silently.
func TestSlowConsumerDropsAreBoundedAndCounted(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{})
	nc := natstest.Connect(t, ns.ClientURL())
	pub := natstest.Connect(t, ns.ClientURL())
	var stuck sync.Mutex // held: the Market's goroutine blocks on its first message
	errs := make(chan error, 16)
	m, err := NewMarket(nc, []Instrument{{Venue: "binance", Symbol: "btcusdt"}}, Handlers{Locker: &stuck, Error: func(err error) {
		select {
		case errs <- err:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	m.timeout = 10 * time.Millisecond // no feed answers snapshot requests here
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	subj, _ := proto.DataSubject("binance", "btcusdt", proto.EventTrades)
	// Wait for the subscription: a message published before it would not count.
	for m.subscribed() < 2 {
		select {
		case err := <-done:
			t.Fatal(err)
		case <-time.After(time.Millisecond): // polls: Run subscribes in its own goroutine
		}
	}
	stuck.Lock()
	const extra = 1000
	frame, _ := proto.AppendTrade(nil, &proto.Header{Venue: proto.VenueBinance, Seq: 1}, &proto.Trade{TradeID: 1})
	for range Pending + extra + 1 { // +1: the message the goroutine holds while blocked
		if err := pub.Publish(subj, frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); m.Dropped() < extra; { // polls: delivery is asynchronous
		if time.Now().After(deadline) {
			t.Fatalf("%d dropped, want at least %d", m.Dropped(), extra)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stuck.Unlock()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, ErrSlow) {
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if m.Dropped() < extra {
					t.Fatalf("the count went down after Run ended: %d", m.Dropped())
				}
				return
			}
		case <-deadline:
			t.Fatal("the drops were never reported")
		}
	}
}

func (m *Market) subscribed() int {
	m.subsMu.Lock()
	defer m.subsMu.Unlock()
	return len(m.subs)
}
