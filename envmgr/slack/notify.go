// Package slack is the environment manager's chat integration: lifecycle
// notifications through Slack-compatible incoming webhooks (Block Kit
// messages, routed per owner) and the `/paddock` slash command, whose
// requests are verified with Slack's v0 signature. The wire format is
// slack-go's.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
	_ "time/tzdata" // owners' zones resolve on hosts without a zone database

	slackgo "github.com/slack-go/slack"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/prometheus/client_golang/prometheus"
)

// Route is where an owner's notifications go.
type Route struct {
	Webhook string `yaml:"webhook" json:"webhook"`
	Channel string `yaml:"channel" json:"channel,omitempty"` // overrides the webhook's own channel when the workspace allows it
}

// Owner is what the manager knows of a person: where to notify them, their
// Slack user (the slash command maps it to them), and their time zone
// (warnings give deadlines in it too).
type Owner struct {
	Route     `yaml:",inline"`
	SlackUser string `yaml:"slack_user" json:"slack_user,omitempty"`
	TimeZone  string `yaml:"time_zone" json:"time_zone,omitempty"` // IANA, such as Europe/London
}

// Config configures notifications and the slash command.
type Config struct {
	// Default receives the notifications of owners without a route of their
	// own. Empty: those are not sent (and counted as unrouted).
	Default Route `yaml:"default"`
	// Owners maps an owner (an API token's name) to their route, Slack user
	// and zone.
	Owners map[string]Owner `yaml:"owners"`
	// SigningSecretFile holds the Slack app's signing secret; without it
	// the slash command endpoint is off.
	SigningSecretFile string `yaml:"signing_secret_file"`
	// GiveUpAfter bounds the retries of one message (default 8m; it must be
	// below the lifecycle's warning lease).
	GiveUpAfter time.Duration `yaml:"give_up_after"`
}

// Check refuses a configuration that would be accepted and then not work:
// a webhook that is not an https URL (http only to a loopback address, for
// tests and local relays), an unknown zone, one Slack user for two owners.
func (c *Config) Check() error {
	var errs []error
	if c.Default.Webhook != "" {
		if err := checkWebhook(c.Default.Webhook); err != nil {
			errs = append(errs, fmt.Errorf("default.webhook: %w", err))
		}
	}
	users := map[string]string{}
	for name, o := range c.Owners {
		if o.Webhook != "" {
			if err := checkWebhook(o.Webhook); err != nil {
				errs = append(errs, fmt.Errorf("owners.%s.webhook: %w", name, err))
			}
		}
		if o.TimeZone != "" {
			if _, err := time.LoadLocation(o.TimeZone); err != nil {
				errs = append(errs, fmt.Errorf("owners.%s.time_zone %q: not an IANA zone such as Europe/London", name, o.TimeZone))
			}
		}
		if o.SlackUser != "" {
			if prev, dup := users[o.SlackUser]; dup {
				errs = append(errs, fmt.Errorf("owners.%s.slack_user %s is also %s's", name, o.SlackUser, prev))
			}
			users[o.SlackUser] = name
		}
	}
	if c.GiveUpAfter < 0 {
		errs = append(errs, errors.New("give_up_after must not be negative"))
	}
	return errors.Join(errs...)
}

func checkWebhook(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q is not a webhook URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
	}
	return fmt.Errorf("%s: want https (http only to a loopback address)", u.Redacted())
}

// Metrics counts deliveries.
type Metrics struct {
	sent, failed *prometheus.CounterVec
	retries      prometheus.Counter
	queued       prometheus.Gauge
}

// NewMetrics registers the notification metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_envmgr_notifications_sent_total",
			Help: "Notifications a receiver accepted, by event kind."}, []string{"kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_envmgr_notifications_failed_total",
			Help: "Notifications given up on, by reason: retries (the receiver kept failing), refused (a 4xx), queue_full, unrouted, shutdown."}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_envmgr_notification_retries_total",
			Help: "Delivery attempts that failed and were retried."}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_envmgr_notifications_queued",
			Help: "Notifications waiting for delivery."}),
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.failed, m.retries, m.queued)
	}
	return m
}

// Notifier delivers envmgr events to webhooks. Notify never blocks; Run
// delivers, each message retried with backoff until GiveUpAfter. Create with
// New; safe for concurrent use; Run once.
type Notifier struct {
	cfg     Config
	clock   clock.Clock
	http    *http.Client
	log     *slog.Logger
	metrics *Metrics
	zones   map[string]*time.Location
	q       chan item
	workers int

	// ExtendHint is added to warnings: how to extend from chat, when the
	// slash command is on.
	ExtendHint bool
}

type item struct {
	ev     envmgr.Event
	done   func(error)
	queued time.Time
}

var _ envmgr.Notifier = (*Notifier)(nil)

// Options are the notifier's collaborators; zero values take defaults.
type Options struct {
	Clock   clock.Clock // default clock.Real
	HTTP    *http.Client
	Log     *slog.Logger
	Metrics *Metrics
	Queue   int // default 10,000
	Workers int // default 8
}

