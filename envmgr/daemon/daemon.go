// Package daemon wires the environment manager together: the NATS
// connection and JetStream store, the provisioner, the reconciler and the
// HTTP API. `paddock envmgr` and `paddock dev` run it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/internal/buildinfo"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/api"
	"github.com/paddockhq/paddock/envmgr/aws"
	"github.com/paddockhq/paddock/envmgr/catalog"
	"github.com/paddockhq/paddock/envmgr/github"
	"github.com/paddockhq/paddock/envmgr/local"
	"github.com/paddockhq/paddock/envmgr/natskv"
	"github.com/paddockhq/paddock/envmgr/slack"
	"github.com/paddockhq/paddock/envmgr/sweep"
	"github.com/paddockhq/paddock/internal/natsconn"
	"github.com/paddockhq/paddock/natsauth"
	"github.com/paddockhq/paddock/record"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures the manager.
type Config struct {
	NATSURL        string
	NATSCreds      string
	Listen         string // API address, default 127.0.0.1:8090
	StateDir       string // local provisioner's node directories live under StateDir/envs
	Tokens         *api.Tokens
	ReconcileEvery time.Duration                     // expiry checks and supervision; default 10s
	NodeCommand    func(configPath string) *exec.Cmd // for tests; default `paddock node`
	Replicas       int                               // JetStream replicas of the store
	// AuthDir, when set, is the NATS authority's directory (see
	// natsauth): the manager connects as its user and gives every
	// node credentials scoped to its environment, revoked on destroy.
	AuthDir string
	// SourceDir is the repository checkout that strategy paths are relative
	// to (see local.Config.SourceDir); empty runs nodes without strategies.
	SourceDir string
	// Strategy and paper-venue settings passed to every node.
	USDRates         map[string]string
	FeedStaleSeconds int
	// AWS, when set, provisions environments on AWS through the Terraform
	// module instead of as local processes.
	AWS *aws.Config
	// Workers is how many environments the reconciler works on at once
	// (default 4).
	Workers int
	// NoFeedCheck skips asking the feed, at create time, whether it carries
	// every declared instrument: for tests of provisioning mechanics that
	// run no feed. Production leaves it false.
	NoFeedCheck bool
	// NodeReadyTimeout is how long the local provisioner waits for a new
	// node to work (every book live, the strategy running) before it
	// records the environment degraded; default 30s.
	NodeReadyTimeout time.Duration
	// Audit retention (see natskv.Options); zero is unlimited.
	AuditMaxAge    time.Duration
	AuditMaxBytes  int64
	AuditMaxPerEnv int64
	// Lifecycle: expiry warnings, notifications, the slash command, the
	// nodes' dead man's switch and the orphan sweeper.
	Lifecycle Lifecycle
	// GitHub, when set, runs the pull-request integration: its webhook at
	// /v1/github/webhook, one comment and a commit status per PR.
	GitHub *github.Config
	// GitHubTransport carries the integration's API calls (tests: to a
	// stand-in); nil is the default transport.
	GitHubTransport http.RoundTripper
}

// Lifecycle configures the humane and reliable end of environments.
type Lifecycle struct {
	// WarnBefore are the warning offsets (default 4h, 1h); DestroyRetryMin
	// and Max bound a failed destroy's backoff (default 30s to 30m).
	WarnBefore                       []time.Duration
	DestroyRetryMin, DestroyRetryMax time.Duration
	// NodeGrace is how long a node outlives its deadline with no extension
	// before it shuts itself down (default 15m).
	NodeGrace time.Duration
	// Notify, when set, sends lifecycle notifications to Slack-compatible
	// webhooks and, with a signing secret, serves the slash command.
	Notify *slack.Config
	// OrphanGrace: orphans younger than this are not deleted (default
	// 24h); OrphanEvery is the scheduled cleanup's period (default a week,
	// negative: on demand only).
	OrphanGrace, OrphanEvery time.Duration
}

// Started is reported once the API listens.
type Started struct {
	APIURL string
}

