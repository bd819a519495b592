// Package api serves the environment manager's REST API under
// /v1/environments, with bearer-token authentication, a Server-Sent Events
// stream of lifecycle progress, and the OpenAPI document (openapi.json in
// this directory, also served at /openapi.json).
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/envmgr/sweep"
	"github.com/paddockhq/paddock/internal/jsonbody"
)

//go:embed openapi.json
var openapi []byte

// Server is the HTTP API. Create with New; it is an http.Handler.
type Server struct {
	mgr    *envmgr.Manager
	store  envmgr.Store
	tokens *Tokens
	log    *slog.Logger
	mux    *http.ServeMux
	// Connect describes how a node's strategy connects, for `env up --wait`.
	connect ConnectInfo
	// progress, when set, adds provisioners' progress to the events stream.
	progress *envmgr.ProgressHub
	metrics  *Metrics
	health   HealthChecker
	orphans  Orphans

	// refusals are logged at most once per refusalLogEvery, with the count
	// since the last line: an anonymous flood costs a counter, not a log.
	refusalMu     sync.Mutex
	refusalLogged time.Time
	refusalCount  int
}

// refusalLogEvery bounds the log lines about refused requests.
const refusalLogEvery = 5 * time.Second

// HealthChecker reports whether the store can be reached; /healthz and
// /readyz answer 503 with its error while it cannot.
type HealthChecker interface {
	Healthy(ctx context.Context) error
}

// Options are the API server's optional parts.
type Options struct {
	Metrics *Metrics      // nil: metrics not kept
	Health  HealthChecker // nil: the store is assumed reachable
	// MetricsHandler, when set, serves /metrics (unauthenticated, like the
	// feed's: counts and states only, no names or owners).
	MetricsHandler http.Handler
	// Orphans, when set, serves GET /v1/orphans (the dry run) and POST
	// /v1/orphans/clean (admins only).
	Orphans Orphans
	// SlackCommand, when set, serves POST /v1/slack/command. It is outside
	// the bearer-token authentication: Slack signs its requests, and the
	// handler verifies the signature.
	SlackCommand http.Handler
	// GitHubWebhook, when set, serves POST /v1/github/webhook, likewise
	// authenticated by GitHub's signature (X-Hub-Signature-256).
	GitHubWebhook http.Handler
}

// Orphans is the orphan sweeper as the API uses it (*sweep.Sweeper).
type Orphans interface {
	Find(ctx context.Context) (sweep.Report, error)
	Clean(ctx context.Context, actor string) (sweep.Report, error)
}

// SetProgress streams a provisioner's progress events (event: progress)
// beside the state changes on /events.
func (s *Server) SetProgress(h *envmgr.ProgressHub) { s.progress = h }

// ConnectInfo is what the API tells a developer about reaching the bus.
type ConnectInfo struct {
	NATSURL string `json:"nats_url"`
}

// New creates the API server.
func New(mgr *envmgr.Manager, store envmgr.Store, tokens *Tokens, connect ConnectInfo, log *slog.Logger, opts ...Options) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	s := &Server{mgr: mgr, store: store, tokens: tokens, log: log.With("component", "api"), mux: http.NewServeMux(), connect: connect,
		metrics: o.Metrics, health: o.Health, orphans: o.Orphans}
	s.mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi)
	})
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.healthz)
	if o.MetricsHandler != nil {
		s.mux.Handle("GET /metrics", o.MetricsHandler)
	}
	s.handle("POST /v1/environments", s.create)
	s.handle("GET /v1/environments", s.list)
	s.handle("GET /v1/environments/{name}", s.get)
	s.handle("DELETE /v1/environments/{name}", s.destroy)
	s.handle("POST /v1/environments/{name}/stop", s.stop)
	s.handle("POST /v1/environments/{name}/start", s.start)
	s.handle("POST /v1/environments/{name}/extend", s.extend)
	s.handle("POST /v1/environments/{name}/update", s.update)
	s.handle("POST /v1/environments/{name}/approve", s.approve)
	s.handle("POST /v1/environments/{name}/refuse", s.refuse)
	s.handle("GET /v1/environments/{name}/events", s.events)
	s.handle("GET /v1/environments/{name}/audit", s.audit)
	if o.Orphans != nil {
		s.handle("GET /v1/orphans", s.findOrphans)
		s.handle("POST /v1/orphans/clean", s.cleanOrphans)
	}
	if o.SlackCommand != nil {
		s.mux.Handle("POST /v1/slack/command", o.SlackCommand)
	}
	if o.GitHubWebhook != nil {
		s.mux.Handle("POST /v1/github/webhook", o.GitHubWebhook)
	}
	return s
}

