package envmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/paddockhq/paddock/envmgr/spec"
)

// Provisioner creates and runs an environment's sandbox node. Every method
// is idempotent: the reconciler calls them again after a crash, and calling
// Provision for an environment that already has a node must adopt that node
// rather than create a second one. Implementations: envmgr/local (a child
// process) and the AWS provisioner in envmgr/daemon (an instance through
// the Terraform module).
//
// Every capability is part of the interface, so that a backend states what
// it cannot do (ErrUnsupported) instead of silently lacking a method the
// reconciler would have looked for.
type Provisioner interface {
	// Provision creates the node and starts it; it returns where the node's
	// admin API is.
	Provision(ctx context.Context, e Environment, s *spec.Spec) (endpoint string, err error)
	// Stop stops the node, keeping its configuration and data.
	Stop(ctx context.Context, name string) error
	// Start starts a stopped node with the same configuration and data.
	Start(ctx context.Context, name string) (endpoint string, err error)
	// Destroy removes the node and everything provisioned for it.
	Destroy(ctx context.Context, name string) error
	// Status reports whether the node runs and how it is, which lets the
	// reconciler restart dead nodes and mark non-working ones degraded.
	// ErrUnsupported: this backend cannot tell (no supervision).
	Status(ctx context.Context, name string) (NodeStatus, error)
	// Refresh re-issues the node's credentials for a moved deadline (an
	// extension). ErrUnsupported: this backend cannot, and the node's
	// credentials keep their old expiry.
	Refresh(ctx context.Context, e Environment, s *spec.Spec) error
	// CredsRef says where the node's NATS credentials are (a file, a
	// secret's name; never the secret), or "".
	CredsRef(name string) string
}

// ErrUnsupported is a provisioner's answer for a capability it lacks.
var ErrUnsupported = errors.New("envmgr: not supported by this provisioner")

// ErrWaiting is Provision's or Start's answer while the work is done but the
// node has not reported yet (an instance booting): the reconciler records
// the wait and revisits the environment later (on a tick, or when the
// provisioner wakes it) instead of blocking a worker; the call is then made
// again and must return quickly, the endpoint once the node reported, or a
// failure once the provisioner's deadline passed.
var ErrWaiting = errors.New("envmgr: waiting for the node")

// Actor is who makes a request: a developer (their own environments), an
// admin (all, approvals) or the pull-request integration (the only
// non-admin that may claim a pr-<n> name).
type Actor struct {
	Name        string
	Admin       bool
	Integration bool
	// Via is the channel the request came through (cli, api, slack,
	// github), recorded in the audit log and in notifications.
	Via string
}

// mayClaimPR reports whether the actor may create an environment named for a
// pull request: names like pr-42 belong to the PR integration, so that no
// developer can squat another's pull request.
func (a Actor) mayClaimPR() bool { return a.Admin || a.Integration }

// CreateRequest is what a developer submits.
type CreateRequest struct {
	SpecYAML  []byte
	PRNumber  int
	Branch    string
	CommitSHA string
	// Repo (owner/name) and Owner are the pull-request integration's: the
	// environment is built from Repo at CommitSHA and belongs to the PR's
	// author. Refused from anyone else.
	Repo  string
	Owner string
}

// Manager handles developers' requests: it validates them, records the
// desired state with a revision check and an audit record, and leaves the
// work to the Reconciler. Safe for concurrent use.
type Manager struct {
	store      Store
	now        func() time.Time
	log        *slog.Logger
	catalog    Catalog
	notify     Notifier
	recordings Recordings
}

// SetNotifier makes the manager announce creations and extensions. Call
// before serving requests.
func (m *Manager) SetNotifier(n Notifier) { m.notify = n }

func (m *Manager) emit(ev Event) {
	if m.notify != nil {
		ev.At = m.now().UTC()
		m.notify.Notify(ev, nil)
	}
}

// via names a channel for the audit log's details.
func via(who Actor) string {
	if who.Via == "" {
		return ""
	}
	return " via " + who.Via
}