// New builds a notifier; cfg must pass Check.
func New(cfg Config, o Options) (*Notifier, error) {
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	if cfg.GiveUpAfter == 0 {
		cfg.GiveUpAfter = 8 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = clock.Real
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Queue <= 0 {
		o.Queue = 10_000
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	n := &Notifier{cfg: cfg, clock: o.Clock, http: o.HTTP, log: o.Log.With("component", "notify"), metrics: o.Metrics,
		zones: map[string]*time.Location{}, q: make(chan item, o.Queue), workers: o.Workers}
	for name, ow := range cfg.Owners {
		if ow.TimeZone != "" {
			n.zones[name], _ = time.LoadLocation(ow.TimeZone)
		}
	}
	return n, nil
}

// Notify queues ev. A full queue refuses it at once (counted; done hears
// the error), so that the lifecycle never waits on a receiver.
func (n *Notifier) Notify(ev envmgr.Event, done func(error)) {
	if ev.Kind == envmgr.EventChanged {
		if done != nil {
			done(nil) // not news for a person: the states in between are the PR comment's
		}
		return
	}
	select {
	case n.q <- item{ev: ev, done: done, queued: n.clock.Now()}:
		n.metrics.queued.Inc()
	default:
		n.metrics.failed.WithLabelValues("queue_full").Inc()
		n.log.Warn("notification queue full; dropped", "env", ev.Env, "kind", ev.Kind)
		if done != nil {
			done(errors.New("notification queue full"))
		}
	}
}

// Run delivers until ctx ends; what is still queued then is given up on
// (done hears why: a warning is then claimed again by the next manager).
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range n.workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case it := <-n.q:
					n.metrics.queued.Dec()
					n.deliver(ctx, it)
				}
			}
		})
	}
	wg.Wait()
	for {
		select {
		case it := <-n.q:
			n.metrics.queued.Dec()
			n.metrics.failed.WithLabelValues("shutdown").Inc()
			if it.done != nil {
				it.done(errors.New("the manager shut down before delivery"))
			}
		default:
			return nil
		}
	}
}

// deliver posts one message, retrying failures (network errors, 5xx, 429)
// with capped exponential backoff until GiveUpAfter has passed since it was
// queued; a 4xx other than 429 is the receiver's final answer.
func (n *Notifier) deliver(ctx context.Context, it item) {
	finish := func(err error) {
		if it.done != nil {
			it.done(err)
		}
	}
	route, ok := n.route(it.ev.Owner)
	if !ok {
		n.metrics.failed.WithLabelValues("unrouted").Inc()
		finish(fmt.Errorf("no webhook for owner %s and no default", it.ev.Owner))
		return
	}
	msg := n.Message(it.ev)
	msg.Channel = route.Channel
	wait := time.Second
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := slackgo.PostWebhookCustomHTTPContext(actx, route.Webhook, n.http, msg)
		cancel()
		if err == nil {
			n.metrics.sent.WithLabelValues(string(it.ev.Kind)).Inc()
			finish(nil)
			return
		}
		var sc slackgo.StatusCodeError
		if errors.As(err, &sc) && sc.Code >= 400 && sc.Code < 500 && sc.Code != http.StatusTooManyRequests {
			n.metrics.failed.WithLabelValues("refused").Inc()
			n.log.Warn("webhook refused a notification", "env", it.ev.Env, "kind", it.ev.Kind, "status", sc.Code)
			finish(fmt.Errorf("webhook refused the message: %w", err))
			return
		}
		var rl *slackgo.RateLimitedError
		if errors.As(err, &rl) && rl.RetryAfter > wait {
			wait = rl.RetryAfter
		}
		if n.clock.Now().Add(wait).Sub(it.queued) > n.cfg.GiveUpAfter || ctx.Err() != nil {
			reason := "retries"
			if ctx.Err() != nil {
				reason = "shutdown"
			}
			n.metrics.failed.WithLabelValues(reason).Inc()
			n.log.Warn("notification given up", "env", it.ev.Env, "kind", it.ev.Kind, "attempts", attempt, "err", err)
			finish(fmt.Errorf("gave up after %d attempts: %w", attempt, err))
			return
		}
		n.metrics.retries.Inc()
		t := n.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C():
		}
		wait = min(2*wait, time.Minute)
	}
}

func (n *Notifier) route(owner string) (Route, bool) {
	if o, ok := n.cfg.Owners[owner]; ok && o.Webhook != "" {
		return o.Route, true
	}
	return n.cfg.Default, n.cfg.Default.Webhook != ""
}

