// Package natsconn connects paddock's long-lived components to NATS and
// closes them without losing what is buffered.
package natsconn

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// DrainTimeout bounds how long Drain waits for a connection to close.
const DrainTimeout = 10 * time.Second

// Connect connects to url, reconnecting forever by default (opts may
// override that). drain, for the component's shutdown, drains the
// connection (flushing what is buffered and letting subscriptions finish)
// and waits for it to close: nats.Conn.Drain alone returns at once, and a
// process that exits then can lose its last messages.
func Connect(url string, opts ...nats.Option) (nc *nats.Conn, drain func() error, err error) {
	closed := make(chan struct{})
	all := append([]nats.Option{nats.MaxReconnects(-1)}, opts...)
	all = append(all, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	nc, err = nats.Connect(url, all...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS %s: %w", url, err)
	}
	drain = func() error {
		if err := nc.Drain(); err != nil {
			if errors.Is(err, nats.ErrConnectionClosed) {
				return nil
			}
			return fmt.Errorf("drain NATS connection: %w", err)
		}
		select {
		case <-closed:
			return nil
		case <-time.After(DrainTimeout):
			return fmt.Errorf("NATS connection did not drain within %v", DrainTimeout)
		}
	}
	return nc, drain, nil
}
