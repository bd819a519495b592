// Package envmgr is the environment manager's core: the lifecycle of a
// sandbox environment, the interfaces it consumes (Store, Provisioner) and
// the rules for moving between states. Backends live in subpackages
// (natskv for the store, local for the local provisioner, ...).
package envmgr

import (
	"errors"
	"fmt"
	"time"
)

// State is where an environment is in its lifecycle.
type State string

// The lifecycle: requested -> provisioning -> ready -> (stopping -> stopped
// -> starting -> ready)* -> destroying -> destroyed, with failed reachable
// from every working state and degraded beside ready (the node runs but
// does not work). Transitions not in the table are refused.
const (
	StateRequested    State = "requested"
	StateProvisioning State = "provisioning"
	StateReady        State = "ready"
	// StateDegraded: the node runs but is not doing what the developer
	// asked (a book is not live, the strategy keeps crashing, the
	// environment is halted); Reason says why. It moves back to ready by
	// itself when the node recovers.
	StateDegraded   State = "degraded"
	StateStopping   State = "stopping"
	StateStopped    State = "stopped"
	StateStarting   State = "starting"
	StateDestroying State = "destroying"
	StateDestroyed  State = "destroyed"
	StateFailed     State = "failed"
)

// transitions lists, for each state, the states it may move to.
var transitions = map[State][]State{
	StateRequested:    {StateProvisioning, StateDestroying, StateFailed},
	StateProvisioning: {StateReady, StateDegraded, StateDestroying, StateFailed},
	// ready, degraded and stopped -> provisioning: a redeploy (the pull
	// request's head moved to a new commit).
	StateReady:      {StateDegraded, StateStopping, StateDestroying, StateFailed, StateProvisioning},
	StateDegraded:   {StateReady, StateStopping, StateDestroying, StateFailed, StateProvisioning},
	StateStopping:   {StateStopped, StateDestroying, StateFailed},
	StateStopped:    {StateStarting, StateDestroying, StateProvisioning},
	StateStarting:   {StateReady, StateDegraded, StateDestroying, StateFailed},
	StateFailed:     {StateDestroying, StateProvisioning}, // retry, or tear down what was made
	StateDestroying: {StateDestroyed, StateFailed},
	StateDestroyed:  nil,
}

// States lists every state, in lifecycle order.
var States = []State{StateRequested, StateProvisioning, StateReady, StateDegraded, StateStopping, StateStopped, StateStarting,
	StateDestroying, StateDestroyed, StateFailed}