// Run runs the manager until ctx is cancelled.
func Run(ctx context.Context, c Config, log *slog.Logger, onStart func(Started)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8090"
	}
	if c.ReconcileEvery <= 0 {
		c.ReconcileEvery = 10 * time.Second
	}
	if c.Tokens == nil {
		return errors.New("envmgr: no API tokens configured")
	}
	var auth *natsauth.Authority
	if c.AuthDir != "" {
		var err error
		if auth, err = natsauth.LoadOrCreate(c.AuthDir); err != nil {
			return fmt.Errorf("NATS authority: %w", err)
		}
		if c.NATSCreds == "" {
			c.NATSCreds = filepath.Join(c.AuthDir, natsauth.ManagerCredsFile)
		}
	}
	// The manager's replies arrive on its own inbox prefix, which no other
	// user may subscribe to (natsauth.ManagerUser): JetStream's answers carry
	// every environment's record.
	opts := []nats.Option{nats.Name("paddock-envmgr"), nats.CustomInboxPrefix(natsauth.ManagerInbox)}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	nc, drain, err := natsconn.Connect(c.NATSURL, opts...)
	if err != nil {
		return err
	}
	defer func() {
		if err := drain(); err != nil {
			log.Warn("NATS drain", "component", "envmgr", "err", err)
		}
	}()
	store, err := natskv.Open(ctx, nc, natskv.Options{Replicas: c.Replicas,
		AuditMaxAge: c.AuditMaxAge, AuditMaxBytes: c.AuditMaxBytes, AuditMaxPerEnv: c.AuditMaxPerEnv,
		Redial: func() (*nats.Conn, error) {
			log.Warn("the NATS server closed the manager's connection; connecting again", "component", "envmgr")
			return nats.Connect(c.NATSURL, append(opts, nats.MaxReconnects(-1))...)
		}})
	if err != nil {
		return err
	}
	defer store.Close()
	hub := envmgr.NewProgressHub()
	var wake atomic.Pointer[envmgr.Reconciler] // for a provisioner's wake-ups
	wakeUp := func(name string) {              // the reconciler exists by the time a node decides
		if r := wake.Load(); r != nil {
			r.Enqueue(name)
		}
	}
	// The pull-request integration's commit trees, for the local
	// provisioner (bound once the integration exists, below).
	var integ atomic.Pointer[github.Integration]
	sourceFor := func(ctx context.Context, e envmgr.Environment) (string, error) {
		if g := integ.Load(); g != nil {
			return g.Sources.For(ctx, e)
		}
		return "", nil
	}
	pv, err := newProvisioner(ctx, c, nc, store, auth, hub, wakeUp, sourceFor, log)
	if err != nil {
		return err
	}
	prov, srcs := pv.prov, pv.srcs
	defer pv.close()

	mgr := envmgr.NewManager(store, nil, log)
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// Replays are checked against what is recorded (record.Coverage).
	mgr.SetRecordings(recordings{js})
	if !c.NoFeedCheck {
		cat, err := catalog.New(nc, 0)
		if err != nil {
			return err
		}
		defer cat.Close()
		mgr.SetCatalog(cat)
	}
	rec := envmgr.NewReconciler(store, prov, nil, log)
	wake.Store(rec)
	if c.Workers > 0 {
		rec.Workers = c.Workers
	}
	rec.Lifecycle = envmgr.Lifecycle{WarnBefore: c.Lifecycle.WarnBefore, RetryMin: c.Lifecycle.DestroyRetryMin, RetryMax: c.Lifecycle.DestroyRetryMax}
	reg := newRegistry(rec, store)
	var slackCmd http.Handler
	var notifiers envmgr.Notifiers
	var bg sync.WaitGroup // the notifiers, the GitHub worker and the sweeper
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stopBG(); bg.Wait() }()
	if n := c.Lifecycle.Notify; n != nil {
		notifier, err := slack.New(*n, slack.Options{Log: log, Metrics: slack.NewMetrics(reg)})
		if err != nil {
			return err
		}
		notifiers = append(notifiers, notifier)
		cmd, err := slack.NewCommand(*n, mgr, store, nil, log)
		switch {
		case errors.Is(err, slack.ErrNoSecret):
		case err != nil:
			return err
		default:
			notifier.ExtendHint = true
			refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_envmgr_slack_refused_total",
				Help: "Slash-command requests refused, by reason (bad_signature, stale, replayed, unknown_user)."}, []string{"reason"})
			reg.MustRegister(refused)
			cmd.Refused = func(reason string) { refused.WithLabelValues(reason).Inc() }
			slackCmd = cmd
		}
		// The notifier outlives the reconciler (stopped after it, by the
		// deferred stopBG), so that the last transitions' notices are sent.
		bg.Go(func() { _ = notifier.Run(bgCtx) })
	}
	var hook http.Handler
	if c.GitHub != nil {
		g, err := github.New(ctx, *c.GitHub, nc, mgr, store, c.Replicas, github.Options{Log: log, Metrics: github.NewMetrics(reg),
			Transport: c.GitHubTransport, SourceDir: filepath.Join(c.StateDir, "github", "src")})
		if err != nil {
			return err
		}
		if pv.keyPath != nil {
			g.NodeInfo = func(e envmgr.Environment) string {
				return "in `" + pv.keyPath(e.Name) + "` on the manager's host (`paddock env show " + e.Name + "`)"
			}
		}
		integ.Store(g)
		if g.Webhook() {
			hook = g
		}
		notifiers = append(notifiers, g)
		bg.Go(func() { _ = g.Run(bgCtx) })
	}
	if len(notifiers) > 0 {
		rec.Notify = notifiers
		mgr.SetNotifier(notifiers)
	}
	warnings := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_envmgr_warnings_total",
		Help: "Expiry warnings by result: claimed (recorded, to be sent), sent (delivered), failed (given up; claimed again after the lease)."}, []string{"result"})
	reg.MustRegister(warnings)
	rec.OnWarning = func(result string) { warnings.WithLabelValues(result).Inc() }
	sw := sweep.New(sweep.Config{Store: store, Sources: srcs, Grace: c.Lifecycle.OrphanGrace, Every: c.Lifecycle.OrphanEvery,
		Log: log, Metrics: sweep.NewMetrics(reg)})
	bg.Go(func() { _ = sw.Run(bgCtx) })
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("API listener %s: %w", c.Listen, err)
	}
	apiSrv := api.New(mgr, store, c.Tokens, api.ConnectInfo{NATSURL: c.NATSURL}, log, api.Options{
		Metrics: api.NewMetrics(reg), Health: store, MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}),
		Orphans: sw, SlackCommand: slackCmd, GitHubWebhook: hook})
	apiSrv.SetProgress(hub)
	srv := &http.Server{Handler: apiSrv, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 64 << 10}
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()

	recCtx, stopRec := context.WithCancel(ctx)
	recDone := make(chan error, 1)
	tick := time.NewTicker(c.ReconcileEvery)
	defer tick.Stop()
	go func() { recDone <- rec.Run(recCtx, tick.C) }()

	apiURL := "http://" + ln.Addr().String()
	log.Info("environment manager running", "component", "envmgr", "api", apiURL)
	if onStart != nil {
		onStart(Started{APIURL: apiURL})
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-recDone:
	}
	stopRec()
	if runErr == nil {
		runErr = <-recDone
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(runErr, err)
	}
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	return runErr
}

