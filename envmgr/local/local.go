// Package local provisions an environment's sandbox node as a process on
// this machine: `paddock node` with the environment's configuration, its own
// directory under the manager's state directory, and its log there. It is
// the default provisioner, needing no cloud account.
//
// Every operation is idempotent and survives a manager restart: a node's pid
// is recorded in its directory, and a restarted manager adopts a node that
// is still running instead of starting a second one.
package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/artifact"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/sandbox"
)

// Config configures the provisioner.
type Config struct {
	StateDir string // nodes live in StateDir/<env>/
	NATSURL  string // what nodes connect to
	// Command returns the command that runs a node with the given
	// configuration file; the default runs this executable's `node`
	// subcommand.
	Command func(configPath string) *exec.Cmd
	// ReadyTimeout is how long Provision and Start wait for the node to work
	// (its /readyz: every book live, the strategy running); default 30s. A
	// node that answers but is not ready by then is reported degraded with
	// its reasons, not ready. A node that does not answer at all fails.
	ReadyTimeout time.Duration
	// Wake, when set, makes waiting for a node a state rather than a
	// blocked call: Provision and Start return envmgr.ErrWaiting while the
	// node has not decided (ready, degraded at the deadline, or dead), and a
	// watcher calls Wake(name) once it has. Nil: they wait themselves.
	Wake   func(name string)
	Logger *slog.Logger
	// Issuer, when set (an operator-mode NATS), mints each node's NATS
	// credentials, and Destroy revokes every user the environment had.
	Issuer Issuer
	// SourceDir is the repository checkout that strategy paths in
	// .dev-env.yaml are relative to. A strategy path naming a directory of Go
	// code is built with `go build` into the node's directory; one naming an
	// executable runs as is. Empty: nodes run without their strategy (tests
	// of provisioning mechanics only).
	SourceDir string
	// Fees, USDRates and FeedStaleSeconds pass through to every node's
	// configuration (see sandbox.Config).
	Fees             map[string]sandbox.FeeConfig
	USDRates         map[string]string
	FeedStaleSeconds int
	// DeadlineGrace is how long a node outlives its environment's deadline
	// when no extension arrives (the dead man's switch; default 15m).
	DeadlineGrace time.Duration
	// SourceFor, when set, names the source checkout of one environment (a
	// pull request's environment is built from its commit's tree); "" uses
	// SourceDir.
	SourceFor func(ctx context.Context, e envmgr.Environment) (string, error)
	// Audit, when set, records each strategy build's artifact digest, so
	// that PR -> commit -> artifact -> node is one traceable chain.
	Audit func(ctx context.Context, r envmgr.AuditRecord)
}

// Issuer mints and revokes the NATS users of environments
// (*natsauth.Issuer is paddock's policy).
type Issuer interface {
	Issue(env string, s *spec.Spec, expires time.Time) (creds []byte, userPub, inbox string, err error)
	Revoke(ctx context.Context, userPub string) error
	// Revoked reports whether a user was revoked (the orphan sweeper asks).
	Revoked(userPub string) (bool, error)
}

// Provisioner implements envmgr.Provisioner with every capability. Safe for concurrent use;
// operations on one environment are serialized.
type Provisioner struct {
	cfg   Config
	log   *slog.Logger
	mu    sync.Mutex
	locks envmgr.EnvLocks
	procs map[string]*proc // nodes this process started
	// adopted are nodes a previous manager started that this one took over;
	// StopAll stops them as well as its own.
	adopted map[string]bool
	// waits are nodes started (or adopted) whose readiness the reconciler
	// is waiting for (with Config.Wake); watchers wake it up when decided.
	waits    map[string]*readyWait
	watchers sync.WaitGroup
}

// readyWait is one node's readiness deadline.
type readyWait struct {
	deadline, answerBy time.Time
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exits
}

var _ envmgr.Provisioner = (*Provisioner)(nil)

// New creates a local provisioner.
func New(c Config) (*Provisioner, error) {
	if c.StateDir == "" || c.NATSURL == "" {
		return nil, errors.New("local provisioner: StateDir and NATSURL are required")
	}
	if c.Command == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		c.Command = func(cfg string) *exec.Cmd { return exec.Command(exe, "node", "-config", cfg) }
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	// Every path the provisioner hands on is absolute: a node, a build and a
	// strategy each run in another directory, where a relative path means
	// something else (the first wave built the example strategy into the
	// strategy's own source folder this way).
	var err error
	if c.StateDir, err = filepath.Abs(c.StateDir); err != nil {
		return nil, err
	}
	if c.SourceDir != "" {
		if c.SourceDir, err = filepath.Abs(c.SourceDir); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return nil, err
	}
	return &Provisioner{cfg: c, log: c.Logger.With("component", "provisioner", "backend", "local"),
		procs: map[string]*proc{}, adopted: map[string]bool{}, waits: map[string]*readyWait{}}, nil
}

