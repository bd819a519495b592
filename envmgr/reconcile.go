package envmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/envmgr/spec"
)

// NodeStatus is what a provisioner knows of a node.
type NodeStatus struct {
	Running  bool
	Endpoint string
	// Health is the node's own report; nil when it could not be asked.
	Health *Health
}

// Reconciler drives every environment from its state toward its desired
// state. It reacts to store changes and to an injected tick (expiry checks
// and node supervision). It is idempotent and crash-safe: before acting it
// records the state it is moving to, so a restarted reconciler finds, say,
// "provisioning" and provisions again, which an idempotent provisioner turns
// into adopting what exists.
type Reconciler struct {
	store Store
	prov  Provisioner
	now   func() time.Time
	log   *slog.Logger

	errors atomic.Uint64
	// Workers is how many environments are worked on at once (set before
	// Run; default 4).
	Workers int
	// Drain is how long, once Run's context ends, the steps in flight may
	// finish before their context is cancelled too (default 30s): a
	// shutdown should not interrupt every provisioning (for Terraform, a
	// SIGINT to every apply) when it can let them finish.
	Drain time.Duration
	// OnOperation, when set before Run, is told how long each provisioner
	// operation took (op: provision, start, stop, destroy), for metrics.
	OnOperation func(op string, took time.Duration, err error)
	// Lifecycle holds the warning offsets and the destroy retry backoff
	// (set before Run; the zero value has the defaults).
	Lifecycle Lifecycle
	// Notify, when set before Run, is told every event (ready, degraded,
	// warning, stopped, started, destroyed, failed) this replica's writes
	// made true. Without it, warnings are still claimed and audited.
	Notify Notifier
	// Replica names this reconciler in warning claims (default: a random
	// name); replicas sharing a store must have different names.
	Replica string
	// OnWarning, when set before Run, counts warnings: result is claimed,
	// sent or failed.
	OnWarning func(result string)

	mu      sync.Mutex
	pending map[string]bool // queued or being worked on
	dirty   map[string]bool // changed while being worked on
	queue   chan string
}

// NewReconciler creates a reconciler. now is the clock (time.Now if nil).
func NewReconciler(store Store, prov Provisioner, now func() time.Time, log *slog.Logger) *Reconciler {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{store: store, prov: prov, now: now, log: log.With("component", "reconciler"), Workers: 4, Drain: 30 * time.Second,
		pending: map[string]bool{}, dirty: map[string]bool{}, queue: make(chan string, 4096), Replica: randomName()}
}

// Run reconciles until ctx ends. Every value from tick triggers an expiry
// check and a pass over all environments. Losing the store does not end it:
// a watch that cannot start or breaks is opened again on the next tick, and
// until then the ticks keep every environment moving.
func (r *Reconciler) Run(ctx context.Context, tick <-chan time.Time) error {
	changes, err := r.store.Watch(ctx)
	if err != nil {
		r.log.Warn("watch environments; retrying on the next tick", "err", err)
		changes = nil
	}
	// Steps run on their own context: when ctx ends, the workers take no
	// new work, and the steps in flight get Drain to finish before theirs
	// is cancelled too.
	stepCtx, cancelSteps := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSteps()
	var wg sync.WaitGroup
	for range max(r.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case name := <-r.queue:
					r.work(ctx, stepCtx, name)
				}
			}
		}()
	}
	defer func() {
		idle := make(chan struct{})
		go func() { wg.Wait(); close(idle) }()
		drain := time.NewTimer(r.Drain)
		defer drain.Stop()
		select {
		case <-idle:
		case <-drain.C:
			r.log.Warn("steps still running after the drain deadline; cancelling them", "drain", r.Drain)
			cancelSteps()
			<-idle
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-changes:
			if !ok {
				if ctx.Err() != nil {
					return nil // cancelled: the watch closes with it
				}
				r.log.Warn("environment watch ended; re-watching on the next tick")
				changes = nil
				continue
			}
			if e.State != StateDestroyed {
				r.enqueue(e.Name)
			}
		case <-tick:
			if changes == nil {
				if changes, err = r.store.Watch(ctx); err != nil {
					r.log.Warn("watch environments", "err", err)
					changes = nil
				}
			}
			all, err := r.store.List(ctx)
			if err != nil {
				r.errors.Add(1)
				r.log.Warn("list environments", "err", err)
				continue
			}
			for _, e := range all {
				if e.State != StateDestroyed {
					r.enqueue(e.Name)
				}
			}
		}
	}
}