// byState collects paddock_envmgr_environments{state} from the store at
// each scrape (a list of every environment: milliseconds for a thousand).
type byState struct{ store envmgr.Store }

var byStateDesc = prometheus.NewDesc("paddock_envmgr_environments", "Environments by state (destroyed ones included).", []string{"state"}, nil)

func (c *byState) Describe(ch chan<- *prometheus.Desc) { ch <- byStateDesc }

func (c *byState) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	all, err := c.store.List(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(byStateDesc, err)
		return
	}
	n := map[envmgr.State]int{}
	for _, e := range all {
		n[e.State]++
	}
	for _, s := range envmgr.States {
		ch <- prometheus.MustNewConstMetric(byStateDesc, prometheus.GaugeValue, float64(n[s]), string(s))
	}
}

// recordings answers envmgr.Recordings from the JetStream recording.
type recordings struct{ js jetstream.JetStream }

func (r recordings) Check(ctx context.Context, venue, symbol string, start, end time.Time) error {
	return record.Check(ctx, r.js, venue, symbol, start, end)
}

// provisioned is the configured provisioner with what the rest of the
// manager needs of it.
type provisioned struct {
	prov  envmgr.Provisioner
	srcs  []sweep.Source // what the orphan sweeper inventories
	close func()         // stops what must stop at shutdown
	// keyPath says where a local node's API key file is (nil elsewhere).
	keyPath func(name string) string
}

