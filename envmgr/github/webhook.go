package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	gh "github.com/google/go-github/v88/github"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/internal/clock"
)

// The work queue: verified deliveries and comment refreshes, worked by one
// replica at a time, in order.
const (
	streamName  = "PADDOCK_GITHUB"
	subjWebhook = "paddock.github.webhook"
	subjSync    = "paddock.github.sync"
	consumer    = "paddock-github"
	// dedupWindow: a redelivery (GitHub's, or a person's "Redeliver")
	// within it is recognised by its delivery id.
	dedupWindow = 72 * time.Hour
	// maxBody bounds a delivery; GitHub caps payloads at 25 MB, a pull
	// request's or comment's is a few tens of KB.
	maxBody = 5 << 20
)

// Manager is the environment manager as the integration drives it.
type Manager interface {
	Create(ctx context.Context, who envmgr.Actor, req envmgr.CreateRequest) (envmgr.Environment, error)
	Update(ctx context.Context, who envmgr.Actor, name string, req envmgr.CreateRequest) (envmgr.Environment, error)
	Get(ctx context.Context, who envmgr.Actor, name string) (envmgr.Environment, error)
	List(ctx context.Context, who envmgr.Actor) ([]envmgr.Environment, error)
	DestroyBecause(ctx context.Context, who envmgr.Actor, name, why string) (envmgr.Environment, error)
	Extend(ctx context.Context, who envmgr.Actor, name string, hours int) (envmgr.Environment, error)
	Stop(ctx context.Context, who envmgr.Actor, name string) (envmgr.Environment, error)
	Start(ctx context.Context, who envmgr.Actor, name string) (envmgr.Environment, error)
}

// Integration serves the webhook (ServeHTTP), works the queue (Run) and
// turns lifecycle events into comment refreshes (Notify). Create with New;
// safe for concurrent use; Run once per replica.
type Integration struct {
	cfg     Config
	sec     secrets
	client  *gh.Client
	mgr     Manager
	store   envmgr.Store
	nc      *nats.Conn
	js      jetstream.JetStream
	cons    jetstream.Consumer
	clock   clock.Clock
	log     *slog.Logger
	metrics *Metrics
	// Sources fetches commit trees (local.Config.SourceFor).
	Sources *Sources
	// NodeInfo, when set, adds where a node's API key and credentials are
	// to the comment (the local provisioner's files).
	NodeInfo func(e envmgr.Environment) string
	comments map[string]int64 // repo#pr -> the paddock comment's id (the worker's; one at a time)
}

var _ envmgr.Notifier = (*Integration)(nil)

// Metrics count the integration's work.
type Metrics struct {
	deliveries *prometheus.CounterVec
	work       *prometheus.CounterVec
}

// NewMetrics registers the integration's metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_github_deliveries_total",
			Help: "Webhook deliveries by result: queued, duplicate, ping, ignored, bad_signature, bad_request, too_large, unavailable."}, []string{"result"}),
		work: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_github_work_total",
			Help: "Queued work by result: done, retried (GitHub or the store failed; tried again later), failed (given up)."}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.work)
	}
	return m
}

// Options are the integration's collaborators.
type Options struct {
	Clock     clock.Clock
	Log       *slog.Logger
	Metrics   *Metrics
	Transport http.RoundTripper // for GitHub API calls (tests: the stand-in's)
	SourceDir string            // where commit trees are cached
}

// New checks cfg, builds the API client and opens the work queue.
func New(ctx context.Context, cfg Config, nc *nats.Conn, mgr Manager, store envmgr.Store, replicas int, o Options) (*Integration, error) {
	sec, err := cfg.load()
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	client, err := newClient(&cfg, sec, o.Transport)
	if err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = clock.Real
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if replicas <= 0 {
		replicas = 1
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: streamName, Subjects: []string{"paddock.github.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: replicas, MaxAge: 7 * 24 * time.Hour,
		Duplicates: dedupWindow, Description: "verified GitHub deliveries and PR comment refreshes"}); err != nil {
		return nil, fmt.Errorf("github work queue: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, streamName, jetstream.ConsumerConfig{Durable: consumer, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 10 * time.Minute, MaxAckPending: 1, MaxDeliver: -1})
	if err != nil {
		return nil, fmt.Errorf("github work queue consumer: %w", err)
	}
	httpc := &http.Client{Timeout: 2 * time.Minute}
	if o.Transport != nil {
		httpc.Transport = o.Transport
	}
	return &Integration{cfg: cfg, sec: sec, client: client, mgr: mgr, store: store, nc: nc, js: js, cons: cons, clock: o.Clock,
		log: o.Log.With("component", "github"), metrics: o.Metrics, comments: map[string]int64{},
		Sources: &Sources{client: client, http: httpc, dir: o.SourceDir}}, nil
}

// Webhook reports whether a webhook secret is configured (else the
// endpoint stays off).
func (i *Integration) Webhook() bool { return len(i.sec.webhook) > 0 }

// ServeHTTP is POST /v1/github/webhook: the signature is verified (HMAC
// SHA-256 with the webhook secret, by go-github, in constant time) before
// anything is read from the body; a verified delivery is queued durably
// (a redelivery of one already queued is recognised by X-GitHub-Delivery)
// and answered 202; a ping is answered at once.
func (i *Integration) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	refuse := func(code int, result, msg string) {
		i.metrics.deliveries.WithLabelValues(result).Inc()
		http.Error(w, msg, code)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		refuse(http.StatusRequestEntityTooLarge, "too_large", "delivery body too large")
		return
	}
	sig := r.Header.Get(gh.SHA256SignatureHeader)
	if sig == "" {
		refuse(http.StatusUnauthorized, "bad_signature", "missing X-Hub-Signature-256")
		return
	}
	ctype, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		ctype = "application/json"
	}
	payload, err := gh.ValidatePayloadFromBody(ctype, bytes.NewReader(body), sig, i.sec.webhook)
	if err != nil {
		refuse(http.StatusUnauthorized, "bad_signature", "invalid signature")
		return
	}
	event, delivery := gh.WebHookType(r), gh.DeliveryID(r)
	if !token(event, 64) || !token(delivery, 100) {
		refuse(http.StatusBadRequest, "bad_request", "missing or malformed X-GitHub-Event or X-GitHub-Delivery")
		return
	}
	if !json.Valid(payload) {
		refuse(http.StatusBadRequest, "bad_request", "payload is not JSON")
		return
	}
	if event == "ping" {
		i.metrics.deliveries.WithLabelValues("ping").Inc()
		writeJSON(w, http.StatusOK, map[string]string{"status": "pong"})
		return
	}
	var head struct {
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	_ = json.Unmarshal(payload, &head)
	if !i.cfg.allowed(head.Repository.FullName) || (event != "pull_request" && event != "issue_comment") {
		i.metrics.deliveries.WithLabelValues("ignored").Inc()
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "why": "not a pull_request or issue_comment of a configured repository"})
		return
	}
	msg := nats.NewMsg(subjWebhook)
	msg.Data = payload
	msg.Header.Set("X-GitHub-Event", event)
	msg.Header.Set(jetstream.MsgIDHeader, "delivery-"+delivery)
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	ack, err := i.js.PublishMsg(ctx, msg)
	if err != nil {
		i.log.Warn("queue a delivery", "delivery", delivery, "err", err)
		w.Header().Set("Retry-After", "10")
		refuse(http.StatusServiceUnavailable, "unavailable", "cannot queue the delivery now; GitHub may redeliver it")
		return
	}
	if ack.Duplicate {
		i.metrics.deliveries.WithLabelValues("duplicate").Inc()
		writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate", "why": "this delivery was already received"})
		return
	}
	i.metrics.deliveries.WithLabelValues("queued").Inc()
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued"})
}

