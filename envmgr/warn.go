package envmgr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"
)

// warn claims the warning due for e with a revision-checked write, and only
// if the claim won sends it (see Lifecycle for the rule).
func (r *Reconciler) warn(ctx context.Context, e Environment, rev uint64, due Due) (bool, error) {
	w := *due.Warn
	e.claimWarning(w, due.Skip, r.Replica)
	e.UpdatedAt = r.now().UTC()
	if _, err := r.store.Update(ctx, e, rev); err != nil {
		if errors.Is(err, ErrConflict) {
			return true, nil // another replica (or request) wrote first: re-read, and its claim stands
		}
		return false, err
	}
	if r.OnWarning != nil {
		r.OnWarning("claimed")
	}
	before := time.Duration(w.Before) * time.Second
	detail := fmt.Sprintf("expires at %s (%s from the warning); extend it: %s", e.ExpiresAt.Format(time.RFC3339), before, ExtendCommand(e.Name))
	if len(due.Skip) > 0 {
		detail += fmt.Sprintf(" (%d earlier warning(s) not sent: their time passed while this one was also due)", len(due.Skip))
	}
	_ = r.store.AppendAudit(ctx, AuditRecord{Env: e.Name, At: r.now().UTC(), Actor: "reconciler", Action: "warning", From: e.State, Detail: detail})
	ev := Event{Kind: EventWarning, Env: e.Name, Owner: e.Owner, PRNumber: e.PRNumber, At: r.now().UTC(), State: e.State, Deadline: e.ExpiresAt, Before: before,
		Why: fmt.Sprintf("its TTL of %dh ends then", e.TTLHours)}
	if r.Notify == nil {
		r.markSent(ctx, e.Name, w) // audited above: that is the warning
		return true, nil
	}
	r.Notify.Notify(ev, func(err error) {
		if err != nil {
			// Given up within the lease: the claim lapses and a later pass
			// (of any replica) claims and sends it again.
			if r.OnWarning != nil {
				r.OnWarning("failed")
			}
			r.log.Warn("expiry warning not delivered; it is claimed again once its lease ends", "env", e.Name, "err", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.markSent(ctx, e.Name, w)
	})
	return true, nil
}

// markSent records that the claimed warning w was delivered. It retries
// conflicts (the environment changed meanwhile) and gives up when the
// warning is no longer this claim (the deadline moved, another replica
// re-claimed it).
func (r *Reconciler) markSent(ctx context.Context, name string, w Warning) {
	for range 8 {
		e, rev, err := r.store.Get(ctx, name)
		if err != nil {
			r.log.Warn("record a sent warning", "env", name, "err", err)
			return
		}
		cur := e.warning(w.Before)
		if cur == nil || !cur.Deadline.Equal(w.Deadline) || !cur.ClaimedAt.Equal(w.ClaimedAt) || cur.ClaimedBy != r.Replica {
			return
		}
		cur.SentAt = r.now().UTC()
		if _, err := r.store.Update(ctx, e, rev); err == nil {
			if r.OnWarning != nil {
				r.OnWarning("sent")
			}
			return
		} else if !errors.Is(err, ErrConflict) {
			r.log.Warn("record a sent warning", "env", name, "err", err)
			return
		}
	}
}

// announce tells the notifier what a transition this replica wrote means to
// a person.
func (r *Reconciler) announce(e Environment, a AuditRecord) {
	if r.Notify == nil || a.Action != "transition" || a.From == a.To {
		return
	}
	ev := Event{Env: e.Name, Owner: e.Owner, PRNumber: e.PRNumber, At: a.At, State: e.State, Deadline: e.ExpiresAt}
	switch a.To {
	case StateReady:
		ev.Kind = EventReady
		if a.From == StateStarting {
			ev.Kind = EventStarted
		}
	case StateDegraded:
		ev.Kind, ev.Why = EventDegraded, e.Reason
	case StateStopped:
		ev.Kind = EventStopped
	case StateDestroyed:
		ev.Kind, ev.Why = EventDestroyed, e.DestroyReason
	case StateFailed:
		ev.Kind, ev.Why, ev.Step = EventFailed, e.Reason, e.FailedAt
		if e.FailedAt == StateDestroying {
			ev.RetryAt = e.RetryAt
		}
	default:
		ev.Kind = EventChanged
	}
	r.Notify.Notify(ev, nil)
}

// randomName names a reconciler replica: the host and a random suffix.
func randomName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	h, _ := os.Hostname()
	return h + "-" + hex.EncodeToString(b)
}
