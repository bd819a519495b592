package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/paddockhq/paddock/internal/clock"
)

// ErrDeadlinePassed ends a node whose environment's deadline passed and
// whose grace period ended with no extension: expiry holds without the
// manager. `paddock node` exits with ExitDeadline.
var ErrDeadlinePassed = errors.New("node: the environment's deadline passed and no extension arrived")

// ExitDeadline is `paddock node`'s exit status for ErrDeadlinePassed; the
// AWS instance's unit powers the machine off on it (and the instance,
// created with instance_initiated_shutdown_behavior = terminate, ends).
const ExitDeadline = 3

// deadman is the node's dead man's switch. It reads the deadline (the
// latest of the configuration's, the deadline file's and the NATS
// credentials' expiry) every second on its clock; past it, the trader
// refuses orders; past it by the grace period, run returns
// ErrDeadlinePassed. A later deadline (an extension) lifts the refusal.
// Owned by Node.Run.
type deadman struct {
	cfg    *Config
	clk    clock.Clock
	trader *Trader
	creds  *credsReloader // nil without a creds file
	file   []byte         // the deadline file's last content
	fromF  time.Time
}

func (d *deadman) deadline() time.Time {
	dl := d.cfg.Deadline
	if d.cfg.DeadlineFile != "" {
		if raw, err := os.ReadFile(d.cfg.DeadlineFile); err == nil && !bytes.Equal(raw, d.file) {
			if t, err := time.Parse(time.RFC3339, string(bytes.TrimSpace(raw))); err == nil {
				d.file, d.fromF = raw, t
			}
		}
		if d.fromF.After(dl) {
			dl = d.fromF
		}
	}
	if d.creds != nil {
		if t := d.creds.expiresAt(); t.After(dl) {
			dl = t
		}
	}
	return dl
}

// check applies the deadline at now; it reports ErrDeadlinePassed once the
// grace period is over.
func (d *deadman) check() error {
	dl := d.deadline()
	if dl.IsZero() {
		return nil
	}
	now := d.clk.Now()
	if now.Before(dl) {
		d.trader.Unexpire()
		return nil
	}
	grace := d.cfg.deadlineGrace()
	d.trader.Expire(fmt.Sprintf("the environment's deadline %s has passed; extend it (paddock env extend %s) within %s or the node shuts down",
		dl.UTC().Format(time.RFC3339), d.cfg.Name, grace))
	if !now.Before(dl.Add(grace)) {
		return ErrDeadlinePassed
	}
	return nil
}

func (d *deadman) run(ctx context.Context) error {
	t := d.clk.NewTicker(time.Second)
	defer t.Stop()
	if err := d.check(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			if err := d.check(); err != nil {
				return err
			}
		}
	}
}