// token: a header value of printable ASCII without spaces, bounded.
func token(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Notify queues a refresh of a pull request environment's comment and
// status; other environments are not GitHub's. It never waits on GitHub.
func (i *Integration) Notify(ev envmgr.Event, done func(error)) {
	var err error
	if ev.PRNumber > 0 {
		err = i.nc.Publish(subjSync, []byte(ev.Env))
	}
	if done != nil {
		done(err)
	}
}

// Run works the queue until ctx ends: one message at a time across every
// replica (MaxAckPending 1), so that two replicas never race on one PR's
// comment. A failure GitHub or the store may recover from is tried again
// after the wait its rate limits ask for (or a backoff); a final one is
// logged and counted.
func (i *Integration) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		msg, err := i.cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
				i.log.Warn("github work queue", "err", err)
				clock.Sleep(i.clock, time.Second, ctx.Done())
			}
			continue
		}
		i.process(ctx, msg)
	}
	return nil
}

func (i *Integration) process(ctx context.Context, msg jetstream.Msg) {
	attempt := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	wctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	err := i.handle(wctx, msg)
	cancel()
	switch {
	case err == nil:
		_ = msg.Ack()
		i.metrics.work.WithLabelValues("done").Inc()
	case ctx.Err() != nil:
		_ = msg.Nak() // shutting down: another replica (or the next start) takes it
	default:
		d := retryAfter(err, int(attempt), i.clock.Now())
		if errors.Is(err, envmgr.ErrUnavailable) {
			d = max(d, 5*time.Second)
		}
		if d > 0 && attempt < 50 {
			_ = msg.NakWithDelay(d)
			i.metrics.work.WithLabelValues("retried").Inc()
			i.log.Warn("github work failed; trying again later", "subject", msg.Subject(), "attempt", attempt, "in", d, "err", err)
			return
		}
		_ = msg.Term()
		i.metrics.work.WithLabelValues("failed").Inc()
		i.log.Error("github work failed for good", "subject", msg.Subject(), "attempt", attempt, "err", err)
	}
}

func (i *Integration) handle(ctx context.Context, msg jetstream.Msg) error {
	if msg.Subject() == subjSync {
		name := string(msg.Data())
		if len(name) > 128 {
			return nil
		}
		return i.sync(ctx, name)
	}
	event := msg.Headers().Get("X-GitHub-Event")
	parsed, err := gh.ParseWebHook(event, msg.Data())
	if err != nil {
		i.log.Warn("unparseable delivery; dropped", "event", event, "err", err)
		return nil
	}
	switch ev := parsed.(type) {
	case *gh.PullRequestEvent:
		return i.onPullRequest(ctx, ev)
	case *gh.IssueCommentEvent:
		return i.onComment(ctx, ev)
	}
	return nil
}

// actor is the integration acting for a person on GitHub.
func actor(login string) envmgr.Actor {
	name := "github"
	if login != "" {
		name = "github:" + login
	}
	return envmgr.Actor{Name: name, Integration: true, Via: "github"}
}

var errNotFound = errors.New("not found")

// orNotFound maps GitHub's 404 to errNotFound.
func orNotFound(resp *gh.Response, err error) error {
	if err != nil && resp != nil && resp.StatusCode == http.StatusNotFound {
		return errNotFound
	}
	return err
}

func repoOf(r *gh.Repository) (owner, name, full string) {
	if r == nil {
		return "", "", ""
	}
	full = r.GetFullName()
	owner, name, _ = strings.Cut(full, "/")
	return owner, name, full
}