// Catalog says what the feed carries, so that Create can refuse an
// environment whose node would never get a live book.
type Catalog interface {
	// Carries reports whether the feed publishes venue's symbol, and whether
	// it has heard from the venue at all. An error means the feed could not
	// be asked (the environment is then created, and its health names
	// what is missing).
	Carries(ctx context.Context, venue, symbol string) (carried, venueKnown bool, err error)
}

// SetCatalog makes Create check every declared instrument against what the
// feed carries. Call before serving requests.
func (m *Manager) SetCatalog(c Catalog) { m.catalog = c }

// NewManager creates a manager over store. now is the clock (time.Now if nil).
func NewManager(store Store, now func() time.Time, log *slog.Logger) *Manager {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{store: store, now: now, log: log.With("component", "envmgr")}
}

// Create validates the spec and records a new environment. A name whose
// environment was destroyed is free again, as is one whose environment
// failed (for its owner, an admin, or the integration): the new record
// replaces the old one, whose versions stay in the store's history and whose
// audit records stay in the log. A ttl_hours beyond spec.MaxTTLHours from a
// developer becomes a pending request an admin approves or refuses; the
// environment starts with MaxTTLHours meanwhile.
func (m *Manager) Create(ctx context.Context, who Actor, req CreateRequest) (Environment, error) {
	if err := spec.CheckPRNumber(req.PRNumber); err != nil {
		return Environment{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := checkCommit(req.CommitSHA, req.Branch); err != nil {
		return Environment{}, err
	}
	owner, err := checkOnBehalf(who, req)
	if err != nil {
		return Environment{}, err
	}
	s, err := spec.Parse(req.SpecYAML, spec.Options{PRNumber: req.PRNumber, Branch: req.Branch, Now: m.now(), TTLApproved: true, LiveOnly: m.recordings == nil})
	if err != nil {
		return Environment{}, err // *spec.Errors: the field-level list
	}
	if m.recordings != nil {
		if err := m.checkRecorded(ctx, s); err != nil {
			return Environment{}, err
		}
	}
	if pr := max(req.PRNumber, spec.PRNumberOf(s.Name)); pr > 0 && !who.mayClaimPR() {
		return Environment{}, fmt.Errorf("%w: %s is a pull request's name; only the pull-request integration or an admin may claim it (choose another environment.name)", ErrForbidden, s.Name)
	}
	if err := m.checkCarried(ctx, s); err != nil {
		return Environment{}, err
	}
	now := m.now().UTC()
	ttl := s.TTLHours
	var pending *TTLRequest
	detail := fmt.Sprintf("ttl %dh", ttl)
	if ttl > spec.MaxTTLHours && !who.Admin {
		pending = &TTLRequest{Hours: ttl, By: who.Name, At: now}
		ttl = spec.MaxTTLHours
		detail = fmt.Sprintf("ttl %dh; %dh requested, pending an admin's approval", ttl, pending.Hours)
	}
	e := Environment{
		Name: s.Name, Owner: owner, SpecYAML: string(req.SpecYAML), PRNumber: req.PRNumber, Branch: req.Branch,
		CommitSHA: req.CommitSHA, Repo: req.Repo, State: StateRequested, Desired: WantRunning, TTLHours: ttl, PendingTTL: pending,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Duration(ttl) * time.Hour), DeadlineSetAt: now,
	}
	if err := m.claim(ctx, who, e); err != nil {
		return Environment{}, err
	}
	m.emit(Event{Kind: EventCreated, Env: e.Name, Owner: e.Owner, PRNumber: e.PRNumber, State: e.State, Deadline: e.ExpiresAt, Actor: who.Name, Via: who.Via,
		Why: fmt.Sprintf("ttl %dh", ttl)})
	m.audit(ctx, AuditRecord{Env: e.Name, Actor: who.Name, Via: who.Via, Action: "create", To: StateRequested, CommitSHA: req.CommitSHA,
		Detail: detail + ", expires " + e.ExpiresAt.Format(time.RFC3339)})
	return e, nil
}

// checkCarried refuses a spec that declares an instrument the feed does not
// carry, naming the venue; when the feed cannot be asked it lets the spec
// through (the node's health will say what is missing).
func (m *Manager) checkCarried(ctx context.Context, s *spec.Spec) error {
	if m.catalog == nil {
		return nil
	}
	errs := &spec.Errors{}
	for i, ex := range s.Exchanges {
		for j, in := range ex.Instruments {
			ok, known, err := m.catalog.Carries(ctx, ex.Venue, in.Symbol)
			switch {
			case err != nil:
				m.log.Warn("could not ask the feed what it carries; creating anyway", "venue", ex.Venue, "symbol", in.Symbol, "err", err)
				return nil
			case ok:
			case !known:
				errs.List = append(errs.List, spec.FieldError{Path: fmt.Sprintf("exchanges[%d]", i),
					Msg: fmt.Sprintf("the feed does not carry %s %s (venue %s): no sandbox market data for it on this installation", ex.Name, ex.Type, ex.Venue)})
			default:
				errs.List = append(errs.List, spec.FieldError{Path: fmt.Sprintf("exchanges[%d].instruments[%d]", i, j),
					Msg: fmt.Sprintf("the feed carries venue %s but not %s", ex.Venue, in.Written)})
			}
			if !ok && !known {
				break // one error per missing venue
			}
		}
	}
	if len(errs.List) > 0 {
		return errs
	}
	return nil
}

// claim stores e under its name: a new key, the key of a destroyed
// environment, or that of a failed one when who may take it over (its owner,
// an admin, or the integration for a PR's name). The write is checked
// against the revision read, so two claims of one free name cannot both win.
func (m *Manager) claim(ctx context.Context, who Actor, e Environment) error {
	_, err := m.store.Create(ctx, e)
	if !errors.Is(err, ErrExists) {
		return err
	}
	old, rev, gerr := m.store.Get(ctx, e.Name)
	if gerr != nil {
		return gerr
	}
	free := old.State == StateDestroyed ||
		(old.State == StateFailed && (old.Owner == who.Name || who.Admin || (who.Integration && spec.PRNumberOf(e.Name) > 0)))
	if !free {
		return err
	}
	if _, err := m.store.Update(ctx, e, rev); err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("%w: %s", ErrExists, e.Name)
		}
		return err
	}
	return nil
}