// Errors counts reconcile steps and passes that failed, for /metrics.
func (r *Reconciler) Errors() uint64 { return r.errors.Load() }

func (r *Reconciler) enqueue(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending[name] {
		r.dirty[name] = true // picked up again when the current pass ends
		return
	}
	select {
	case r.queue <- name:
		r.pending[name] = true
	default:
		r.log.Warn("reconcile queue full; the next tick retries", "env", name)
	}
}

// work steps one environment while there is more to do and ctx lasts; each
// step runs on stepCtx, which outlives ctx by the drain deadline.
func (r *Reconciler) work(ctx, stepCtx context.Context, name string) {
	for {
		more, err := r.Step(stepCtx, name)
		if err != nil && stepCtx.Err() == nil {
			r.errors.Add(1)
			r.log.Warn("reconcile", "env", name, "err", err)
		}
		if err != nil || !more || ctx.Err() != nil {
			break
		}
	}
	r.mu.Lock()
	again := r.dirty[name]
	delete(r.dirty, name)
	delete(r.pending, name)
	r.mu.Unlock()
	if again && ctx.Err() == nil {
		r.enqueue(name)
	}
}

// Step performs at most one transition of one environment and reports
// whether another may follow. A conflict with a concurrent writer is not an
// error: the next step re-reads.
func (r *Reconciler) Step(ctx context.Context, name string) (more bool, err error) {
	e, rev, err := r.store.Get(ctx, name)
	if err != nil {
		return false, err
	}
	now := r.now().UTC()
	if e.State == StateDestroyed {
		return false, nil
	}
	switch due := r.Lifecycle.Check(&e, now); {
	case due.Expire:
		e.Desired = WantDestroyed
		e.DestroyReason = fmt.Sprintf("its TTL of %dh ended at %s", e.TTLHours, e.ExpiresAt.Format(time.RFC3339))
		return r.write(ctx, e, rev, AuditRecord{Action: "expire", From: e.State, Detail: "ttl reached at " + e.ExpiresAt.Format(time.RFC3339)})
	case due.Warn != nil:
		return r.warn(ctx, e, rev, due)
	case due.Wait:
		return false, nil // a failed destroy waits for its backoff; a tick brings it back
	case due.RetryDestroy:
		from := e.State
		if err := e.Move(StateDestroying, now); err != nil {
			return false, err
		}
		return r.write(ctx, e, rev, AuditRecord{Action: "transition", From: from, To: StateDestroying,
			Detail: fmt.Sprintf("destroy attempt %d", e.DestroyAttempts+1)})
	}
	switch {
	case e.Desired == WantDestroyed && e.State != StateDestroying:
		return r.move(ctx, e, rev, StateDestroying)
	case e.State == StateDestroying:
		if err := r.timed("destroy", func() error { return r.prov.Destroy(ctx, name) }); err != nil {
			// Never forgotten: failed (with the step and error), retried
			// with capped backoff until it works, announced each time.
			e.DestroyAttempts++
			e.RetryAt = now.Add(r.Lifecycle.RetryAfter(e.DestroyAttempts))
			return r.fail(ctx, e, rev, fmt.Errorf("destroy (attempt %d; next at %s): %w", e.DestroyAttempts, e.RetryAt.Format(time.RFC3339), err))
		}
		e.Endpoint, e.DestroyAttempts, e.RetryAt = "", 0, time.Time{}
		return r.move(ctx, e, rev, StateDestroyed)
	case e.State == StateRequested:
		return r.move(ctx, e, rev, StateProvisioning)
	case e.State == StateProvisioning:
		s, err := spec.Parse([]byte(e.SpecYAML), spec.Options{PRNumber: e.PRNumber, Branch: e.Branch, Now: e.CreatedAt, TTLApproved: true})
		if err != nil {
			return r.fail(ctx, e, rev, fmt.Errorf("stored spec: %w", err))
		}
		var endpoint string
		err = r.timed("provision", func() (err error) { endpoint, err = r.prov.Provision(ctx, e, s); return err })
		if errors.Is(err, ErrWaiting) {
			return r.waiting(ctx, e, rev, err)
		}
		if err != nil {
			return r.fail(ctx, e, rev, fmt.Errorf("provision: %w", err))
		}
		e.Endpoint, e.CredsExpireAt = endpoint, e.ExpiresAt
		e.CredsRef = r.prov.CredsRef(name)
		e.DeployedSHA = e.CommitSHA
		return r.settleProvisioned(ctx, e, rev)
	case (e.State == StateReady || e.State == StateDegraded || e.State == StateStopped) && e.DeployedSHA != "" && e.CommitSHA != e.DeployedSHA &&
		e.Desired != WantDestroyed:
		// Redeploy: the node is stopped and provisioned again from the new
		// commit (fresh paper state: a changed strategy is a new run; the
		// name, deadline, keys and credentials stay). A burst of pushes
		// redeploys once per step, each time from the latest commit.
		if err := r.timed("stop", func() error { return r.prov.Stop(ctx, name) }); err != nil {
			return r.fail(ctx, e, rev, fmt.Errorf("redeploy: stop: %w", err))
		}
		from := e.State
		e.Health = nil
		if err := e.Move(StateProvisioning, now); err != nil {
			return false, err
		}
		return r.write(ctx, e, rev, AuditRecord{Action: "transition", From: from, To: StateProvisioning, CommitSHA: e.CommitSHA,
			Detail: fmt.Sprintf("redeploy %s -> %s", short(e.DeployedSHA), short(e.CommitSHA))})
	case (e.State == StateReady || e.State == StateDegraded) && e.Desired == WantStopped:
		e.Health = nil
		return r.move(ctx, e, rev, StateStopping)
	case e.State == StateStopping:
		if err := r.timed("stop", func() error { return r.prov.Stop(ctx, name) }); err != nil {
			return r.fail(ctx, e, rev, fmt.Errorf("stop: %w", err))
		}
		return r.move(ctx, e, rev, StateStopped)
	case e.State == StateStopped && e.Desired == WantRunning:
		return r.move(ctx, e, rev, StateStarting)
	case e.State == StateStarting:
		var endpoint string
		err := r.timed("start", func() (err error) { endpoint, err = r.prov.Start(ctx, name); return err })
		if errors.Is(err, ErrWaiting) {
			return r.waiting(ctx, e, rev, err)
		}
		if err != nil {
			return r.fail(ctx, e, rev, fmt.Errorf("start: %w", err))
		}
		e.Endpoint = endpoint
		return r.settle(ctx, e, rev)
	case (e.State == StateReady || e.State == StateDegraded || e.State == StateStopped) && !e.CredsRefreshedFor.Equal(e.ExpiresAt) && !e.CredsExpireAt.Equal(e.ExpiresAt):
		// Extended: re-issue the node's credentials with the new deadline,
		// and audit only what happened.
		s, err := spec.Parse([]byte(e.SpecYAML), spec.Options{PRNumber: e.PRNumber, Branch: e.Branch, Now: e.CreatedAt, TTLApproved: true})
		if err != nil {
			return false, fmt.Errorf("stored spec: %w", err)
		}
		detail := "re-issued until " + e.ExpiresAt.Format(time.RFC3339)
		switch err := r.prov.Refresh(ctx, e, s); {
		case errors.Is(err, ErrUnsupported):
			detail = fmt.Sprintf("NOT re-issued: this provisioner cannot; the node's credentials still expire at %s, before the environment's new deadline %s",
				e.CredsExpireAt.Format(time.RFC3339), e.ExpiresAt.Format(time.RFC3339))
			r.log.Warn("credentials not re-issued after an extension", "env", name, "expire", e.CredsExpireAt)
		case err != nil:
			return false, fmt.Errorf("refresh credentials: %w", err)
		default:
			e.CredsExpireAt = e.ExpiresAt
		}
		e.CredsRefreshedFor = e.ExpiresAt
		return r.write(ctx, e, rev, AuditRecord{Action: "credentials", From: e.State, To: e.State, Detail: detail})
	case (e.State == StateReady || e.State == StateDegraded) && e.Desired == WantRunning:
		// Supervision: a node that died is started again; one that runs
		// but does not work is degraded, and ready again once it does.
		st, err := r.prov.Status(ctx, name)
		if errors.Is(err, ErrUnsupported) {
			return false, nil // this backend has no supervision
		}
		if err != nil {
			return false, err
		}
		if st.Running {
			return r.health(ctx, e, rev, st.Health)
		}
		endpoint, err := r.prov.Start(ctx, name)
		if err != nil {
			return r.fail(ctx, e, rev, fmt.Errorf("restart: %w", err))
		}
		e.Endpoint = endpoint
		return r.write(ctx, e, rev, AuditRecord{Action: "restart", From: e.State, To: e.State, Detail: "node was not running"})
	}
	return false, nil
}

