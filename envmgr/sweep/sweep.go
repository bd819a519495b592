// Package sweep finds what leaked: resources that exist without a live
// environment record (a node process, a Terraform working directory or
// state, an EC2 instance, a secret, a strategy artifact, a NATS user), and
// records whose resources do not exist. Finding is a dry run; Clean deletes
// the orphans older than a grace period, auditing and counting each
// deletion. Every backend is a Source; the sweeper compares their
// inventories with the store.
package sweep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/prometheus/client_golang/prometheus"
)

// Resource is one thing a backend found.
type Resource struct {
	Kind string `json:"kind"` // node-process, node-dir, nats-user, tf-workdir, tf-state-s3, ec2-instance, secret, artifact
	ID   string `json:"id"`   // a path, a pid, an instance id, a secret's name, an S3 key, a user's public key
	// Env is the environment it belongs to ("" when nothing says).
	Env     string    `json:"env,omitempty"`
	Created time.Time `json:"created"`
	Detail  string    `json:"detail,omitempty"`
	// Shared resources (strategy artifacts) belong to every environment in
	// UsedBy; one is an orphan when none of them is live.
	Shared bool     `json:"shared,omitempty"`
	UsedBy []string `json:"used_by,omitempty"`
}

// Source is one backend's view: what it has, what it should have for a
// record, and how to delete one of its resources. Implementations: the
// local provisioner (envmgr/local), Terraform (envmgr/terraform), AWS
// (envmgr/aws).
type Source interface {
	// Kinds are the kinds of resource this source lists and deletes.
	Kinds() []string
	// Inventory lists the backend's resources.
	Inventory(ctx context.Context) ([]Resource, error)
	// Expects lists the kinds of resource e's record says exist here.
	Expects(e envmgr.Environment) []string
	// Delete removes one resource; a resource already gone is not an error.
	Delete(ctx context.Context, r Resource) error
}

// Orphan is a resource without a live environment, and why.
type Orphan struct {
	Resource
	Why string `json:"why"`
	// Eligible: older than the grace period, so a cleanup deletes it.
	Eligible bool `json:"eligible"`
}

// Missing is a record that says a resource exists that does not.
type Missing struct {
	Env   string       `json:"env"`
	State envmgr.State `json:"state"`
	Kind  string       `json:"kind"`
	Why   string       `json:"why"`
}

// Report is one sweep's findings (and, for a cleanup, its deletions).
type Report struct {
	At      time.Time `json:"at"`
	Grace   string    `json:"grace"`
	Orphans []Orphan  `json:"orphans"`
	Missing []Missing `json:"missing"`
	// Errors: sources that could not be listed (their kinds are then
	// neither orphans nor missing in this report).
	Errors  []string `json:"errors,omitempty"`
	Deleted []Orphan `json:"deleted,omitempty"`
	Failed  []string `json:"failed,omitempty"`
}

// Config configures a Sweeper.
type Config struct {
	Store   envmgr.Store
	Sources []Source
	// Grace: orphans younger than this are listed but not deleted (a
	// resource being created has no record for a moment; default 24h).
	Grace time.Duration
	// Every is the scheduled cleanup's period (default a week); negative
	// turns the schedule off (on-demand only).
	Every   time.Duration
	Clock   clock.Clock
	Log     *slog.Logger
	Metrics *Metrics
}

// Sweeper compares the sources' inventories with the store. Safe for
// concurrent use; Run at most once.
type Sweeper struct{ c Config }

// New builds a sweeper.
func New(c Config) *Sweeper {
	if c.Grace <= 0 {
		c.Grace = 24 * time.Hour
	}
	if c.Every == 0 {
		c.Every = 7 * 24 * time.Hour
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	c.Log = c.Log.With("component", "sweeper")
	return &Sweeper{c: c}
}

// Metrics are the sweeper's counters.
type Metrics struct {
	found   *prometheus.GaugeVec
	missing *prometheus.GaugeVec
	deleted *prometheus.CounterVec
	errors  *prometheus.CounterVec
}

// NewMetrics registers the sweeper's metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		found: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_envmgr_orphans",
			Help: "Orphaned resources found by the last sweep, by kind."}, []string{"kind"}),
		missing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_envmgr_missing_resources",
			Help: "Resources a live record says exist that the last sweep did not find, by kind."}, []string{"kind"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_envmgr_orphans_deleted_total",
			Help: "Orphaned resources deleted, by kind."}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_envmgr_orphan_delete_errors_total",
			Help: "Orphaned resources that could not be deleted, by kind."}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.found, m.missing, m.deleted, m.errors)
	}
	return m
}