// checkOnBehalf returns the environment's owner: the actor, or the PR
// author the integration (or an admin) names; a repository is accepted only
// from them, as owner/name.
func checkOnBehalf(who Actor, req CreateRequest) (string, error) {
	if req.Owner == "" && req.Repo == "" {
		return who.Name, nil
	}
	if !who.mayClaimPR() {
		return "", fmt.Errorf("%w: only the pull-request integration or an admin may name a repository or an owner", ErrForbidden)
	}
	if req.Repo != "" && !validRepo(req.Repo) {
		return "", fmt.Errorf("%w: repo %q: want owner/name", ErrInvalid, req.Repo)
	}
	if req.Owner == "" {
		return who.Name, nil
	}
	if len(req.Owner) > 100 || strings.ContainsFunc(req.Owner, func(r rune) bool { return r <= 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("%w: owner %q", ErrInvalid, req.Owner)
	}
	return req.Owner, nil
}

// validRepo: GitHub's owner/name alphabet, bounded.
func validRepo(repo string) bool {
	owner, name, ok := strings.Cut(repo, "/")
	ok = ok && owner != "" && name != "" && len(repo) <= 140 && name != "." && name != ".."
	for _, r := range owner + name {
		ok = ok && (r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'))
	}
	return ok
}

// Update moves an environment to a new commit of its source (a push to its
// pull request): the spec and commit are replaced and the reconciler
// redeploys. Only the integration and admins update; the name must stay.
func (m *Manager) Update(ctx context.Context, who Actor, name string, req CreateRequest) (Environment, error) {
	if !who.mayClaimPR() {
		return Environment{}, fmt.Errorf("%w: only the pull-request integration or an admin may move an environment to a new commit", ErrForbidden)
	}
	if err := checkCommit(req.CommitSHA, req.Branch); err != nil {
		return Environment{}, err
	}
	e0, _, err := m.store.Get(ctx, name)
	if err != nil {
		return Environment{}, err
	}
	s, err := spec.Parse(req.SpecYAML, spec.Options{PRNumber: e0.PRNumber, Branch: e0.Branch, Now: m.now(), TTLApproved: true, LiveOnly: m.recordings == nil})
	if err != nil {
		return Environment{}, err
	}
	if s.Name != name {
		return Environment{}, fmt.Errorf("%w: the new .dev-env.yaml names %s, not %s", ErrInvalid, s.Name, name)
	}
	if m.recordings != nil {
		if err := m.checkRecorded(ctx, s); err != nil {
			return Environment{}, err
		}
	}
	var from string
	e, err := m.change(ctx, who, name, "update", func(e *Environment) error {
		if e.Desired == WantDestroyed || e.State == StateDestroyed {
			return fmt.Errorf("%w: %s is being destroyed", ErrIllegalTransition, name)
		}
		from = e.CommitSHA
		e.SpecYAML, e.CommitSHA = string(req.SpecYAML), req.CommitSHA
		return nil
	})
	if err == nil {
		m.audit(ctx, AuditRecord{Env: name, Actor: who.Name, Via: who.Via, Action: "update", From: e.State, CommitSHA: req.CommitSHA,
			Detail: fmt.Sprintf("head moved %s -> %s; the node is redeployed from it", short(from), short(req.CommitSHA))})
	}
	return e, err
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	if sha == "" {
		return "(none)"
	}
	return sha
}

// checkCommit bounds what a request says about its source: a commit SHA is
// 7 to 64 hex digits and a branch a git ref name of sensible length. Both are
// stored and shown, so they are checked before either. (A SHA is 4 to 64 hex
// digits: abbreviated, SHA-1 or SHA-256.)
func checkCommit(sha, branch string) error {
	if len(sha) > 0 && (len(sha) < 4 || len(sha) > 64 || strings.Trim(strings.ToLower(sha), "0123456789abcdef") != "") {
		return fmt.Errorf("%w: commit_sha must be 4 to 64 hex digits", ErrInvalid)
	}
	if len(branch) > 255 || strings.ContainsFunc(branch, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: branch must be at most 255 printable characters", ErrInvalid)
	}
	return nil
}

// checkName refuses a bad name before it reaches the store.
func checkName(name string) error {
	if err := spec.CheckName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Get returns an environment the actor may see. Another owner's environment
// is not found, as a missing one is: a developer learns nothing of names and
// owners that are not theirs.
func (m *Manager) Get(ctx context.Context, who Actor, name string) (Environment, error) {
	if err := checkName(name); err != nil {
		return Environment{}, err
	}
	e, _, err := m.store.Get(ctx, name)
	if err != nil {
		return Environment{}, err
	}
	if !who.Admin && e.Owner != who.Name && !(who.Integration && spec.PRNumberOf(name) > 0) {
		return Environment{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return e, nil
}

// List returns the environments the actor may see: their own, or all for admins.
func (m *Manager) List(ctx context.Context, who Actor) ([]Environment, error) {
	all, err := m.store.List(ctx)
	if err != nil {
		return nil, err
	}
	if who.Admin {
		return all, nil
	}
	mine := all[:0]
	for _, e := range all {
		if e.Owner == who.Name {
			mine = append(mine, e)
		}
	}
	return mine, nil
}

// Stop asks for the environment's node to be stopped.
func (m *Manager) Stop(ctx context.Context, who Actor, name string) (Environment, error) {
	return m.change(ctx, who, name, "stop", func(e *Environment) error {
		if e.Desired == WantDestroyed || e.State == StateDestroyed {
			return fmt.Errorf("%w: %s is being destroyed", ErrIllegalTransition, name)
		}
		e.Desired = WantStopped
		return nil
	})
}

// Start asks for a stopped environment to run again.
func (m *Manager) Start(ctx context.Context, who Actor, name string) (Environment, error) {
	return m.change(ctx, who, name, "start", func(e *Environment) error {
		if e.Desired == WantDestroyed || e.State == StateDestroyed {
			return fmt.Errorf("%w: %s is being destroyed", ErrIllegalTransition, name)
		}
		if e.State == StateFailed {
			return fmt.Errorf("%w: %s failed while %s (%s); destroy it and create it again", ErrIllegalTransition, name, e.FailedAt, e.Reason)
		}
		e.Desired = WantRunning
		return nil
	})
}

// Destroy asks for the environment to be torn down.
func (m *Manager) Destroy(ctx context.Context, who Actor, name string) (Environment, error) {
	return m.DestroyBecause(ctx, who, name, "requested by "+who.Name+via(who))
}

// DestroyBecause asks for the environment to be torn down, saying why (the
// pull request was merged, ...), which the destroy notice repeats.
func (m *Manager) DestroyBecause(ctx context.Context, who Actor, name, why string) (Environment, error) {
	return m.change(ctx, who, name, "destroy", func(e *Environment) error {
		if e.State == StateDestroyed {
			return fmt.Errorf("%w: %s is already destroyed", ErrIllegalTransition, name)
		}
		e.Desired = WantDestroyed
		e.DestroyReason = why
		return nil
	})
}

// Extend moves the expiry by hours (24 by default). The total lifetime stays
// within spec.MaxTTLHours for a developer: beyond it, and up to
// spec.MaxApprovedTTLHours, the extension becomes a pending request for an
// admin to approve or refuse. Admins extend up to MaxApprovedTTLHours.
func (m *Manager) Extend(ctx context.Context, who Actor, name string, hours int) (Environment, error) {
	if hours == 0 {
		hours = 24
	}
	// Bounded before any arithmetic: no value can overflow the total.
	if hours < 1 || hours > spec.MaxApprovedTTLHours {
		return Environment{}, fmt.Errorf("%w: extend by %d hours: must be 1 to %d", ErrInvalid, hours, spec.MaxApprovedTTLHours)
	}
	var detail string
	moved := false
	e, err := m.change(ctx, who, name, "extend", func(e *Environment) error {
		if e.Desired == WantDestroyed || e.State == StateDestroyed {
			return fmt.Errorf("%w: %s is being destroyed", ErrIllegalTransition, name)
		}
		total := e.TTLHours + hours
		if total > spec.MaxApprovedTTLHours {
			return fmt.Errorf("%w: %s would live %dh in total; the absolute limit is %dh", ErrForbidden, name, total, spec.MaxApprovedTTLHours)
		}
		if total > spec.MaxTTLHours && !who.Admin {
			e.PendingTTL = &TTLRequest{Hours: total, By: who.Name, At: m.now().UTC()}
			detail = fmt.Sprintf("+%dh requested by %s: %dh in total is beyond %dh and waits for an admin's approval", hours, who.Name, total, spec.MaxTTLHours)
			return nil
		}
		e.TTLHours = total
		e.ExpiresAt = e.CreatedAt.Add(time.Duration(total) * time.Hour)
		e.DeadlineSetAt = m.now().UTC()
		moved = true
		detail = fmt.Sprintf("+%dh by %s%s: %dh in total, new deadline %s", hours, who.Name, via(who), total, e.ExpiresAt.Format(time.RFC3339))
		return nil
	})
	if err == nil {
		m.audit(ctx, AuditRecord{Env: name, Actor: who.Name, Via: who.Via, Action: "extend", From: e.State, Detail: detail})
		if moved {
			m.emit(Event{Kind: EventExtended, Env: name, Owner: e.Owner, PRNumber: e.PRNumber, State: e.State, Deadline: e.ExpiresAt, Actor: who.Name, Via: who.Via, Why: detail})
		}
	}
	return e, err
}

// Approve grants a pending request for a longer lifetime (admins only).
func (m *Manager) Approve(ctx context.Context, who Actor, name string) (Environment, error) {
	return m.decide(ctx, who, name, true)
}

// Refuse drops a pending request for a longer lifetime (admins only).
func (m *Manager) Refuse(ctx context.Context, who Actor, name string) (Environment, error) {
	return m.decide(ctx, who, name, false)
}

func (m *Manager) decide(ctx context.Context, who Actor, name string, approve bool) (Environment, error) {
	action := map[bool]string{true: "approve", false: "refuse"}[approve]
	if !who.Admin {
		if err := checkName(name); err != nil {
			return Environment{}, err
		}
		m.audit(ctx, AuditRecord{Env: name, Actor: who.Name, Via: who.Via, Action: "refused", Detail: action + ": only an admin may decide on a longer lifetime"})
		return Environment{}, fmt.Errorf("%w: only an admin may %s a longer lifetime", ErrForbidden, action)
	}
	var detail string
	e, err := m.change(ctx, who, name, action, func(e *Environment) error {
		p := e.PendingTTL
		if p == nil {
			return fmt.Errorf("%w: %s has no pending request for a longer lifetime", ErrIllegalTransition, name)
		}
		e.PendingTTL = nil
		if !approve {
			detail = fmt.Sprintf("refused %s's request for %dh in total; the deadline stays %s", p.By, p.Hours, e.ExpiresAt.Format(time.RFC3339))
			return nil
		}
		if e.Desired == WantDestroyed || e.State == StateDestroyed {
			return fmt.Errorf("%w: %s is being destroyed", ErrIllegalTransition, name)
		}
		e.TTLHours = p.Hours
		e.ExpiresAt = e.CreatedAt.Add(time.Duration(p.Hours) * time.Hour)
		e.DeadlineSetAt = m.now().UTC()
		detail = fmt.Sprintf("approved %s's request: %dh in total, new deadline %s", p.By, p.Hours, e.ExpiresAt.Format(time.RFC3339))
		return nil
	})
	if err == nil {
		m.audit(ctx, AuditRecord{Env: name, Actor: who.Name, Via: who.Via, Action: action, From: e.State, Detail: detail})
		if approve {
			m.emit(Event{Kind: EventExtended, Env: name, Owner: e.Owner, PRNumber: e.PRNumber, State: e.State, Deadline: e.ExpiresAt, Actor: who.Name, Via: who.Via, Why: detail})
		}
	}
	return e, err
}

// change applies one request to one environment with a revision check: if
// another request changed the environment since it was read, this one fails
// with ErrConflict and changes nothing.
func (m *Manager) change(ctx context.Context, who Actor, name, action string, apply func(*Environment) error) (Environment, error) {
	if err := checkName(name); err != nil {
		return Environment{}, err
	}
	e, rev, err := m.store.Get(ctx, name)
	if err != nil {
		return Environment{}, err
	}
	if !who.Admin && e.Owner != who.Name && !(who.Integration && spec.PRNumberOf(name) > 0) {
		// Audited in the owner's log (the caller is authenticated and the
		// name valid), answered as not found.
		m.audit(ctx, AuditRecord{Env: name, Actor: who.Name, Via: who.Via, Action: "refused", Detail: action + ": not the owner"})
		return Environment{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err := apply(&e); err != nil {
		if errors.Is(err, ErrForbidden) {
			m.audit(ctx, AuditRecord{Env: name, Actor: who.Name, Via: who.Via, Action: "refused", Detail: action + ": " + err.Error()})
		}
		return Environment{}, err
	}
	e.UpdatedAt = m.now().UTC()
	if _, err := m.store.Update(ctx, e, rev); err != nil {
		return Environment{}, err
	}
	switch action {
	case "extend", "approve", "refuse", "update": // their callers audit with the detail
	default:
		m.audit(ctx, AuditRecord{Env: name, Actor: who.Name, Via: who.Via, Action: action, From: e.State, Detail: "desired " + string(e.Desired)})
	}
	return e, nil
}

func (m *Manager) audit(ctx context.Context, r AuditRecord) {
	if r.At.IsZero() {
		r.At = m.now().UTC()
	}
	if err := m.store.AppendAudit(ctx, r); err != nil {
		// The change is made; an audit write that fails is logged loudly
		// rather than undoing it.
		m.log.Error("audit write failed", "env", r.Env, "action", r.Action, "err", err)
	}
}

// EnvLocks serializes a provisioner's operations per environment: two
// operations on one environment never run at once, different environments
// proceed in parallel. The zero value is ready to use; safe for concurrent
// use.
type EnvLocks struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// Lock locks name's operations and returns the unlock.
func (l *EnvLocks) Lock(name string) func() {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*sync.Mutex{}
	}
	m, ok := l.locks[name]
	if !ok {
		m = &sync.Mutex{}
		l.locks[name] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}
