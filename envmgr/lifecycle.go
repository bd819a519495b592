package envmgr

import (
	"fmt"
	"sync"
	"time"
)

// Event is something a person should hear about an environment: it was
// created, became ready, degraded, will expire soon, was extended, stopped,
// started, destroyed or failed. The reconciler and the manager emit one
// after the store write that made it true, and only the replica whose
// revision-checked write won emits it, so that several replicas do not
// announce one change several times.
type Event struct {
	Kind  EventKind `json:"kind"`
	Env   string    `json:"env"`
	Owner string    `json:"owner"`
	// PRNumber is the environment's pull request (0: none).
	PRNumber int       `json:"pr_number,omitempty"`
	At       time.Time `json:"at"`
	State    State     `json:"state"`
	// Deadline is the environment's expiry at the time of the event.
	Deadline time.Time `json:"deadline"`
	// Why: the reason a node is degraded or failed, why it was destroyed,
	// what an extension did.
	Why string `json:"why,omitempty"`
	// Actor and Via say who caused it and through which channel (cli, api,
	// slack, ...); empty for the reconciler's own work.
	Actor string `json:"actor,omitempty"`
	Via   string `json:"via,omitempty"`
	// Before is how long before the deadline a warning is sent.
	Before time.Duration `json:"before,omitempty"`
	// Step is the step that failed (provisioning, destroying, ...).
	Step State `json:"step,omitempty"`
	// RetryAt is when a failed destroy is tried again.
	RetryAt time.Time `json:"retry_at,omitempty"`
}

// EventKind names an Event.
type EventKind string

const (
	EventCreated   EventKind = "created"
	EventReady     EventKind = "ready"
	EventDegraded  EventKind = "degraded"
	EventWarning   EventKind = "warning"
	EventExtended  EventKind = "extended"
	EventStopped   EventKind = "stopped"
	EventStarted   EventKind = "started"
	EventDestroyed EventKind = "destroyed"
	EventFailed    EventKind = "failed"
	// EventChanged is any other transition (provisioning, stopping,
	// destroying, ...): the pull-request comment shows every state; chat
	// notifications skip it.
	EventChanged EventKind = "changed"
)

// Notifier delivers events to people (envmgr/notify: Slack-compatible
// webhooks). Notify must return at once: delivery is asynchronous and must
// never hold up the lifecycle. done, when not nil, is called once, from any
// goroutine, with nil when the event was delivered or the error it gave up
// on; a notifier gives up within the Lifecycle's Lease.
type Notifier interface {
	Notify(ev Event, done func(error))
}

// Warning records one expiry warning for one deadline: claimed by a
// replica with a revision-checked write before it is sent, and marked sent
// once the receiver took it.
type Warning struct {
	Deadline time.Time `json:"deadline"`
	// Before is the offset from the deadline, in seconds.
	Before    int64     `json:"before_s"`
	ClaimedAt time.Time `json:"claimed_at"`
	ClaimedBy string    `json:"claimed_by,omitempty"`
	SentAt    time.Time `json:"sent_at,omitzero"`
	// Skipped: its time came while a later warning was also due (the
	// manager was down); only the nearest one is sent.
	Skipped bool `json:"skipped,omitempty"`
}

// Lifecycle holds the rules of expiry warnings and destroy retries. The
// zero value is usable: DefaultWarnBefore, DefaultLease and the default
// backoff. Read-only once the reconciler runs.
//
// The warning rule, which holds across restarts and replicas: a warning
// (deadline, offset) is claimed by writing it into the environment's record
// with a revision check, and only then sent. Of two replicas exactly one
// claim wins, so a warning is sent once. A manager that crashes between the
// claim and the send leaves a claim without SentAt; once Lease has passed
// since the claim, any replica claims it again and sends it. A notifier gives
// up before Lease, so two live senders never hold one warning. The price: a
// crash after the receiver took the message but before SentAt was written
// sends it a second time (at least once across a crash, exactly once
// otherwise), which beats losing a warning for good.
type Lifecycle struct {
	// WarnBefore are the offsets from the deadline at which a warning is
	// sent (default 4h and 1h).
	WarnBefore []time.Duration
	// Lease is how long a claimed, unsent warning stays with the replica
	// that claimed it (default 10m).
	Lease time.Duration
	// RetryMin and RetryMax bound the backoff between destroy attempts
	// (default 30s doubling to 30m).
	RetryMin, RetryMax time.Duration
}

// Defaults of Lifecycle.
var DefaultWarnBefore = []time.Duration{4 * time.Hour, time.Hour}

const (
	DefaultLease    = 10 * time.Minute
	defaultRetryMin = 30 * time.Second
	defaultRetryMax = 30 * time.Minute
)

func (l *Lifecycle) warnBefore() []time.Duration {
	if l.WarnBefore == nil {
		return DefaultWarnBefore
	}
	return l.WarnBefore
}

func (l *Lifecycle) lease() time.Duration {
	if l.Lease <= 0 {
		return DefaultLease
	}
	return l.Lease
}