// waiting records that the environment waits for its node (the reason
// says on what, once) and ends the step: the worker goes on to other
// environments, and this one is revisited on the next tick or wake-up.
func (r *Reconciler) waiting(ctx context.Context, e Environment, rev uint64, why error) (bool, error) {
	if e.Reason == why.Error() {
		return false, nil
	}
	e.Reason, e.UpdatedAt = why.Error(), r.now().UTC()
	if _, err := r.store.Update(ctx, e, rev); err != nil && !errors.Is(err, ErrConflict) {
		return false, err
	}
	return false, nil
}

// Enqueue asks for a pass over one environment (a provisioner waking a
// waiting environment up). Safe from any goroutine.
func (r *Reconciler) Enqueue(name string) { r.enqueue(name) }

func (r *Reconciler) timed(op string, fn func() error) error {
	start := time.Now()
	err := fn()
	if errors.Is(err, ErrWaiting) {
		return err // a revisit, not an operation
	}
	if r.OnOperation != nil {
		r.OnOperation(op, time.Since(start), err)
	}
	return err
}

// StopNodes records, at a manager's shutdown, that it stopped the nodes of
// the named environments (a local manager's nodes end with it): each goes
// to stopped, keeping desired running, so that no environment claims to be
// ready while nothing runs it, and the next manager starts them again.
func StopNodes(ctx context.Context, store Store, names []string, now time.Time) error {
	var errs []error
	for _, name := range names {
		e, rev, err := store.Get(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if e.State != StateReady && e.State != StateDegraded {
			continue
		}
		from := e.State
		_ = e.Move(StateStopping, now)
		_ = e.Move(StateStopped, now)
		e.Health, e.Endpoint = nil, ""
		if _, err := store.Update(ctx, e, rev); err != nil {
			errs = append(errs, err)
			continue
		}
		_ = store.AppendAudit(ctx, AuditRecord{Env: name, At: now, Actor: "envmgr", Action: "transition", From: from, To: StateStopped,
			Detail: "the manager shut down and stopped its node; the next manager starts it again"})
	}
	return errors.Join(errs...)
}

// settleProvisioned records a provisioning's result. A write that lost to
// a concurrent change (an extension, a new commit) is merged into the
// latest record rather than dropped: dropping it would provision again,
// adopt the node just built, and record it as built from whatever commit
// the record names by then. A newer commit is then redeployed.
func (r *Reconciler) settleProvisioned(ctx context.Context, e Environment, rev uint64) (bool, error) {
	for range 5 {
		se, a, err := r.settled(ctx, e)
		if err != nil {
			return false, err
		}
		conflict, err := r.tryWrite(ctx, se, rev, a)
		if err != nil || !conflict {
			return err == nil, err
		}
		cur, curRev, err := r.store.Get(ctx, e.Name)
		if err != nil {
			return false, err
		}
		if cur.State != StateProvisioning || cur.Desired == WantDestroyed {
			return true, nil
		}
		cur.Endpoint, cur.CredsExpireAt, cur.CredsRef, cur.DeployedSHA = e.Endpoint, e.CredsExpireAt, e.CredsRef, e.DeployedSHA
		e, rev = cur, curRev
	}
	return true, nil
}

// settle records a node that has just been provisioned or started as ready
// or, when it reports that it does not work, degraded with its reasons.
func (r *Reconciler) settle(ctx context.Context, e Environment, rev uint64) (bool, error) {
	se, a, err := r.settled(ctx, e)
	if err != nil {
		return false, err
	}
	return r.write(ctx, se, rev, a)
}

// settled is e moved to ready, or degraded when its node says it does not
// work, with the audit record of the move.
func (r *Reconciler) settled(ctx context.Context, e Environment) (Environment, AuditRecord, error) {
	var h *Health
	if st, err := r.prov.Status(ctx, e.Name); err == nil {
		h = st.Health
	}
	e.Health = h
	to := StateReady
	if h != nil && !h.Ready {
		to = StateDegraded
	}
	from := e.State
	if err := e.Move(to, r.now().UTC()); err != nil {
		return e, AuditRecord{}, err
	}
	detail := ""
	if to == StateDegraded {
		e.Reason = strings.Join(h.Reasons, "; ")
		detail = e.Reason
	}
	return e, AuditRecord{Action: "transition", From: from, To: to, CommitSHA: e.DeployedSHA, Detail: detail}, nil
}

// health records a running node's report: a change of health is written
// (the events stream shows it), and readiness moves ready <-> degraded.
func (r *Reconciler) health(ctx context.Context, e Environment, rev uint64, h *Health) (bool, error) {
	if h == nil || h.Equal(e.Health) {
		return false, nil
	}
	e.Health = h
	from := e.State
	switch {
	case e.State == StateReady && !h.Ready:
		if err := e.Move(StateDegraded, r.now().UTC()); err != nil {
			return false, err
		}
	case e.State == StateDegraded && h.Ready:
		if err := e.Move(StateReady, r.now().UTC()); err != nil {
			return false, err
		}
	}
	if e.State == StateDegraded {
		e.Reason = strings.Join(h.Reasons, "; ")
	}
	if from == e.State {
		e.UpdatedAt = r.now().UTC()
		if _, err := r.store.Update(ctx, e, rev); err != nil && !errors.Is(err, ErrConflict) {
			return false, err
		}
		return false, nil // a health update alone is not audited
	}
	_, err := r.write(ctx, e, rev, AuditRecord{Action: "transition", From: from, To: e.State, Detail: e.Reason})
	return false, err
}

func (r *Reconciler) move(ctx context.Context, e Environment, rev uint64, to State) (bool, error) {
	from := e.State
	if err := e.Move(to, r.now().UTC()); err != nil {
		return false, err
	}
	return r.write(ctx, e, rev, AuditRecord{Action: "transition", From: from, To: to})
}

func (r *Reconciler) fail(ctx context.Context, e Environment, rev uint64, cause error) (bool, error) {
	from := e.State
	if err := e.Fail(cause.Error(), r.now().UTC()); err != nil {
		return false, fmt.Errorf("%w (while recording: %v)", err, cause)
	}
	_, err := r.write(ctx, e, rev, AuditRecord{Action: "transition", From: from, To: StateFailed, Detail: cause.Error()})
	return false, err
}

func (r *Reconciler) write(ctx context.Context, e Environment, rev uint64, a AuditRecord) (bool, error) {
	conflict, err := r.tryWrite(ctx, e, rev, a)
	if err != nil {
		return false, err
	}
	if conflict {
		return true, nil // someone else wrote first; re-read and go on
	}
	return !e.State.Terminal(), nil
}

// tryWrite writes e at rev and, if it won, audits and announces a.
func (r *Reconciler) tryWrite(ctx context.Context, e Environment, rev uint64, a AuditRecord) (conflict bool, err error) {
	e.UpdatedAt = r.now().UTC()
	if _, err := r.store.Update(ctx, e, rev); err != nil {
		if errors.Is(err, ErrConflict) {
			return true, nil
		}
		return false, err
	}
	a.Env, a.Actor, a.At = e.Name, "reconciler", r.now().UTC()
	if err := r.store.AppendAudit(ctx, a); err != nil {
		r.log.Error("audit write failed", "env", e.Name, "err", err)
	}
	r.announce(e, a)
	r.log.Info("environment", "env", e.Name, "action", a.Action, "from", a.From, "to", a.To)
	return false, nil
}
