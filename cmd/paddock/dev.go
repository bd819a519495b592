package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/paddockhq/paddock/record"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/api"
	envdaemon "github.com/paddockhq/paddock/envmgr/daemon"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/natsauth"

	"github.com/paddockhq/paddock/feed/daemon"
	"github.com/paddockhq/paddock/feed/sim"
)

func init() {
	commands["dev"] = command{"run the whole system locally on embedded defaults (what `make run` runs)", runDev}
}

// Token files under the state directory: `make run` keeps them across runs,
// so a token exported earlier keeps working.
const (
	devTokenFile   = "dev-token"   // role developer: what the banner exports
	adminTokenFile = "admin-token" // role admin: approvals, other users' environments
)

// runDev runs the simulator and the feed (with its embedded NATS server) in
// one process, wired together, until interrupted.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "embedded NATS listen address")
	metrics := fs.String("metrics-listen", "127.0.0.1:9464", "feed metrics/health listen address")
	stateDir := fs.String("state-dir", ".state", "local state (NATS JetStream data, node directories, tokens)")
	apiListen := fs.String("api-listen", "127.0.0.1:8090", "environment manager API listen address")
	example := fs.String("example", "examples/.dev-env.yaml", "environment to create once everything runs (empty: none)")
	source := fs.String("source-dir", ".", "repository checkout that strategy paths in .dev-env.yaml are relative to")
	level := fs.String("log-level", "warn", "debug, info, warn or error")
	readyTimeout := fs.Duration("node-ready-timeout", 30*time.Second, "how long a new node may take to work (books live, strategy running) before its environment is degraded")
	var sf simFlags
	sf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("paddock dev takes no arguments, got %q", fs.Args())}
	}
	log, err := newLogger(*level, stderr)
	if err != nil {
		return err
	}
	defer takeTerminal()()
	if err := os.MkdirAll(*stateDir, 0o700); err != nil {
		return err
	}
	devToken, err := loadOrCreateToken(filepath.Join(*stateDir, devTokenFile))
	if err != nil {
		return err
	}
	adminToken, err := loadOrCreateToken(filepath.Join(*stateDir, adminTokenFile))
	if err != nil {
		return err
	}
	tokens, err := api.NewTokens([]api.Token{{Name: "dev", Role: "developer", SHA256: api.HashToken(devToken)},
		{Name: "admin", Role: "admin", SHA256: api.HashToken(adminToken)}})
	if err != nil {
		return err
	}
	s, err := sim.New("127.0.0.1:0", sf.config(log))
	if err != nil {
		return err
	}
	defer s.Close()
	simCtx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		s.Run(simCtx, sf.rate)
	}()
	defer func() { stopSim(); <-simDone }()

	cfg := &daemon.Config{
		NATS:          daemon.NATSConfig{Embedded: daemon.EmbeddedConfig{Listen: *natsListen, StoreDir: filepath.Join(*stateDir, "nats"), AuthDir: filepath.Join(*stateDir, "nats-auth")}},
		MetricsListen: *metrics,
		// Record the simulator, so that a replay environment has something to
		// replay (examples/replay.dev-env.yaml; `paddock record coverage`).
		Record: &record.Config{MaxAge: 7 * 24 * time.Hour, MaxBytes: 1 << 30},
	}
	if sf.spot != "" {
		cfg.Venues = append(cfg.Venues, daemon.VenueConfig{Name: "binance", WSURL: s.SpotWS(), RESTURL: s.SpotREST(), Instruments: lowerList(sf.spot)})
	}
	if sf.perp != "" {
		cfg.Venues = append(cfg.Venues, daemon.VenueConfig{Name: "binance-perp", WSURL: s.PerpWS(), RESTURL: s.PerpREST(), Instruments: lowerList(sf.perp)},
			daemon.VenueConfig{Name: "bybit-perp", WSURL: s.BybitLinearWS(), Instruments: lowerList(sf.perp)})
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// NATS, the feed and the manager are peers: NATS first, then the feed,
	// then the manager (whose example environment needs the feed's books).
	// Ctrl-C stops them in reverse: the manager drains and stops its nodes
	// while the feed and NATS still run.
	natsSrv, err := daemon.StartNATS(cfg, log)
	if err != nil {
		return err
	}
	defer natsSrv.Shutdown()
	feedCtx, stopFeed := context.WithCancel(context.Background())
	defer stopFeed()
	feedStarted := make(chan daemon.Started, 1)
	feedDone := make(chan error, 1)
	go func() { feedDone <- daemon.Run(feedCtx, cfg, log, func(st daemon.Started) { feedStarted <- st }) }()
	var st daemon.Started
	select {
	case st = <-feedStarted:
	case err := <-feedDone:
		return err
	}
	stopFeedAndWait := func() error { stopFeed(); return <-feedDone }

	paddock := selfCommand()
	envCtx, stopEnv := context.WithCancel(context.Background())
	defer stopEnv()
	envDone := make(chan error, 1)
	go func() {
		envDone <- envdaemon.Run(envCtx, envdaemon.Config{NATSURL: st.NATSURL, Listen: *apiListen, StateDir: *stateDir, Tokens: tokens, AuthDir: filepath.Join(*stateDir, "nats-auth"), SourceDir: *source, NodeReadyTimeout: *readyTimeout,
			AuditMaxAge: defaultAuditMaxAge, AuditMaxBytes: defaultAuditMaxBytes, AuditMaxPerEnv: defaultAuditMaxPerEnv}, log,
			func(es envdaemon.Started) {
				obs := filepath.Join(*stateDir, "nats-auth", natsauth.ObserverCredsFile)
				fmt.Fprintf(stdout, `paddock is running on embedded defaults (Ctrl-C stops everything).

  venue simulator       %s  (Binance spot + USD-M and Bybit v5 linear protocols, %d events/s per symbol)
  NATS                  %s
  feed metrics          %s/metrics   health %s/healthz   ready %s/readyz
  environment manager   %s   metrics %s/metrics

NATS runs in operator/JWT mode: every service and node has its own credentials.
Watch the market data (in another terminal, from this directory) as the read-only observer:
  %s tap -nats-creds %s 'market.data.binance.btcusdt.trades'
  %s tap -nats-creds %s -human 'market.health.>'
  nats sub 'market.data.>' --server %s --creds %s --translate '%s wire decode -human'   (with the nats CLI)

Manage environments (a developer's token; an admin's is in %s):
  export PADDOCK_URL=%s PADDOCK_TOKEN=$(cat %s)
  %s env ls
`, s.Addr(), sf.rate, st.NATSURL, st.MetricsURL, st.MetricsURL, st.MetricsURL, es.APIURL, es.APIURL,
					paddock, obs, paddock, obs, st.NATSURL, obs, paddock,
					filepath.Join(*stateDir, adminTokenFile), es.APIURL, filepath.Join(*stateDir, devTokenFile), paddock)
				if *example != "" {
					go createExample(envCtx, exampleInfo{url: es.APIURL, token: devToken, path: *example, envsDir: filepath.Join(*stateDir, "envs"),
						observerCreds: obs, paddock: paddock}, stdout)
				}
			})
	}()
	var envErr, feedErr error
	select {
	case <-ctx.Done():
		stopEnv()
		envErr = <-envDone
		feedErr = stopFeedAndWait()
	case envErr = <-envDone: // the manager could not run: stop the rest
		feedErr = stopFeedAndWait()
	case feedErr = <-feedDone: // the feed failed: the manager goes too
		stopEnv()
		envErr = <-envDone
	}
	return errors.Join(envErr, feedErr)
}