// Message is the Block Kit message for an event: what happened, the exact
// deadline (UTC, and the owner's zone when known), why, and what to do next.
func (n *Notifier) Message(ev envmgr.Event) *slackgo.WebhookMessage {
	title, body, next := n.describe(ev)
	blocks := []slackgo.Block{
		slackgo.NewHeaderBlock(slackgo.NewTextBlockObject(slackgo.PlainTextType, title, false, false)),
		slackgo.NewSectionBlock(slackgo.NewTextBlockObject(slackgo.MarkdownType, body, false, false), nil, nil),
	}
	if next != "" {
		blocks = append(blocks, slackgo.NewContextBlock("", slackgo.NewTextBlockObject(slackgo.MarkdownType, "*Next:* "+next, false, false)))
	}
	return &slackgo.WebhookMessage{Text: title, Blocks: &slackgo.Blocks{BlockSet: blocks}}
}

// Deadline formats t in UTC and, when the owner's zone is known, in it.
func (n *Notifier) Deadline(owner string, t time.Time) string {
	s := t.UTC().Format("Mon 2006-01-02 15:04 UTC")
	if loc := n.zones[owner]; loc != nil {
		s += " (" + t.In(loc).Format("Mon 15:04 MST") + " " + loc.String() + ")"
	}
	return s
}

func (n *Notifier) describe(ev envmgr.Event) (title, body, next string) {
	env := "`" + ev.Env + "`"
	deadline := n.Deadline(ev.Owner, ev.Deadline)
	extend := "`" + envmgr.ExtendCommand(ev.Env) + "`"
	if n.ExtendHint {
		extend += " or `/paddock extend " + ev.Env + "`"
	}
	by := ""
	if ev.Actor != "" {
		by = " by " + ev.Actor
		if ev.Via != "" {
			by += " via " + ev.Via
		}
	}
	switch ev.Kind {
	case envmgr.EventCreated:
		return "Environment " + ev.Env + " requested", fmt.Sprintf("%s was requested%s (%s). It expires *%s*.", env, by, ev.Why, deadline),
			"it is being provisioned; you will hear when it is ready (`paddock env show " + ev.Env + "`)."
	case envmgr.EventReady:
		return "Environment " + ev.Env + " is ready", fmt.Sprintf("%s is ready: every book is live and the strategy runs. It expires *%s*.", env, deadline),
			"watch it with `paddock env show " + ev.Env + "`; extend it with " + extend + "."
	case envmgr.EventStarted:
		return "Environment " + ev.Env + " started", fmt.Sprintf("%s runs again. It expires *%s*.", env, deadline), ""
	case envmgr.EventDegraded:
		return "Environment " + ev.Env + " is degraded", fmt.Sprintf("%s runs but does not work: %s.", env, ev.Why),
			"look at `paddock env show " + ev.Env + "` and the strategy's log; it returns to ready by itself once it works."
	case envmgr.EventWarning:
		left := ev.Before // the offset; the time actually left when sent late (a reclaimed warning)
		if !ev.At.IsZero() && ev.Deadline.After(ev.At) {
			left = ev.Deadline.Sub(ev.At)
		}
		return fmt.Sprintf("Environment %s expires in %s", ev.Env, human(left)),
			fmt.Sprintf("%s will be *destroyed at %s*, because %s.", env, deadline, ev.Why),
			"to keep it, extend it: " + extend + " (+24h; up to 96h in total without an admin's approval)."
	case envmgr.EventExtended:
		return "Environment " + ev.Env + " extended", fmt.Sprintf("%s was extended%s. New deadline: *%s*.", env, by, deadline), ""
	case envmgr.EventStopped:
		return "Environment " + ev.Env + " stopped", fmt.Sprintf("%s is stopped; its data is kept. It still expires *%s*.", env, deadline),
			"start it with `paddock env start " + ev.Env + "`."
	case envmgr.EventDestroyed:
		why := ev.Why
		if why == "" {
			why = "it was asked to be"
		}
		return "Environment " + ev.Env + " destroyed", fmt.Sprintf("%s was destroyed: its node, credentials and everything provisioned for it are gone. Why: %s.", env, why),
			"create it again with `paddock env up -f .dev-env.yaml`."
	case envmgr.EventFailed:
		body = fmt.Sprintf("%s failed while %s: %s", env, ev.Step, ev.Why)
		if ev.Step == envmgr.StateDestroying {
			return "Environment " + ev.Env + " could not be destroyed", body + fmt.Sprintf(". paddock tries again at %s.", ev.RetryAt.UTC().Format("15:04 UTC")),
				"nothing, unless it keeps failing: then ops should look at `paddock env show " + ev.Env + "`."
		}
		return "Environment " + ev.Env + " failed", body + ".", "see `paddock env show " + ev.Env + "`; destroy it (`paddock env down " + ev.Env + "`) and create it again."
	}
	return string(ev.Kind) + " " + ev.Env, env + ": " + string(ev.Kind), ""
}

// human prints 4h0m0s as 4h and 90m as 1h30m.
func human(d time.Duration) string {
	d = d.Round(time.Minute)
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}

// MetricsFailed is the failure counter for reason (for tests and the
// console).
func (n *Notifier) MetricsFailed(reason string) prometheus.Counter {
	return n.metrics.failed.WithLabelValues(reason)
}