// newProvisioner builds the configured provisioner: AWS when c.AWS is set,
// else local processes. Both get paddock's NATS-credential policy
// (natsauth.Issuer) when NATS runs in operator mode. srcs are what the
// orphan sweeper inventories. closeProv stops what it must at shutdown (a
// local manager's nodes, recorded stopped).
func newProvisioner(ctx context.Context, c Config, nc *nats.Conn, store *natskv.Store, auth *natsauth.Authority, hub *envmgr.ProgressHub,
	wake func(string), sourceFor func(context.Context, envmgr.Environment) (string, error), log *slog.Logger) (_ provisioned, err error) {
	var issuer *natsauth.Issuer
	closers := []func(){}
	closeProv := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if auth != nil {
		sys, err := nats.Connect(c.NATSURL, nats.Name("paddock-envmgr-sys"), nats.UserCredentials(filepath.Join(c.AuthDir, natsauth.SystemCredsFile)))
		if err != nil {
			return provisioned{}, fmt.Errorf("connect as the system user: %w", err)
		}
		closers = append(closers, sys.Close)
		issuer = natsauth.NewIssuer(auth, sys)
	}
	if c.AWS != nil {
		ac := *c.AWS
		ac.Terraform.Logger, ac.Wake = log, wake
		if ac.DeadlineGrace == 0 {
			ac.DeadlineGrace = c.Lifecycle.NodeGrace
		}
		ac.SourceFor = sourceFor
		ac.USDRates, ac.FeedStaleSeconds = c.USDRates, c.FeedStaleSeconds
		if ac.SourceDir == "" {
			ac.SourceDir = c.SourceDir
		}
		if ac.StateDir == "" {
			ac.StateDir = c.StateDir
		}
		ac.Terraform.Audit = func(ctx context.Context, r envmgr.AuditRecord) {
			if err := store.AppendAudit(ctx, r); err != nil {
				log.Error("audit write failed", "env", r.Env, "err", err)
			}
		}
		if ac.Terraform.StateDir == "" {
			ac.Terraform.StateDir = filepath.Join(c.StateDir, "terraform")
		}
		if issuer != nil {
			ac.Issuer = issuer
		}
		ap, err := aws.New(ctx, ac, nc, hub)
		if err != nil {
			closeProv()
			return provisioned{}, err
		}
		closers = append(closers, ap.Close)
		return provisioned{prov: ap, srcs: []sweep.Source{ap, ap.Terraform()}, close: closeProv}, nil
	}
	lc := local.Config{StateDir: filepath.Join(c.StateDir, "envs"), NATSURL: c.NATSURL, Command: c.NodeCommand, Logger: log,
		SourceDir: c.SourceDir, USDRates: c.USDRates, FeedStaleSeconds: c.FeedStaleSeconds, ReadyTimeout: c.NodeReadyTimeout, Wake: wake,
		DeadlineGrace: c.Lifecycle.NodeGrace, SourceFor: sourceFor, Audit: func(ctx context.Context, r envmgr.AuditRecord) {
			if err := store.AppendAudit(ctx, r); err != nil {
				log.Error("audit write failed", "env", r.Env, "err", err)
			}
		}}
	if issuer != nil {
		lc.Issuer = issuer
	}
	lp, err := local.New(lc)
	if err != nil {
		closeProv()
		return provisioned{}, err
	}
	// Nodes are stopped when the manager stops, so nothing is left behind;
	// their environments are recorded stopped (desired running), and a
	// restarted manager starts them again.
	closers = append(closers, func() {
		stopped := lp.StopAll(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := envmgr.StopNodes(ctx, store, stopped, time.Now().UTC()); err != nil {
			log.Warn("record stopped nodes", "component", "envmgr", "err", err)
		}
	})
	return provisioned{prov: lp, srcs: []sweep.Source{lp}, close: closeProv, keyPath: lp.APIKeyPath}, nil
}

// newRegistry is the manager's /metrics: build info, the Go runtime, the
// reconciler's errors and operation durations, environments by state.
func newRegistry(rec *envmgr.Reconciler, store envmgr.Store) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	buildinfo.Register(reg)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "paddock_envmgr_reconcile_errors_total",
		Help: "Reconcile steps and passes that failed."}, func() float64 { return float64(rec.Errors()) }))
	ops := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paddock_envmgr_operation_seconds",
		Help: "Provisioner operations (provision, start, stop, destroy) by result.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)},
		[]string{"op", "result"})
	reg.MustRegister(ops, &byState{store: store})
	rec.OnOperation = func(op string, took time.Duration, err error) {
		result := "ok"
		if err != nil {
			result = "error"
		}
		ops.WithLabelValues(op, result).Observe(took.Seconds())
	}
	return reg
}