func (p *Provisioner) lock(name string) func() { return p.locks.Lock(name) }

func (p *Provisioner) dir(name string) string        { return filepath.Join(p.cfg.StateDir, name) }
func (p *Provisioner) configPath(name string) string { return filepath.Join(p.dir(name), "node.json") }
func (p *Provisioner) pidPath(name string) string    { return filepath.Join(p.dir(name), "node.pid") }
func (p *Provisioner) endpointPath(name string) string {
	return filepath.Join(p.dir(name), "endpoint")
}
func (p *Provisioner) credsPath(name string) string { return filepath.Join(p.dir(name), "node.creds") }

// deadlinePath holds the environment's deadline (RFC 3339), which the node
// re-reads: an extension reaches a node that runs without NATS credentials
// too.
func (p *Provisioner) deadlinePath(name string) string { return filepath.Join(p.dir(name), "deadline") }

func (p *Provisioner) writeDeadline(e envmgr.Environment) error {
	path := p.deadlinePath(e.Name)
	if err := os.WriteFile(path+".tmp", []byte(e.ExpiresAt.UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write deadline: %w", err)
	}
	return os.Rename(path+".tmp", path)
}

// APIKeyPath is the file holding the environment's API key for its node's
// admin API; AdminKeyPath the admin key (needed to resume a halt).
func (p *Provisioner) APIKeyPath(name string) string { return p.apiKeyPath(name) }

// AdminKeyPath: see APIKeyPath.
func (p *Provisioner) AdminKeyPath(name string) string { return p.adminKeyPath(name) }

func (p *Provisioner) apiKeyPath(name string) string { return filepath.Join(p.dir(name), "api-key") }
func (p *Provisioner) adminKeyPath(name string) string {
	return filepath.Join(p.dir(name), "admin-key")
}

// ensureKey writes a random key unless the file exists: keys survive a
// re-provision, so a developer's key keeps working.
func ensureKey(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600)
}

// strategy resolves the declared strategy against SourceDir: a directory
// of Go code is built into the node's directory, an executable runs as is.
func (p *Provisioner) strategy(ctx context.Context, e envmgr.Environment, s *spec.Spec, dir string) (*sandbox.StrategyConfig, error) {
	name := e.Name
	src := p.source()
	src.Dir = dir
	bin, err := src.Strategy(ctx, s.Strategy.Binary, filepath.Join(p.dir(name), "strategy"), artifact.Target{})
	if err != nil {
		return nil, err
	}
	if p.cfg.Audit != nil {
		sum, err := artifact.SHA256(bin)
		if err != nil {
			return nil, err
		}
		from := "the source directory"
		if e.CommitSHA != "" {
			from = "commit " + e.CommitSHA
			if e.Repo != "" {
				from = e.Repo + "@" + e.CommitSHA
			}
		}
		p.cfg.Audit(ctx, envmgr.AuditRecord{Env: name, At: time.Now().UTC(), Actor: "provisioner", Action: "artifact", CommitSHA: e.CommitSHA,
			Detail: fmt.Sprintf("strategy %s built from %s: sha256 %s", s.Strategy.Binary, from, sum)})
	}
	c := &sandbox.StrategyConfig{Command: []string{bin}, Dir: p.dir(name)}
	if s.Strategy.Config != "" {
		cfg, err := src.Resolve(s.Strategy.Config)
		if err != nil {
			return nil, fmt.Errorf("config %w", err)
		}
		c.Config = cfg
	}
	return c, nil
}

func (p *Provisioner) source() artifact.Source {
	return artifact.Source{Dir: p.cfg.SourceDir, StateDir: p.cfg.StateDir}
}

func (p *Provisioner) usersPath(name string) string { return filepath.Join(p.dir(name), "nats-users") }