// CanMove reports whether from -> to is a legal transition.
func CanMove(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Valid reports whether s is a known state.
func (s State) Valid() bool { _, ok := transitions[s]; return ok }

// Terminal reports whether nothing follows s.
func (s State) Terminal() bool { return s == StateDestroyed }

// Desired is what the developer asked for; the reconciler moves State
// toward it.
type Desired string

const (
	WantRunning   Desired = "running"
	WantStopped   Desired = "stopped"
	WantDestroyed Desired = "destroyed"
)

// Errors. Match with errors.Is; the API maps them to status codes in one place.
var (
	ErrNotFound          = errors.New("envmgr: environment not found")
	ErrExists            = errors.New("envmgr: environment already exists")
	ErrConflict          = errors.New("envmgr: environment was changed by another request; reload and retry")
	ErrIllegalTransition = errors.New("envmgr: illegal state transition")
	ErrForbidden         = errors.New("envmgr: not allowed")
	ErrInvalid           = errors.New("envmgr: invalid request")
	// ErrUnavailable: the store (NATS) cannot be reached now; retry later.
	ErrUnavailable = errors.New("envmgr: store unavailable")
)

// GlobalAudit is the audit log of requests that name no environment.
const GlobalAudit = "_global"

// Environment is the stored record of one environment. It is a value: the
// store returns copies, and writes carry the revision they were read at.
type Environment struct {
	Name      string `json:"name"`
	Owner     string `json:"owner"`
	SpecYAML  string `json:"spec_yaml"` // the .dev-env.yaml as submitted
	PRNumber  int    `json:"pr_number,omitempty"`
	Branch    string `json:"branch,omitempty"`
	CommitSHA string `json:"commit_sha,omitempty"` // the commit asked for (a PR's head)
	// Repo is the GitHub repository (owner/name) of a pull request's
	// environment: its strategy is built from CommitSHA's source there.
	Repo string `json:"repo,omitempty"`
	// DeployedSHA is the commit the node was last provisioned from; when
	// CommitSHA moves past it (a push), the reconciler redeploys.
	DeployedSHA string    `json:"deployed_sha,omitempty"`
	State       State     `json:"state"`
	Desired     Desired   `json:"desired"`
	Reason      string    `json:"reason,omitempty"`      // why it failed
	FailedAt    State     `json:"failed_step,omitempty"` // the state it failed in
	TTLHours    int       `json:"ttl_hours"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Endpoint is where the running node can be reached (admin URL), once
	// provisioned.
	Endpoint string `json:"endpoint,omitempty"`
	// CredsExpireAt is the deadline the node's current NATS credentials
	// carry; when an extension moves ExpiresAt, the reconciler re-issues them.
	CredsExpireAt time.Time `json:"creds_expire_at,omitempty"`
	// CredsRefreshedFor is the deadline the reconciler last tried to
	// re-issue credentials for, so that a provisioner that cannot is asked
	// (and audited) once per extension, not on every pass.
	CredsRefreshedFor time.Time `json:"creds_refreshed_for,omitempty"`
	// CredsRef says where the node's NATS credentials are (a file for the
	// local provisioner, a secret's name for cloud ones); never the secret.
	CredsRef string `json:"creds_ref,omitempty"`
	// Health is what the node last reported of itself, when its provisioner
	// can ask (ready and degraded environments).
	Health *Health `json:"health,omitempty"`
	// PendingTTL is a developer's request for a lifetime beyond MaxTTLHours
	// (total hours), waiting for an admin to approve or refuse it.
	PendingTTL *TTLRequest `json:"pending_ttl,omitempty"`
	// DeadlineSetAt is when ExpiresAt last moved (create, extend,
	// approve): a warning whose time came before it is not due.
	DeadlineSetAt time.Time `json:"deadline_set_at,omitzero"`
	// Warnings are the expiry warnings claimed or sent for ExpiresAt
	// (see Lifecycle).
	Warnings []Warning `json:"warnings,omitempty"`
	// DestroyReason says why the environment is being (or was) destroyed:
	// its TTL, or who asked.
	DestroyReason string `json:"destroy_reason,omitempty"`
	// DestroyAttempts counts failed destroys since the last success;
	// RetryAt is when the next one runs (capped exponential backoff).
	DestroyAttempts int       `json:"destroy_attempts,omitempty"`
	RetryAt         time.Time `json:"retry_at,omitzero"`
}

// Health is a node's own account of whether it works: every declared book
// live, the strategy (if any) running, not halted. Reasons says what is not.
// It is the JSON of the node's GET /readyz (client.Health in the sandbox
// SDK), declared here too because the manager does not import the sandbox
// runtime; TestReadinessTellsTheTruth exercises the two together.
type Health struct {
	Ready      bool            `json:"ready"`
	Reasons    []string        `json:"reasons,omitempty"`
	BooksLive  int             `json:"books_live"`
	Books      int             `json:"books"`
	Strategy   *StrategyHealth `json:"strategy,omitempty"`
	Halted     bool            `json:"halted"`
	HaltReason string          `json:"halt_reason,omitempty"`
}

// StrategyHealth is the strategy process as the node supervises it.
type StrategyHealth struct {
	Running  bool   `json:"running"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"last_exit,omitempty"`
}

// Equal reports whether two health reports say the same.
func (h *Health) Equal(o *Health) bool {
	if h == nil || o == nil {
		return h == o
	}
	if h.Ready != o.Ready || h.BooksLive != o.BooksLive || h.Books != o.Books || h.Halted != o.Halted || h.HaltReason != o.HaltReason ||
		len(h.Reasons) != len(o.Reasons) || (h.Strategy == nil) != (o.Strategy == nil) {
		return false
	}
	for i := range h.Reasons {
		if h.Reasons[i] != o.Reasons[i] {
			return false
		}
	}
	return h.Strategy == nil || *h.Strategy == *o.Strategy
}

// Summary is the health in one line, for listings.
func (h *Health) Summary() string {
	if h == nil {
		return "-"
	}
	s := fmt.Sprintf("books %d/%d", h.BooksLive, h.Books)
	if h.Strategy != nil {
		state := "stopped"
		if h.Strategy.Running {
			state = "running"
		}
		s += fmt.Sprintf(", strategy %s (%d restarts)", state, h.Strategy.Restarts)
	}
	if h.Halted {
		s += ", halted"
	}
	return s
}

// TTLRequest is a pending request for a longer lifetime.
type TTLRequest struct {
	Hours int       `json:"hours"` // the total lifetime asked for
	By    string    `json:"by"`
	At    time.Time `json:"at"`
}

// Move changes e's state if the transition is legal.
func (e *Environment) Move(to State, at time.Time) error {
	if !CanMove(e.State, to) {
		return fmt.Errorf("%w: %s -> %s for %s", ErrIllegalTransition, e.State, to, e.Name)
	}
	e.State, e.UpdatedAt = to, at
	if to != StateFailed {
		e.Reason, e.FailedAt = "", ""
	}
	return nil
}

// Fail moves e to failed, remembering the step and the reason.
func (e *Environment) Fail(reason string, at time.Time) error {
	step := e.State
	if err := e.Move(StateFailed, at); err != nil {
		return err
	}
	e.Reason, e.FailedAt = reason, step
	return nil
}

// AuditRecord is one entry of an environment's audit log: a request or a
// transition, who made it and when.
type AuditRecord struct {
	Env       string    `json:"env"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`  // a user, or "reconciler"
	Action    string    `json:"action"` // create, stop, start, extend, destroy, transition, refused, ...
	From      State     `json:"from,omitempty"`
	To        State     `json:"to,omitempty"`
	CommitSHA string    `json:"commit_sha,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	// Via is the channel a request came through: cli, api, slack, github.
	Via string `json:"via,omitempty"`
}