// findOrphans is the sweeper's dry run (admins only).
func (s *Server) findOrphans(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	if !who.Admin {
		return fmt.Errorf("%w: only an admin may list orphaned resources", envmgr.ErrForbidden)
	}
	rep, err := s.orphans.Find(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// cleanOrphans deletes the orphans past the grace period (admins only); a
// partial failure still answers 200 with the report, whose failed list
// says what could not be deleted.
func (s *Server) cleanOrphans(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	if !who.Admin {
		return fmt.Errorf("%w: only an admin may delete orphaned resources", envmgr.ErrForbidden)
	}
	rep, err := s.orphans.Clean(r.Context(), who.Name)
	if err != nil && len(rep.Failed) == 0 {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// healthz answers 200 while the store can be reached and 503 with the
// reason while it cannot, so that a supervisor can act on a manager that has
// lost NATS.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.health != nil {
		if err := s.health.Healthy(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error

// statusWriter remembers the status code, for the requests metric.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// handle checks the path's name, authenticates, runs h, and maps its error
// to a response in one place. The name is checked first: a bad one never
// reaches a store key, a NATS subject or a log line, whoever sends it.
// Requests refused before they reach an environment (bad names,
// unauthenticated) are counted and logged at a limited rate, never written
// to an environment's audit log, which an anonymous caller could fill.
func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		defer func() {
			code := w.code
			if code == 0 {
				code = http.StatusOK
			}
			s.metrics.requests.WithLabelValues(pattern, strconv.Itoa(code)).Inc()
		}()
		if name := r.PathValue("name"); name != "" || hasName(pattern) {
			if err := spec.CheckName(name); err != nil {
				s.refusedEarly("bad_name")
				s.writeError(w, fmt.Errorf("%w: %w", envmgr.ErrInvalid, err))
				return
			}
		}
		who, err := s.tokens.actor(r)
		if err != nil {
			s.refusedEarly("unauthenticated")
			s.writeError(w, err)
			return
		}
		if err := h(w, r, who); err != nil {
			if errors.Is(err, envmgr.ErrForbidden) {
				s.refused(r, who.Name, err)
			}
			s.writeError(w, err)
		}
	})
}

func hasName(pattern string) bool {
	for i := 0; i+6 <= len(pattern); i++ {
		if pattern[i:i+6] == "{name}" {
			return true
		}
	}
	return false
}

// refusedEarly counts a request refused before authentication and logs at
// most one line per refusalLogEvery.
func (s *Server) refusedEarly(reason string) {
	s.metrics.refused.WithLabelValues(reason).Inc()
	s.refusalMu.Lock()
	s.refusalCount++
	if time.Since(s.refusalLogged) < refusalLogEvery {
		s.refusalMu.Unlock()
		return
	}
	n := s.refusalCount
	s.refusalCount, s.refusalLogged = 0, time.Now()
	s.refusalMu.Unlock()
	s.log.Warn("requests refused before authentication", "count", n, "last_reason", reason)
}

// refused audits an authenticated actor's refused request, in the named
// environment's log (the name is valid by now) or the global one.
func (s *Server) refused(r *http.Request, actor string, err error) {
	env := r.PathValue("name")
	if env == "" {
		env = envmgr.GlobalAudit
	}
	rec := envmgr.AuditRecord{Env: env, At: time.Now().UTC(), Actor: actor, Action: "refused", Detail: r.Method + " " + r.Pattern + ": " + err.Error()}
	if aerr := s.store.AppendAudit(r.Context(), rec); aerr != nil {
		s.log.Error("audit write failed", "err", aerr)
	}
}

// Error is the JSON error body. Fields lists validation problems.
type Error struct {
	Error  string            `json:"error"`
	Code   string            `json:"code"`
	Fields []spec.FieldError `json:"fields,omitempty"`
}

// writeError maps errors to status codes: the one place that does. A 500
// or 503 never carries the underlying error's text (NATS subjects, server
// messages): it is logged, and the caller gets the class.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	var se *spec.Errors
	var je *jsonbody.Error
	status, code := http.StatusInternalServerError, "internal"
	switch {
	case errors.As(err, &se):
		writeJSON(w, http.StatusUnprocessableEntity, Error{Error: err.Error(), Code: "invalid_spec", Fields: se.List})
		return
	case errors.As(err, &je):
		writeJSON(w, je.Status, Error{Error: je.Msg, Code: "bad_request"})
		return
	case errors.Is(err, envmgr.ErrUnavailable):
		s.log.Warn("request failed: store unavailable", "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, Error{Error: "the environment store is unavailable; retry shortly", Code: "unavailable"})
		return
	case errors.Is(err, errUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="paddock"`)
		status, code = http.StatusUnauthorized, "unauthenticated"
	case errors.Is(err, envmgr.ErrForbidden):
		status, code = http.StatusForbidden, "forbidden"
	case errors.Is(err, envmgr.ErrNotFound):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, envmgr.ErrExists):
		status, code = http.StatusConflict, "exists"
	case errors.Is(err, envmgr.ErrConflict):
		status, code = http.StatusConflict, "conflict"
	case errors.Is(err, envmgr.ErrIllegalTransition):
		status, code = http.StatusConflict, "illegal_transition"
	case errors.Is(err, envmgr.ErrInvalid), errors.Is(err, errBadRequest):
		status, code = http.StatusBadRequest, "bad_request"
	default:
		s.log.Error("request failed", "err", err)
		writeJSON(w, status, Error{Error: "internal error; the manager's log has the details", Code: code})
		return
	}
	writeJSON(w, status, Error{Error: err.Error(), Code: code})
}

var errBadRequest = errors.New("api: bad request")

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// CreateBody is the create request: the .dev-env.yaml and where it came from.
type CreateBody struct {
	SpecYAML  string `json:"spec_yaml"`
	PRNumber  int    `json:"pr_number,omitempty"`
	Branch    string `json:"branch,omitempty"`
	CommitSHA string `json:"commit_sha,omitempty"`
	// Repo (owner/name): the strategy is built from this repository at
	// CommitSHA (the pull-request integration's tokens only; the manager
	// needs its GitHub configuration to fetch it).
	Repo string `json:"repo,omitempty"`
}

// decode reads a request body by the one rule (internal/jsonbody). A body
// holds at most a .dev-env.yaml, JSON-escaped, and a few fields.
func decode(r *http.Request, v any) error {
	return jsonbody.Decode(r, v, spec.MaxFileBytes*2+4096, true)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	var b CreateBody
	if err := decode(r, &b); err != nil {
		return err
	}
	e, err := s.mgr.Create(r.Context(), who, envmgr.CreateRequest{SpecYAML: []byte(b.SpecYAML), PRNumber: b.PRNumber, Branch: b.Branch,
		CommitSHA: b.CommitSHA, Repo: b.Repo})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/environments/"+e.Name)
	writeJSON(w, http.StatusCreated, e)
	return nil
}

// update moves an environment to a new commit (the integration and admins:
// CI mode's push).
func (s *Server) update(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	var b CreateBody
	if err := decode(r, &b); err != nil {
		return err
	}
	e, err := s.mgr.Update(r.Context(), who, r.PathValue("name"), envmgr.CreateRequest{SpecYAML: []byte(b.SpecYAML), Branch: b.Branch, CommitSHA: b.CommitSHA})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	es, err := s.mgr.List(r.Context(), who)
	if err != nil {
		return err
	}
	if es == nil {
		es = []envmgr.Environment{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"environments": es})
	return nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	e, err := s.mgr.Get(r.Context(), who, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"environment": e, "connect": s.connect})
	return nil
}

func (s *Server) change(w http.ResponseWriter, e envmgr.Environment, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, e)
	return nil
}

func (s *Server) destroy(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	e, err := s.mgr.Destroy(r.Context(), who, r.PathValue("name"))
	return s.change(w, e, err)
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	e, err := s.mgr.Stop(r.Context(), who, r.PathValue("name"))
	return s.change(w, e, err)
}

func (s *Server) start(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	e, err := s.mgr.Start(r.Context(), who, r.PathValue("name"))
	return s.change(w, e, err)
}

func (s *Server) extend(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	var b struct {
		Hours int `json:"hours"`
	}
	if err := decode(r, &b); err != nil {
		return err
	}
	e, err := s.mgr.Extend(r.Context(), who, r.PathValue("name"), b.Hours)
	return s.change(w, e, err)
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	e, err := s.mgr.Approve(r.Context(), who, r.PathValue("name"))
	return s.change(w, e, err)
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	e, err := s.mgr.Refuse(r.Context(), who, r.PathValue("name"))
	return s.change(w, e, err)
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	name := r.PathValue("name")
	if _, err := s.mgr.Get(r.Context(), who, name); err != nil {
		return err
	}
	recs, err := s.store.Audit(r.Context(), name)
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []envmgr.AuditRecord{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"audit": recs})
	return nil
}

// events streams the environment's state as Server-Sent Events: the current
// state first, then every change, until it is destroyed or the client goes.
func (s *Server) events(w http.ResponseWriter, r *http.Request, who envmgr.Actor) error {
	name := r.PathValue("name")
	if _, err := s.mgr.Get(r.Context(), who, name); err != nil {
		return err
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return errors.New("streaming unsupported by this connection")
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ch, err := s.store.Watch(ctx)
	if err != nil {
		return err
	}
	var progress <-chan envmgr.ProgressEvent
	if s.progress != nil {
		var stop func()
		progress, stop = s.progress.Subscribe(name)
		defer stop()
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	var last envmgr.Environment
	first := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keepalive.C:
			_, _ = io.WriteString(w, ": keepalive\n\n")
			fl.Flush()
		case p := <-progress:
			b, _ := json.Marshal(p)
			if _, err := fmt.Fprintf(w, "event: progress\ndata: %s\n\n", b); err != nil {
				return nil
			}
			fl.Flush()
		case e, ok := <-ch:
			if !ok {
				return nil
			}
			// A state change or a change of the node's health is an event.
			if e.Name != name || (!first && e.State == last.State && e.Health.Equal(last.Health) && e.Reason == last.Reason) {
				continue
			}
			first, last = false, e
			b, _ := json.Marshal(e)
			if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", b); err != nil {
				return nil
			}
			fl.Flush()
			if e.State == envmgr.StateDestroyed {
				return nil
			}
		}
	}
}