// Find is the dry run: every orphan with why, and every missing resource.
func (s *Sweeper) Find(ctx context.Context) (Report, error) {
	now := s.c.Clock.Now().UTC()
	rep := Report{At: now, Grace: s.c.Grace.String(), Orphans: []Orphan{}, Missing: []Missing{}}
	all, err := s.c.Store.List(ctx)
	if err != nil {
		return rep, fmt.Errorf("list environments: %w", err)
	}
	records := make(map[string]envmgr.Environment, len(all))
	for _, e := range all {
		records[e.Name] = e
	}
	found := map[string]int{}
	missing := map[string]int{}
	for _, src := range s.c.Sources {
		inv, err := src.Inventory(ctx)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			continue
		}
		have := map[[2]string]bool{}
		for _, r := range inv {
			have[[2]string{r.Kind, r.Env}] = true
			why := orphaned(r, records)
			if why == "" {
				continue
			}
			o := Orphan{Resource: r, Why: why, Eligible: !r.Created.IsZero() && now.Sub(r.Created) >= s.c.Grace}
			rep.Orphans = append(rep.Orphans, o)
			found[r.Kind]++
		}
		for _, e := range all {
			if !settled(e) {
				continue
			}
			for _, kind := range src.Expects(e) {
				if !have[[2]string{kind, e.Name}] {
					rep.Missing = append(rep.Missing, Missing{Env: e.Name, State: e.State, Kind: kind,
						Why: fmt.Sprintf("the record says %s, but no %s exists", e.State, kind)})
					missing[kind]++
				}
			}
		}
	}
	sort.Slice(rep.Orphans, func(i, j int) bool {
		a, b := rep.Orphans[i], rep.Orphans[j]
		return a.Kind < b.Kind || (a.Kind == b.Kind && a.ID < b.ID)
	})
	s.c.Metrics.found.Reset()
	for k, n := range found {
		s.c.Metrics.found.WithLabelValues(k).Set(float64(n))
	}
	s.c.Metrics.missing.Reset()
	for k, n := range missing {
		s.c.Metrics.missing.WithLabelValues(k).Set(float64(n))
	}
	return rep, nil
}

// settled: states whose resources should exist (not being created or torn
// down, and not destroyed).
func settled(e envmgr.Environment) bool {
	switch e.State {
	case envmgr.StateReady, envmgr.StateDegraded, envmgr.StateStopped:
		return e.Desired != envmgr.WantDestroyed
	}
	return false
}

// orphaned says why r has no live environment, or "" when it has one. An
// environment in any state but destroyed owns its resources (a failed one's
// are torn down by its own destroy, with retries).
func orphaned(r Resource, records map[string]envmgr.Environment) string {
	if r.Shared {
		for _, name := range r.UsedBy {
			if e, ok := records[name]; ok && e.State != envmgr.StateDestroyed {
				return ""
			}
		}
		if len(r.UsedBy) == 0 {
			return "no environment references it"
		}
		return fmt.Sprintf("only destroyed or unknown environments reference it (%v)", r.UsedBy)
	}
	if r.Env == "" {
		return "it names no environment"
	}
	e, ok := records[r.Env]
	switch {
	case !ok:
		return fmt.Sprintf("there is no environment record named %s", r.Env)
	case e.State == envmgr.StateDestroyed:
		return fmt.Sprintf("environment %s was destroyed at %s", r.Env, e.UpdatedAt.Format(time.RFC3339))
	}
	return ""
}

// Clean deletes the eligible orphans (older than the grace period), each
// audited (in its environment's log, or the global one) with who asked and
// counted; the report lists what was deleted and what failed.
func (s *Sweeper) Clean(ctx context.Context, actor string) (Report, error) {
	rep, err := s.Find(ctx)
	if err != nil {
		return rep, err
	}
	bySource := map[string]Source{}
	for _, src := range s.c.Sources {
		for _, o := range rep.Orphans {
			if _, ok := bySource[o.Kind+"\x00"+o.ID]; !ok && owns(src, o.Resource) {
				bySource[o.Kind+"\x00"+o.ID] = src
			}
		}
	}
	for _, o := range rep.Orphans {
		if !o.Eligible {
			continue
		}
		src := bySource[o.Kind+"\x00"+o.ID]
		if src == nil {
			continue
		}
		if err := src.Delete(ctx, o.Resource); err != nil {
			s.c.Metrics.errors.WithLabelValues(o.Kind).Inc()
			rep.Failed = append(rep.Failed, fmt.Sprintf("%s %s: %v", o.Kind, o.ID, err))
			s.c.Log.Warn("delete orphan", "kind", o.Kind, "id", o.ID, "err", err)
			continue
		}
		s.c.Metrics.deleted.WithLabelValues(o.Kind).Inc()
		rep.Deleted = append(rep.Deleted, o)
		env := o.Env
		if env == "" || o.Shared {
			env = envmgr.GlobalAudit
		}
		if err := s.c.Store.AppendAudit(ctx, envmgr.AuditRecord{Env: env, At: s.c.Clock.Now().UTC(), Actor: actor, Action: "orphan-deleted",
			Detail: fmt.Sprintf("%s %s: %s", o.Kind, o.ID, o.Why)}); err != nil {
			s.c.Log.Error("audit write failed", "kind", o.Kind, "id", o.ID, "err", err)
		}
		s.c.Log.Info("orphan deleted", "kind", o.Kind, "id", o.ID, "env", o.Env, "why", o.Why)
	}
	if len(rep.Failed) > 0 {
		return rep, errors.New("some orphans could not be deleted")
	}
	return rep, nil
}

// owns reports whether src deals in r's kind.
func owns(src Source, r Resource) bool {
	for _, k := range src.Kinds() {
		if k == r.Kind {
			return true
		}
	}
	return false
}

// Run cleans on the schedule until ctx ends (Every negative: never).
func (s *Sweeper) Run(ctx context.Context) error {
	if s.c.Every < 0 {
		<-ctx.Done()
		return nil
	}
	t := s.c.Clock.NewTicker(s.c.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			rep, err := s.Clean(ctx, "sweeper")
			if err != nil && ctx.Err() == nil {
				s.c.Log.Warn("scheduled orphan cleanup", "err", err)
			}
			s.c.Log.Info("scheduled orphan cleanup", "orphans", len(rep.Orphans), "deleted", len(rep.Deleted), "missing", len(rep.Missing))
		}
	}
}
