// Package aws provisions environments on AWS: each a node from the
// dev-trading-env Terraform module (envmgr/terraform runs it), its
// sandbox-only secrets in Secrets Manager (envmgr/awssecrets), its strategy
// as a content-addressed S3 artifact (artifacts.go), readiness from the
// node's first heartbeat on env.<name>.node (a wait the reconciler revisits,
// not a blocked worker), supervision from the heartbeats and, when they
// stop, from EC2 by the module's tags (envmgr/awsec2), and credential
// re-issue on extension. It implements envmgr.Provisioner; envmgr/daemon
// wires it in when the manager is given an AWS configuration.
package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/artifact"
	"github.com/paddockhq/paddock/envmgr/awsec2"
	"github.com/paddockhq/paddock/envmgr/awssecrets"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/envmgr/terraform"
	"github.com/paddockhq/paddock/natsauth"
	"github.com/paddockhq/paddock/sandbox"
	"github.com/paddockhq/paddock/sandbox/client"
)

// Config configures the Terraform/AWS provisioner: each environment a c6i
// node from modules/dev-trading-env, its secrets in Secrets Manager.
type Config struct {
	Terraform     terraform.Config // Binary, ModuleDir, PluginMirror, Backend, InterruptGrace
	Region        string
	Endpoint      string // an AWS API endpoint override (an emulator)
	VPCID         string
	SubnetID      string
	VPNCIDR       string
	AMI           string
	InstanceType  string // default c6i.2xlarge (the module's)
	PaddockURL    string // the node binary's artifact
	PaddockSHA256 string
	// SourceFor, when set, names one environment's source checkout (a pull
	// request's commit tree); "" uses SourceDir.
	SourceFor func(ctx context.Context, e envmgr.Environment) (string, error)
	// SourceDir is the checkout strategy paths are relative to, StateDir
	// the manager's (which a strategy path must not reach into).
	SourceDir, StateDir string
	// ArtifactBucket holds strategies at strategies/<sha256>; the node's
	// role may read that prefix only. Required: every spec has a strategy.
	ArtifactBucket string
	// StrategyTarget is the platform strategies are built for (default
	// linux/amd64, the c6i node's).
	StrategyTarget artifact.Target
	NodeNATSURL    string // how nodes in the VPC reach NATS
	// USDRates and FeedStaleSeconds pass through to every node's
	// configuration, as the local provisioner's do (sandbox.Placement).
	USDRates         map[string]string
	FeedStaleSeconds int
	RecoveryDays     int // Secrets Manager recovery window on destroy (0 = at once)
	ExtraTags        map[string]string
	// NodeBeatTimeout is how long a running node may go without a heartbeat
	// before its environment is reported degraded; default 30s (six beats).
	NodeBeatTimeout time.Duration
	// NodeReadyTimeout bounds the wait for a new or started node's first
	// heartbeat on env.<name>.node (the node reporting ready); default 10
	// minutes (boot, install, books joined), negative does not wait. The
	// wait holds no reconcile worker (envmgr.ErrWaiting).
	NodeReadyTimeout time.Duration
	// DeadlineGrace is how long a node outlives its environment's deadline
	// with no extension before it powers its instance off (default 15m).
	DeadlineGrace time.Duration
	// Wake asks the reconciler for a pass over an environment: a node it
	// waits for has reported, or the wait expired. Nil: the reconciler's
	// tick revisits waiting environments.
	Wake func(name string)
	// Issuer, when set (an operator-mode NATS), mints each node's NATS
	// credentials (stored in Secrets Manager for the node to fetch) and
	// revokes every user the environment had on destroy.
	Issuer Issuer
}

// defaultTarget is a c6i node's platform.
var defaultTarget = artifact.Target{GOOS: "linux", GOARCH: "amd64"}

// Issuer mints and revokes the NATS users of environments
// (*natsauth.Issuer is paddock's policy).
type Issuer interface {
	Issue(env string, s *spec.Spec, expires time.Time) (creds []byte, userPub, inbox string, err error)
	Revoke(ctx context.Context, userPub string) error
	// Revoked reports whether a user was revoked (the orphan sweeper asks).
	Revoked(userPub string) (bool, error)
}

