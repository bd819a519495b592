// Package catalog tells the environment manager what the feed carries, by
// asking the feed itself over NATS: an instrument is carried when its
// snapshot subject (market.snapshot.<venue>.<symbol>) has a responder, and
// a venue is known when its health subject (market.health.<venue>) has been
// heard recently. The manager refuses, at create time, an environment whose
// node would never get a live book.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/proto"
)

// heardWithin is how recent a venue's health must be for it to count as
// known (the feed publishes it every second).
const heardWithin = 10 * time.Second

// Catalog implements envmgr.Catalog. Safe for concurrent use; Close ends
// its subscription.
type Catalog struct {
	nc      *nats.Conn
	timeout time.Duration
	sub     *nats.Subscription

	mu    sync.Mutex
	heard map[string]time.Time // venue -> last health message
}

var _ envmgr.Catalog = (*Catalog)(nil)

// New starts listening to the feed's health subjects on nc. timeout bounds
// each question to the feed (default 2s).
func New(nc *nats.Conn, timeout time.Duration) (*Catalog, error) {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	c := &Catalog{nc: nc, timeout: timeout, heard: map[string]time.Time{}}
	sub, err := nc.Subscribe(proto.HealthPrefix+".*", func(m *nats.Msg) {
		venue := strings.TrimPrefix(m.Subject, proto.HealthPrefix+".")
		c.mu.Lock()
		c.heard[venue] = time.Now()
		c.mu.Unlock()
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: subscribe to the feed's health: %w", err)
	}
	c.sub = sub
	return c, nil
}

// Close stops listening.
func (c *Catalog) Close() { _ = c.sub.Unsubscribe() }

// Carries asks the feed for the instrument's snapshot responder.
func (c *Catalog) Carries(ctx context.Context, venue, symbol string) (carried, venueKnown bool, err error) {
	subj, err := proto.SnapshotSubject(venue, symbol)
	if err != nil {
		return false, false, err
	}
	c.mu.Lock()
	venueKnown = time.Since(c.heard[venue]) < heardWithin
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err = c.nc.RequestWithContext(ctx, subj, nil)
	switch {
	case err == nil:
		return true, true, nil
	case errors.Is(err, nats.ErrNoResponders):
		return false, venueKnown, nil
	}
	return false, venueKnown, fmt.Errorf("ask the feed for %s: %w", subj, err)
}