// loadOrCreateToken reads a token file, creating it (0600) with a random
// token the first time.
func loadOrCreateToken(path string) (string, error) {
	if raw, err := os.ReadFile(path); err == nil {
		if tok := strings.TrimSpace(string(raw)); len(tok) >= 16 {
			return tok, nil
		}
		return "", fmt.Errorf("%s holds no usable token (delete it to make a new one)", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	tok := randomToken()
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write token: %w", err)
	}
	return tok, nil
}

// selfCommand is how the user runs this binary from the current directory,
// for printed commands: a relative path when it lives below (bin/paddock
// after `make run`), `paddock` when that is what PATH finds, else go run.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "go run ./cmd/paddock"
	}
	exe, _ = filepath.EvalSymlinks(exe)
	if onPath, err := exec.LookPath("paddock"); err == nil {
		if p, _ := filepath.EvalSymlinks(onPath); p == exe {
			return "paddock"
		}
	}
	if wd, err := os.Getwd(); err == nil {
		wd, _ = filepath.EvalSymlinks(wd)
		if rel, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(rel, "..") && strings.Contains(rel, "/") {
			return rel
		}
	}
	return "go run ./cmd/paddock"
}

type exampleInfo struct {
	url, token, path, envsDir, observerCreds, paddock string
}

// createExample creates the example environment (or finds it from an
// earlier run) and reports, once it settles, whether it works and how to
// look at it.
func createExample(ctx context.Context, x exampleInfo, stdout io.Writer) {
	raw, err := os.ReadFile(x.path)
	if err != nil {
		fmt.Fprintf(stdout, "\nexample environment skipped: %v\n", err)
		return
	}
	c := &api.Client{BaseURL: x.url, Token: x.token}
	name := exampleName(raw)
	if _, err := c.Create(ctx, api.CreateBody{SpecYAML: string(raw)}); err != nil {
		var se *api.StatusError
		if !errors.As(err, &se) || se.Body.Code != "exists" {
			fmt.Fprintf(stdout, "\nexample environment not created: %v\n", err)
			return
		}
		fmt.Fprintf(stdout, "\nexample environment %s exists from an earlier run; waiting for its node\n", name)
	}
	_ = c.Watch(ctx, name, func(e envmgr.Environment) bool {
		switch e.State {
		case envmgr.StateReady:
			fmt.Fprintf(stdout, "\nexample environment %s is ready: %s; its strategy trades on paper through the risk gate.\n", e.Name, e.Health.Summary())
		case envmgr.StateDegraded:
			fmt.Fprintf(stdout, "\nexample environment %s is up but NOT working: %s\n", e.Name, e.Reason)
		case envmgr.StateFailed:
			fmt.Fprintf(stdout, "\nexample environment %s failed while %s: %s\n", e.Name, e.FailedAt, e.Reason)
			return false
		default:
			return true
		}
		key := filepath.Join(x.envsDir, e.Name, "api-key")
		fmt.Fprintf(stdout, `  node admin API   %s   (API key in %s; the admin key, needed to resume a halt, beside it)
    curl -sH "Authorization: Bearer $(cat %s)" %s/v1/status
    curl -sH "Authorization: Bearer $(cat %s)" %s/v1/pnl        (also /v1/positions /v1/orders /v1/fills /v1/risk /metrics)
  its orders, fills and risk events:
    %s tap -nats-creds %s 'env.%s.orders' 'env.%s.fills' 'env.%s.risk'
  the environment:
    %s env show %s
`, e.Endpoint, key, key, e.Endpoint, key, e.Endpoint, x.paddock, x.observerCreds, e.Name, e.Name, e.Name, x.paddock, e.Name)
		return false
	})
}

func exampleName(raw []byte) string {
	if s, err := spec.Parse(raw, spec.Options{}); err == nil {
		return s.Name
	}
	return ""
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func lowerList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, strings.ToLower(x))
		}
	}
	return out
}