// mint writes fresh credentials for the node and records the user, so that
// Destroy can revoke every user the environment ever had.
func (p *Provisioner) mint(e envmgr.Environment, s *spec.Spec) (string, error) {
	creds, pub, inbox, err := p.cfg.Issuer.Issue(e.Name, s, e.ExpiresAt)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(p.usersPath(e.Name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	_, err = fmt.Fprintln(f, pub)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	// nats.go reads the file at every (re)connect, so a running node picks
	// up extended credentials when its old JWT expires and it reconnects.
	if err := os.WriteFile(p.credsPath(e.Name)+".tmp", creds, 0o600); err != nil {
		return "", err
	}
	return inbox, os.Rename(p.credsPath(e.Name)+".tmp", p.credsPath(e.Name))
}

// CredsRef is the node's credentials file, when the provisioner issues them.
func (p *Provisioner) CredsRef(name string) string {
	if p.cfg.Issuer == nil {
		return ""
	}
	return p.credsPath(name)
}

// Refresh re-mints a node's credentials after its environment was extended.
func (p *Provisioner) Refresh(_ context.Context, e envmgr.Environment, s *spec.Spec) error {
	defer p.lock(e.Name)()
	if _, err := os.Stat(p.configPath(e.Name)); err != nil {
		return nil // not provisioned here
	}
	if err := p.writeDeadline(e); err != nil {
		return err
	}
	if p.cfg.Issuer == nil {
		return nil
	}
	_, err := p.mint(e, s)
	return err
}

// Provision writes the node's configuration and starts it (or adopts the one
// already running).
func (p *Provisioner) Provision(ctx context.Context, e envmgr.Environment, s *spec.Spec) (string, error) {
	defer p.lock(e.Name)()
	if w := p.waitOf(e.Name); w != nil {
		return p.check(ctx, e.Name, w) // started already: only its readiness is pending
	}
	if err := os.MkdirAll(p.dir(e.Name), 0o700); err != nil {
		return "", fmt.Errorf("provision %s: %w", e.Name, err)
	}
	c := sandbox.FromSpec(e.Name, s, sandbox.Placement{NATSURL: p.cfg.NATSURL, AdminListen: "127.0.0.1:0", EndpointFile: p.endpointPath(e.Name),
		APIKeyFile: p.apiKeyPath(e.Name), AdminKeyFile: p.adminKeyPath(e.Name),
		Fees: p.cfg.Fees, USDRates: p.cfg.USDRates, FeedStaleSeconds: p.cfg.FeedStaleSeconds,
		Deadline: e.ExpiresAt, DeadlineFile: p.deadlinePath(e.Name), DeadlineGrace: p.cfg.DeadlineGrace})
	if err := p.writeDeadline(e); err != nil {
		return "", fmt.Errorf("provision %s: %w", e.Name, err)
	}
	for _, f := range []string{c.APIKeyFile, c.AdminKeyFile} {
		if err := ensureKey(f); err != nil {
			return "", fmt.Errorf("provision %s: %w", e.Name, err)
		}
	}
	srcDir := p.cfg.SourceDir
	if p.cfg.SourceFor != nil {
		dir, err := p.cfg.SourceFor(ctx, e)
		if err != nil {
			return "", fmt.Errorf("provision %s: source of %s at %s: %w", e.Name, e.Repo, e.CommitSHA, err)
		}
		if dir != "" {
			srcDir = dir
		}
	}
	if srcDir != "" {
		st, err := p.strategy(ctx, e, s, srcDir)
		if err != nil {
			return "", fmt.Errorf("provision %s: strategy: %w", e.Name, err)
		}
		c.Strategy = st
	}
	if p.cfg.Issuer != nil {
		inbox, err := p.mint(e, s)
		if err != nil {
			return "", fmt.Errorf("provision %s: credentials: %w", e.Name, err)
		}
		c.NATSCreds, c.InboxPrefix = p.credsPath(e.Name), inbox
	}
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(p.configPath(e.Name), raw, 0o600); err != nil {
		return "", fmt.Errorf("provision %s: %w", e.Name, err)
	}
	return p.ensureRunning(ctx, e.Name)
}

// Start starts a provisioned node again, or adopts it if it is running.
func (p *Provisioner) Start(ctx context.Context, name string) (string, error) {
	defer p.lock(name)()
	if w := p.waitOf(name); w != nil {
		return p.check(ctx, name, w)
	}
	if _, err := os.Stat(p.configPath(name)); err != nil {
		return "", fmt.Errorf("start %s: not provisioned: %w", name, err)
	}
	return p.ensureRunning(ctx, name)
}

// Stop stops the node, keeping its directory.
func (p *Provisioner) Stop(ctx context.Context, name string) error {
	defer p.lock(name)()
	p.endWait(name)
	return p.stop(ctx, name)
}

// Destroy stops the node and removes its directory.
func (p *Provisioner) Destroy(ctx context.Context, name string) error {
	defer p.lock(name)()
	p.endWait(name)
	if err := p.stop(ctx, name); err != nil {
		return err
	}
	if p.cfg.Issuer != nil {
		if raw, err := os.ReadFile(p.usersPath(name)); err == nil {
			for _, pub := range strings.Fields(string(raw)) {
				if err := p.cfg.Issuer.Revoke(ctx, pub); err != nil {
					return fmt.Errorf("destroy %s: revoke NATS user: %w", name, err)
				}
			}
		}
	}
	if err := os.RemoveAll(p.dir(name)); err != nil {
		return fmt.Errorf("destroy %s: %w", name, err)
	}
	return nil
}

// Status reports whether the node is running, where, and its own account of
// whether it works (its /readyz).
func (p *Provisioner) Status(ctx context.Context, name string) (envmgr.NodeStatus, error) {
	defer p.lock(name)()
	pid := p.livePID(name)
	if pid == 0 {
		return envmgr.NodeStatus{}, nil
	}
	ep, _ := os.ReadFile(p.endpointPath(name))
	st := envmgr.NodeStatus{Running: true, Endpoint: string(ep)}
	if len(ep) > 0 {
		st.Health, _ = readiness(ctx, string(ep))
	}
	return st, nil
}

var probe = &http.Client{Timeout: 2 * time.Second}

// answerTimeout is the least time a new node has to answer its /healthz.
const answerTimeout = 10 * time.Second

// readiness asks a node's /readyz.
func readiness(ctx context.Context, endpoint string) (*envmgr.Health, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/readyz", nil)
	if err != nil {
		return nil, err
	}
	resp, err := probe.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var h envmgr.Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h); err != nil {
		return nil, fmt.Errorf("node readiness: %w", err)
	}
	return &h, nil
}

// StopAll stops every node this process started or adopted, for a clean
// shutdown of `make run`. Their environments stay ready; a restarted manager
// starts them again.
func (p *Provisioner) StopAll(ctx context.Context) (stopped []string) {
	p.mu.Lock()
	var names []string
	for n := range p.procs {
		names = append(names, n)
	}
	for n := range p.adopted {
		if p.procs[n] == nil {
			names = append(names, n)
		}
	}
	p.mu.Unlock()
	for _, n := range names {
		if err := p.Stop(ctx, n); err != nil {
			p.log.Warn("stop node", "env", n, "err", err)
			continue
		}
		stopped = append(stopped, n)
	}
	p.watchers.Wait() // their nodes are stopped: each has decided
	return stopped
}

// livePID returns the pid of the environment's running node, or 0. The pid
// file alone is not trusted: the process must exist and be running this
// environment's configuration, so a recycled pid is never mistaken for it.
func (p *Provisioner) livePID(name string) int {
	raw, err := os.ReadFile(p.pidPath(name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0
	}
	p.mu.Lock()
	pr := p.procs[name]
	p.mu.Unlock()
	if pr != nil {
		select {
		case <-pr.done:
			return 0
		default:
			return pid
		}
	}
	if syscall.Kill(pid, 0) != nil {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(p.configPath(name))) {
		return 0
	}
	return pid
}

func (p *Provisioner) ensureRunning(ctx context.Context, name string) (string, error) {
	if pid := p.livePID(name); pid != 0 {
		p.log.Info("node already running; adopting it", "env", name, "pid", pid)
		p.mu.Lock()
		if p.procs[name] == nil {
			p.adopted[name] = true
		}
		p.mu.Unlock()
		return p.awaitReady(ctx, name)
	}
	_ = os.Remove(p.endpointPath(name))
	logf, err := os.OpenFile(filepath.Join(p.dir(name), "node.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	cmd := p.cfg.Command(p.configPath(name))
	cmd.Env = nodeEnv(cmd.Env)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C meant for the manager does not reach
	// the node directly; the manager stops it (or, after a crash, adopts it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", fmt.Errorf("start node %s: %w", name, err)
	}
	pr := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logf.Close()
		close(pr.done)
		p.log.Info("node exited", "env", name, "pid", cmd.Process.Pid, "err", err)
	}()
	p.mu.Lock()
	p.procs[name] = pr
	p.mu.Unlock()
	if err := os.WriteFile(p.pidPath(name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return "", err
	}
	p.log.Info("node started", "env", name, "pid", cmd.Process.Pid)
	return p.awaitReady(ctx, name)
}

// nodeEnv is the node's environment: artifact.MinimalEnv plus the PADDOCK_ settings
// the node command itself chose (a test's stand-in node sets some).
func nodeEnv(cmdEnv []string) []string {
	env := artifact.MinimalEnv()
	for _, kv := range cmdEnv {
		if strings.HasPrefix(kv, "PADDOCK_") {
			env = append(env, kv)
		}
	}
	return env
}

// awaitReady waits for a node just started or adopted: itself (waitReady)
// without Config.Wake; with it, it records the wait, starts a watcher that
// wakes the reconciler once the node has decided, and answers at once.
func (p *Provisioner) awaitReady(ctx context.Context, name string) (string, error) {
	w := p.newWait()
	if p.cfg.Wake == nil {
		return p.waitReady(ctx, name, w)
	}
	p.mu.Lock()
	p.waits[name] = w
	p.mu.Unlock()
	p.watchers.Go(func() {
		_, _ = p.waitReady(context.Background(), name, w)
		p.cfg.Wake(name)
	})
	return p.check(ctx, name, w)
}

func (p *Provisioner) newWait() *readyWait {
	// A node has at least answerTimeout to answer, whatever ReadyTimeout.
	now := time.Now()
	return &readyWait{deadline: now.Add(p.cfg.ReadyTimeout), answerBy: now.Add(max(p.cfg.ReadyTimeout, answerTimeout))}
}

func (p *Provisioner) waitOf(name string) *readyWait {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waits[name]
}

func (p *Provisioner) endWait(name string) {
	p.mu.Lock()
	delete(p.waits, name)
	p.mu.Unlock()
}

// check looks at a waiting node once: its endpoint when it decided, or
// envmgr.ErrWaiting.
func (p *Provisioner) check(ctx context.Context, name string, w *readyWait) (string, error) {
	endpoint, done, err := p.evaluate(ctx, name, w)
	if !done {
		return "", fmt.Errorf("%w: node %s is starting (its books joining, its strategy coming up; up to %v)", envmgr.ErrWaiting, name, p.cfg.ReadyTimeout)
	}
	p.endWait(name)
	return endpoint, err
}

// waitReady polls evaluate until the node has decided.
func (p *Provisioner) waitReady(ctx context.Context, name string, w *readyWait) (string, error) {
	for {
		if endpoint, done, err := p.evaluate(ctx, name, w); done {
			return endpoint, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// evaluate looks once at a starting node: it has decided when it works
// (/readyz), has died, answers but still does not work at the deadline
// (returned: the reconciler records it degraded with the reasons), or never
// answered by answerBy.
func (p *Provisioner) evaluate(ctx context.Context, name string, w *readyWait) (endpoint string, done bool, err error) {
	if ep, err := os.ReadFile(p.endpointPath(name)); err == nil && len(ep) > 0 {
		if resp, err := probe.Get(string(ep) + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				endpoint = string(ep)
			}
		}
	}
	if endpoint != "" {
		if h, err := readiness(ctx, endpoint); err == nil && h.Ready {
			return endpoint, true, nil
		}
	}
	if p.livePID(name) == 0 {
		return "", true, fmt.Errorf("node %s exited before it was ready (see %s)", name, filepath.Join(p.dir(name), "node.log"))
	}
	now := time.Now()
	if endpoint != "" && now.After(w.deadline) {
		return endpoint, true, nil // up, not working: degraded
	}
	if now.After(w.answerBy) {
		return "", true, fmt.Errorf("node %s did not answer within %v (see %s)", name, max(p.cfg.ReadyTimeout, answerTimeout), filepath.Join(p.dir(name), "node.log"))
	}
	return "", false, nil
}

func (p *Provisioner) stop(ctx context.Context, name string) error {
	pid := p.livePID(name)
	if pid == 0 {
		_ = os.Remove(p.pidPath(name))
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for p.livePID(name) != 0 {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	// A process stops matching (its cmdline empties) while it is still
	// exiting; return only once it has really gone, so "stopped" means it.
	for running(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("stop %s: process %d did not exit", name, pid)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	p.mu.Lock()
	delete(p.procs, name)
	delete(p.adopted, name)
	p.mu.Unlock()
	_ = os.Remove(p.pidPath(name))
	_ = os.Remove(p.endpointPath(name))
	return nil
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name: "pid (comm) S ...".
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}