// ErrNodeNotReady is returned when a provisioned node does not report ready
// in time.
var ErrNodeNotReady = errors.New("aws: node did not report ready")

// Provisioner composes the secrets layer, the Terraform driver and the
// wait for the node's first heartbeat. Safe for concurrent use: the driver
// serializes operations per environment.
type Provisioner struct {
	beatsSub *nats.Subscription
	beatsMu  sync.Mutex
	beats    map[string]beat // the last heartbeat of each environment's node

	cfg     Config
	tf      *terraform.Provisioner
	secrets *awssecrets.Store
	s3      *s3.Client
	ec2     awsec2.API
	// startedAt is when this manager started listening for heartbeats.
	startedAt time.Time
	nc        *nats.Conn
	hub       *envmgr.ProgressHub

	waitMu  sync.Mutex
	waiting map[string]*wait // applied, the node not reported yet

	artMu     sync.Mutex
	artifacts map[string]*strategyArtifact // by environment, between upload and apply
}

func New(ctx context.Context, c Config, nc *nats.Conn, hub *envmgr.ProgressHub) (*Provisioner, error) {
	if c.SourceDir == "" || c.ArtifactBucket == "" {
		return nil, errors.New("aws: a source directory (strategies are built from it) and an artifact bucket (nodes download them from it) are required")
	}
	if c.StrategyTarget == (artifact.Target{}) {
		c.StrategyTarget = defaultTarget
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(c.Region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	store, err := awssecrets.New(awssecrets.NewClient(awsCfg, c.Endpoint), c.RecoveryDays, c.Terraform.Logger)
	if err != nil {
		return nil, err
	}
	if c.NodeReadyTimeout == 0 {
		c.NodeReadyTimeout = 10 * time.Minute
	}
	if c.NodeBeatTimeout <= 0 {
		c.NodeBeatTimeout = 30 * time.Second
	}
	p := &Provisioner{cfg: c, secrets: store, nc: nc, hub: hub, beats: map[string]beat{}, artifacts: map[string]*strategyArtifact{}, waiting: map[string]*wait{},
		s3: newS3(awsCfg, c.Endpoint), ec2: awsec2.NewClient(awsCfg, c.Endpoint), startedAt: time.Now()}
	// Supervision: every node's heartbeat, remembered for Status.
	if p.beatsSub, err = nc.Subscribe(client.StatusSubject("*"), p.onBeat); err != nil {
		return nil, fmt.Errorf("subscribe to node heartbeats: %w", err)
	}
	tc := c.Terraform
	tc.Vars = p.vars
	tc.OnProgress = hub.Publish
	if c.Endpoint != "" {
		if tc.Env == nil {
			tc.Env = map[string]string{}
		}
		tc.Env["AWS_ENDPOINT_URL"] = c.Endpoint
	}
	if p.tf, err = terraform.New(tc); err != nil {
		return nil, err
	}
	return p, nil
}

// moduleVars builds the module's variables. Only references to secrets go
// in; the node fetches values at boot with its instance role.
func moduleVars(c Config, e envmgr.Environment, s *spec.Spec, art *strategyArtifact) (map[string]any, error) {
	if art == nil {
		return nil, fmt.Errorf("environment %s has no strategy artifact", e.Name)
	}
	// The inbox prefix is the one the node's scoped credentials allow; the
	// strategy paths are the ones the user data installs to.
	st := &sandbox.StrategyConfig{Command: []string{NodeStrategyPath}, Dir: "/var/lib/paddock"}
	if art.configSHA != "" {
		st.Config = NodeStrategyConfigPath
	}
	nc := sandbox.FromSpec(e.Name, s, sandbox.Placement{NATSURL: c.NodeNATSURL, NATSCreds: "/etc/paddock/node.creds", AdminListen: ":8080",
		InboxPrefix: natsauth.InboxPrefix(e.Name), APIKeyFile: "/etc/paddock/api-key", AdminKeyFile: "/etc/paddock/admin-key",
		USDRates: c.USDRates, FeedStaleSeconds: c.FeedStaleSeconds, Strategy: st,
		// No deadline in the user data (it would replace the instance on an
		// extension): the node reads it from its NATS credentials' expiry,
		// which Refresh re-issues.
		DeadlineGrace: c.DeadlineGrace})
	raw, err := json.Marshal(nc)
	if err != nil {
		return nil, err
	}
	created := e.CreatedAt
	if created.IsZero() {
		return nil, fmt.Errorf("environment %s has no creation time", e.Name)
	}
	v := map[string]any{
		"env_name": e.Name, "pr_number": e.PRNumber, "owner": e.Owner, "ttl_hours": e.TTLHours,
		"created_at": created.UTC().Format(time.RFC3339), "ami_id": c.AMI, "vpc_id": c.VPCID, "subnet_id": c.SubnetID,
		"vpn_cidr": c.VPNCIDR, "paddock_url": c.PaddockURL, "paddock_sha256": c.PaddockSHA256,
		"node_config_json": string(raw), "nats_creds_secret": awssecrets.NATSCredsName(e.Name),
		"extra_tags": c.ExtraTags, "artifact_bucket": c.ArtifactBucket, "strategy_sha256": art.sha,
		"strategy_config_sha256": art.configSHA,
	}
	if c.InstanceType != "" {
		v["instance_type"] = c.InstanceType
	}
	if c.ExtraTags == nil {
		v["extra_tags"] = map[string]string{}
	}
	return v, nil
}

func (p *Provisioner) vars(e envmgr.Environment, s *spec.Spec) (map[string]any, error) {
	p.artMu.Lock()
	art := p.artifacts[e.Name]
	p.artMu.Unlock()
	return moduleVars(p.cfg, e, s, art)
}

// Provision stores the environment's secrets, applies the module and waits
// for the node to report ready.
func (p *Provisioner) Provision(ctx context.Context, e envmgr.Environment, s *spec.Spec) (string, error) {
	if p.isWaiting(e.Name) {
		return p.whenReady(e.Name, nil) // applied already: only the node's report is missing
	}
	var venues []string
	for _, ex := range s.Exchanges {
		venues = append(venues, ex.Venue)
	}
	if _, err := p.secrets.Provision(ctx, e.Name, venues); err != nil {
		return "", fmt.Errorf("provision %s: secrets: %w", e.Name, err)
	}
	if p.cfg.Issuer != nil {
		creds, _, _, err := p.cfg.Issuer.Issue(e.Name, s, e.ExpiresAt)
		if err != nil {
			return "", fmt.Errorf("provision %s: NATS credentials: %w", e.Name, err)
		}
		if err := p.secrets.Put(ctx, e.Name, awssecrets.NATSCredsName(e.Name), string(creds)); err != nil {
			return "", err
		}
	}
	srcDir, from := p.cfg.SourceDir, "the source directory"
	if p.cfg.SourceFor != nil {
		dir, err := p.cfg.SourceFor(ctx, e)
		if err != nil {
			return "", fmt.Errorf("provision %s: source of %s at %s: %w", e.Name, e.Repo, e.CommitSHA, err)
		}
		if dir != "" {
			srcDir, from = dir, e.Repo+"@"+e.CommitSHA
		}
	}
	art, err := p.uploadStrategyFrom(ctx, e.Name, s, srcDir)
	if err != nil {
		return "", fmt.Errorf("provision %s: strategy: %w", e.Name, err)
	}
	if p.cfg.Terraform.Audit != nil {
		p.cfg.Terraform.Audit(ctx, envmgr.AuditRecord{Env: e.Name, At: time.Now().UTC(), Actor: "provisioner", Action: "artifact", CommitSHA: e.CommitSHA,
			Detail: fmt.Sprintf("strategy %s built from %s: sha256 %s (%s)", s.Strategy.Binary, from, art.sha, ArtifactURI(p.cfg.ArtifactBucket, art.sha))})
	}
	p.progress(e.Name, fmt.Sprintf("strategy %s stored as s3://%s/%s", s.Strategy.Binary, p.cfg.ArtifactBucket, artifactKey(art.sha)), 0)
	p.artMu.Lock()
	p.artifacts[e.Name] = art
	p.artMu.Unlock()
	defer func() {
		p.artMu.Lock()
		delete(p.artifacts, e.Name)
		p.artMu.Unlock()
	}()
	return p.whenReady(e.Name, func() (string, error) { return p.tf.Provision(ctx, e, s) })
}

// whenReady runs op (an apply that leaves the node running) once, then
// reports envmgr.ErrWaiting until the node's first running heartbeat since
// the apply began: waiting is a state the reconciler revisits, not a worker
// blocked for minutes. A heartbeat (or the deadline) wakes the environment
// up through Config.Wake. Past NodeReadyTimeout it fails with
// ErrNodeNotReady.
func (p *Provisioner) whenReady(name string, op func() (string, error)) (string, error) {
	if p.cfg.NodeReadyTimeout < 0 {
		return op()
	}
	p.waitMu.Lock()
	w := p.waiting[name]
	p.waitMu.Unlock()
	if w == nil {
		since := time.Now()
		endpoint, err := op()
		if err != nil {
			return "", err
		}
		w = &wait{since: since, endpoint: endpoint}
		w.deadline = time.AfterFunc(p.cfg.NodeReadyTimeout, func() { p.wake(name) })
		p.waitMu.Lock()
		p.waiting[name] = w
		p.waitMu.Unlock()
		p.progress(name, "waiting for the node to report ready on "+client.StatusSubject(name), 0)
	}
	if b, ok := p.lastBeat(name); ok && b.st.State == client.NodeRunning && !b.at.Before(w.since) {
		p.endWait(name)
		p.progress(name, fmt.Sprintf("node ready: %d/%d books live", b.st.BooksLive, b.st.Books), time.Since(w.since))
		return w.endpoint, nil
	}
	if waited := time.Since(w.since); waited >= p.cfg.NodeReadyTimeout {
		p.endWait(name)
		return "", fmt.Errorf("%w: %s within %v", ErrNodeNotReady, name, p.cfg.NodeReadyTimeout)
	}
	return "", fmt.Errorf("%w: %s has not reported on %s yet (waiting up to %v)", envmgr.ErrWaiting, name, client.StatusSubject(name), p.cfg.NodeReadyTimeout)
}

// wait is an applied environment whose node has not reported yet.
type wait struct {
	since    time.Time
	endpoint string
	deadline *time.Timer // wakes the environment up when the wait expires
}

func (p *Provisioner) isWaiting(name string) bool {
	p.waitMu.Lock()
	defer p.waitMu.Unlock()
	return p.waiting[name] != nil
}

// endWait forgets a wait (reported, expired, or the environment moved on).
func (p *Provisioner) endWait(name string) {
	p.waitMu.Lock()
	w := p.waiting[name]
	delete(p.waiting, name)
	p.waitMu.Unlock()
	if w != nil {
		w.deadline.Stop()
	}
}

func (p *Provisioner) wake(name string) {
	if p.cfg.Wake != nil {
		p.cfg.Wake(name)
	}
}

func (p *Provisioner) lastBeat(name string) (beat, bool) {
	p.beatsMu.Lock()
	defer p.beatsMu.Unlock()
	b, ok := p.beats[name]
	return b, ok
}

func (p *Provisioner) progress(name, msg string, elapsed time.Duration) {
	if p.hub != nil {
		p.hub.Publish(envmgr.ProgressEvent{Env: name, Op: "ready", Type: "node", Message: msg, ElapsedMS: elapsed.Milliseconds(), Time: time.Now().UTC()})
	}
}

func (p *Provisioner) Stop(ctx context.Context, name string) error {
	p.endWait(name)
	return p.tf.Stop(ctx, name)
}

var _ envmgr.Provisioner = (*Provisioner)(nil)

type beat struct {
	st client.NodeStatus
	at time.Time
}

func (p *Provisioner) onBeat(m *nats.Msg) {
	var st client.NodeStatus
	if json.Unmarshal(m.Data, &st) != nil || client.StatusSubject(st.Env) != m.Subject {
		return // not a node's heartbeat, or one about another environment
	}
	p.beatsMu.Lock()
	p.beats[st.Env] = beat{st: st, at: time.Now()}
	p.beatsMu.Unlock()
	p.waitMu.Lock()
	_, waiting := p.waiting[st.Env]
	p.waitMu.Unlock()
	if waiting {
		p.wake(st.Env)
	}
}

// Close ends the heartbeat subscription.
func (p *Provisioner) Close() { _ = p.beatsSub.Unsubscribe() }

// Status is what the node's last heartbeat said: its health (books live,
// strategy, halt). A node that said it was stopping is not running, and the
// reconciler starts it again. When the beats stopped for NodeBeatTimeout
// (or none came since this manager started), EC2 is asked, by the tags the
// module sets: an instance that is gone (terminated) or stopped is not
// running, so the reconciler re-applies the environment; one that runs but
// is silent is degraded with that reason (a lost network is no reason to
// re-create it).
func (p *Provisioner) Status(ctx context.Context, name string) (envmgr.NodeStatus, error) {
	b, ok := p.lastBeat(name)
	if ok && b.st.State != client.NodeRunning {
		return envmgr.NodeStatus{}, nil
	}
	var silent time.Duration
	if ok {
		silent = time.Since(b.at)
	} else {
		silent = time.Since(p.startedAt)
	}
	if silent <= p.cfg.NodeBeatTimeout {
		if !ok {
			return envmgr.NodeStatus{Running: true}, nil // no news yet
		}
		return envmgr.NodeStatus{Running: true, Health: healthOf(b.st)}, nil
	}
	silence := fmt.Sprintf("no heartbeat from the node for %v", silent.Round(time.Second))
	if !ok {
		silence = fmt.Sprintf("no heartbeat from the node since the manager started %v ago", silent.Round(time.Second))
	}
	health := &envmgr.Health{}
	if ok {
		health = healthOf(b.st)
	}
	health.Ready = false
	found, err := awsec2.Find(ctx, p.ec2, name)
	switch {
	case err != nil:
		health.Reasons = append([]string{silence, "EC2 could not be asked: " + err.Error()}, health.Reasons...)
		return envmgr.NodeStatus{Running: true, Health: health}, nil
	case len(found) == 0:
		return envmgr.NodeStatus{}, nil // terminated (or never created): apply again
	}
	for _, in := range found {
		if in.State == "running" || in.State == "pending" {
			health.Reasons = append([]string{fmt.Sprintf("%s; instance %s is %s", silence, in.ID, in.State)}, health.Reasons...)
			return envmgr.NodeStatus{Running: true, Health: health}, nil
		}
	}
	return envmgr.NodeStatus{}, nil // stopped or stopping behind the manager's back: start it again
}

// healthOf is the manager's view of a heartbeat's health.
func healthOf(st client.NodeStatus) *envmgr.Health {
	if st.Health == nil {
		return &envmgr.Health{Ready: false, Reasons: []string{"the node reports no health (an older node)"}, BooksLive: st.BooksLive, Books: st.Books, Halted: st.Halted}
	}
	h := st.Health
	out := &envmgr.Health{Ready: h.Ready, Reasons: append([]string(nil), h.Reasons...), BooksLive: h.BooksLive, Books: h.Books,
		Halted: h.Halted, HaltReason: h.HaltReason}
	if h.Strategy != nil {
		out.Strategy = &envmgr.StrategyHealth{Running: h.Strategy.Running, Restarts: h.Strategy.Restarts, LastExit: h.Strategy.LastExit}
	}
	return out
}

// Refresh re-issues the node's NATS credentials for the environment's new
// deadline (an extension) and stores them in the node's secret, where the
// instance's timer fetches them every 5 minutes; the node notices the new
// file and reconnects with it (its heartbeat then reports the new expiry).
// Without an operator-mode NATS there is nothing to re-issue.
func (p *Provisioner) Refresh(ctx context.Context, e envmgr.Environment, s *spec.Spec) error {
	if p.cfg.Issuer == nil {
		return nil
	}
	// The user being replaced is recorded first: the node keeps using it
	// until it loads the new one, and destroy must revoke it too.
	old, err := p.storedUser(ctx, e.Name)
	if err != nil {
		return fmt.Errorf("refresh %s: %w", e.Name, err)
	}
	if old != "" {
		users, err := p.retiredUsers(ctx, e.Name)
		if err != nil {
			return fmt.Errorf("refresh %s: %w", e.Name, err)
		}
		if !slices.Contains(users, old) {
			if err := p.secrets.Put(ctx, e.Name, awssecrets.NATSUsersName(e.Name), strings.Join(append(users, old), "\n")); err != nil {
				return fmt.Errorf("refresh %s: %w", e.Name, err)
			}
		}
	}
	creds, _, _, err := p.cfg.Issuer.Issue(e.Name, s, e.ExpiresAt)
	if err != nil {
		return fmt.Errorf("refresh %s: NATS credentials: %w", e.Name, err)
	}
	if err := p.secrets.Put(ctx, e.Name, awssecrets.NATSCredsName(e.Name), string(creds)); err != nil {
		return fmt.Errorf("refresh %s: %w", e.Name, err)
	}
	return nil
}

// CredsRef is the secret holding the node's NATS credentials.
func (p *Provisioner) CredsRef(name string) string { return awssecrets.NATSCredsName(name) }

// Start starts the instance again and waits for the node's heartbeat.
func (p *Provisioner) Start(ctx context.Context, name string) (string, error) {
	return p.whenReady(name, func() (string, error) { return p.tf.Start(ctx, name) })
}

// Destroy destroys the resources first, then revokes the node's NATS
// credentials and deletes the secrets they were read from.
func (p *Provisioner) Destroy(ctx context.Context, name string) error {
	p.endWait(name)
	if err := p.tf.Destroy(ctx, name); err != nil {
		return err
	}
	if p.cfg.Issuer != nil {
		if err := p.revoke(ctx, name); err != nil {
			return fmt.Errorf("destroy %s: revoke NATS credentials: %w", name, err)
		}
	}
	return p.secrets.Destroy(ctx, name)
}

// revoke revokes every NATS user the environment had: the one in its stored
// credentials and those extensions replaced. Secrets already deleted (a
// destroy retried) are not an error.
func (p *Provisioner) revoke(ctx context.Context, name string) error {
	cur, err := p.storedUser(ctx, name)
	if err != nil {
		return err
	}
	users, err := p.retiredUsers(ctx, name)
	if err != nil {
		return err
	}
	if cur != "" {
		users = append(users, cur)
	}
	for _, u := range users {
		if err := p.cfg.Issuer.Revoke(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// storedUser is the public key of the user in the environment's stored
// NATS credentials ("" when there are none).
func (p *Provisioner) storedUser(ctx context.Context, name string) (string, error) {
	creds, err := p.getSecret(ctx, name, awssecrets.NATSCredsName(name))
	if err != nil || creds == "" {
		return "", err
	}
	token, err := jwt.ParseDecoratedJWT([]byte(creds))
	if err != nil {
		return "", err
	}
	uc, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return "", err
	}
	return uc.Subject, nil
}

// retiredUsers lists the users extensions replaced.
func (p *Provisioner) retiredUsers(ctx context.Context, name string) ([]string, error) {
	v, err := p.getSecret(ctx, name, awssecrets.NATSUsersName(name))
	if err != nil || v == "" {
		return nil, err
	}
	return strings.Fields(v), nil
}

// getSecret is a secret's value, "" when it does not exist (or is already
// scheduled for deletion).
func (p *Provisioner) getSecret(ctx context.Context, env, name string) (string, error) {
	v, err := p.secrets.Get(ctx, env, name)
	var missing *smtypes.ResourceNotFoundException
	var scheduled *smtypes.InvalidRequestException // already marked for deletion
	if errors.As(err, &missing) || errors.As(err, &scheduled) {
		return "", nil
	}
	return v, err
}