// RetryAfter is the wait before destroy attempt n+1 after n failures.
func (l *Lifecycle) RetryAfter(n int) time.Duration {
	lo, hi := l.RetryMin, l.RetryMax
	if lo <= 0 {
		lo = defaultRetryMin
	}
	if hi <= 0 {
		hi = defaultRetryMax
	}
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// Due is what one pass decides for one environment. Computing it touches
// only the record, so a pass over every environment is cheap
// (BenchmarkLifecyclePass).
type Due struct {
	Expire bool
	// Warn is the warning to claim now (nil: none); Skip lists earlier
	// offsets whose time passed unsent while Warn's is also due.
	Warn *Warning
	Skip []int64
	// RetryDestroy: a failed destroy's backoff is over.
	RetryDestroy bool
	// Wait: a failed destroy waits for its backoff; nothing else to do.
	Wait bool
}

// Any reports whether the pass must work on the environment.
func (d *Due) Any() bool { return d.Expire || d.Warn != nil || d.RetryDestroy }

// Check decides what is due for e at now.
func (l *Lifecycle) Check(e *Environment, now time.Time) Due {
	var d Due
	if e.State == StateDestroyed {
		return d
	}
	if e.State == StateFailed && e.FailedAt == StateDestroying && e.Desired == WantDestroyed {
		if now.Before(e.RetryAt) {
			d.Wait = true
		} else {
			d.RetryDestroy = true
		}
		return d
	}
	if e.Desired == WantDestroyed || e.State == StateDestroying || e.ExpiresAt.IsZero() {
		return d
	}
	if !now.Before(e.ExpiresAt) {
		d.Expire = true
		return d
	}
	set := e.DeadlineSetAt
	if set.IsZero() {
		set = e.CreatedAt
	}
	// The nearest offset whose time has come (offsets are absolute
	// durations before the deadline, so a DST change in the owner's zone
	// moves no warning). An offset whose time came before the deadline was
	// set (a 2h TTL has no 4h warning) is never due.
	var nearest int64 = -1
	var passed []int64
	for _, b := range l.warnBefore() {
		at := e.ExpiresAt.Add(-b)
		if now.Before(at) || !at.After(set) { // (a 4h TTL has no 4h warning either)
			continue
		}
		s := int64(b / time.Second)
		if w := e.warning(s); w != nil && (!w.SentAt.IsZero() || w.Skipped) {
			continue
		}
		if nearest < 0 || s < nearest {
			if nearest >= 0 {
				passed = append(passed, nearest)
			}
			nearest = s
		} else {
			passed = append(passed, s)
		}
	}
	if nearest < 0 {
		return d
	}
	if w := e.warning(nearest); w != nil && now.Before(w.ClaimedAt.Add(l.lease())) {
		return d // claimed and still with its sender
	}
	d.Warn = &Warning{Deadline: e.ExpiresAt, Before: nearest, ClaimedAt: now}
	for _, s := range passed {
		if w := e.warning(s); w == nil || w.SentAt.IsZero() {
			d.Skip = append(d.Skip, s)
		}
	}
	return d
}

// warning finds the record of e's warning at offset before for its current
// deadline.
func (e *Environment) warning(before int64) *Warning {
	for i := range e.Warnings {
		w := &e.Warnings[i]
		if w.Before == before && w.Deadline.Equal(e.ExpiresAt) {
			return w
		}
	}
	return nil
}

// claimWarning records w (and the skipped offsets) in e, dropping the
// records of earlier deadlines: an extension re-arms every warning.
func (e *Environment) claimWarning(w Warning, skip []int64, by string) {
	kept := e.Warnings[:0]
	for _, o := range e.Warnings {
		if o.Deadline.Equal(e.ExpiresAt) && o.Before != w.Before && !contains(skip, o.Before) {
			kept = append(kept, o)
		}
	}
	w.ClaimedBy = by
	kept = append(kept, w)
	for _, s := range skip {
		kept = append(kept, Warning{Deadline: e.ExpiresAt, Before: s, ClaimedAt: w.ClaimedAt, ClaimedBy: by, Skipped: true})
	}
	e.Warnings = kept
}

func contains(xs []int64, x int64) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// ExtendCommand is the one command that extends an environment, as every
// warning prints it.
func ExtendCommand(name string) string {
	return fmt.Sprintf("paddock env extend %s -hours 24", name)
}

// Notifiers delivers every event to each of its notifiers (chat, the
// pull-request comment); done hears, once all have answered, the first
// error or nil.
type Notifiers []Notifier

// Notify implements Notifier.
func (ns Notifiers) Notify(ev Event, done func(error)) {
	if done == nil {
		for _, n := range ns {
			n.Notify(ev, nil)
		}
		return
	}
	if len(ns) == 0 {
		done(nil)
		return
	}
	var mu sync.Mutex
	left := len(ns)
	var first error
	for _, n := range ns {
		n.Notify(ev, func(err error) {
			mu.Lock()
			if err != nil && first == nil {
				first = err
			}
			left--
			last := left == 0
			mu.Unlock()
			if last {
				done(first)
			}
		})
	}
}
