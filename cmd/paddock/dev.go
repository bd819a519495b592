package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/api"
	envdaemon "github.com/paddockhq/paddock/envmgr/daemon"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/internal/natsauth"

	"github.com/paddockhq/paddock/feed/daemon"
	"github.com/paddockhq/paddock/feed/sim"
)

func init() {
	commands["dev"] = command{"run the whole system locally on embedded defaults (what `make run` runs)", runDev}
}

// runDev runs the simulator and the feed (with its embedded NATS server) in
// one process, wired together, until interrupted.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "embedded NATS listen address")
	metrics := fs.String("metrics-listen", "127.0.0.1:9464", "feed metrics/health listen address")
	stateDir := fs.String("state-dir", ".state", "local state (NATS JetStream data, node directories)")
	apiListen := fs.String("api-listen", "127.0.0.1:8090", "environment manager API listen address")
	example := fs.String("example", "examples/.dev-env.yaml", "environment to create once everything runs (empty: none)")
	source := fs.String("source-dir", ".", "repository checkout that strategy paths in .dev-env.yaml are relative to")
	level := fs.String("log-level", "warn", "debug, info, warn or error")
	var sf simFlags
	sf.register(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	log, err := newLogger(*level, stderr)
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
		NATS:          daemon.NATSConfig{Embedded: daemon.EmbeddedConfig{Listen: *natsListen, StoreDir: *stateDir + "/nats", AuthDir: *stateDir + "/nats-auth"}},
		MetricsListen: *metrics,
	}
	if sf.spot != "" {
		cfg.Venues = append(cfg.Venues, daemon.VenueConfig{Name: "binance", WSURL: s.SpotWS(), RESTURL: s.SpotREST(), Instruments: lowerList(sf.spot)})
	}
	if sf.perp != "" {
		cfg.Venues = append(cfg.Venues, daemon.VenueConfig{Name: "binance-perp", WSURL: s.PerpWS(), RESTURL: s.PerpREST(), Instruments: lowerList(sf.perp)})
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// The manager needs NATS while it drains and stops its nodes, and NATS
	// lives in the feed: so on Ctrl-C the manager stops first, then the feed.
	token := randomToken()
	tokens, err := api.NewTokens([]api.Token{{Name: "dev", Role: "admin", SHA256: api.HashToken(token)}})
	if err != nil {
		return err
	}
	feedCtx, stopFeed := context.WithCancel(context.Background())
	defer stopFeed()
	envCtx, stopEnv := context.WithCancel(context.Background())
	defer stopEnv()
	envExited := make(chan struct{}) // closed when the manager has stopped
	var envErr error
	var envStarted atomic.Bool
	go func() {
		<-ctx.Done()
		stopEnv()
		if envStarted.Load() {
			<-envExited
		}
		stopFeed()
	}()
	feedErr := daemon.Run(feedCtx, cfg, log, func(st daemon.Started) {
		envStarted.Store(true)
		go func() {
			defer close(envExited)
			envErr = envdaemon.Run(envCtx, envdaemon.Config{NATSURL: st.NATSURL, Listen: *apiListen, StateDir: *stateDir, Tokens: tokens, AuthDir: *stateDir + "/nats-auth", SourceDir: *source,
				AuditMaxAge: defaultAuditMaxAge, AuditMaxBytes: defaultAuditMaxBytes, AuditMaxPerEnv: defaultAuditMaxPerEnv}, log,
				func(es envdaemon.Started) {
					obs := filepath.Join(*stateDir, "nats-auth", natsauth.ObserverCredsFile)
					fmt.Fprintf(stdout, `paddock is running on embedded defaults (Ctrl-C stops everything).

  venue simulator       %s  (Binance spot + USD-M protocol, %d events/s per symbol)
  NATS                  %s
  feed metrics          %s/metrics   health %s/healthz   ready %s/readyz
  environment manager   %s   (token below)

NATS runs in operator/JWT mode: every service and node has its own credentials.
Watch the market data (in another terminal) as the read-only observer:
  go run ./cmd/paddock tap -nats-creds %s 'market.data.binance.btcusdt.trades'
  go run ./cmd/paddock tap -nats-creds %s 'market.health.>'
  nats sub 'market.data.>' --server %s --creds %s      (if you have the nats CLI)

Manage environments:
  export PADDOCK_URL=%s PADDOCK_TOKEN=%s
  go run ./cmd/paddock env ls
  go run ./cmd/paddock env show example-mean-reversion
`, s.Addr(), sf.rate, st.NATSURL, st.MetricsURL, st.MetricsURL, st.MetricsURL, es.APIURL, obs, obs, st.NATSURL, obs, es.APIURL, token)
					if *example != "" {
						go createExample(envCtx, es.APIURL, token, *example, filepath.Join(*stateDir, "envs"), obs, stdout)
					}
				})
		}()
	})
	stopEnv()
	if envStarted.Load() {
		<-envExited
		if envErr != nil && feedErr == nil {
			feedErr = envErr
		}
	}
	return feedErr
}

// createExample creates the example environment and reports when it is ready.
func createExample(ctx context.Context, url, token, path, envsDir, observerCreds string, stdout io.Writer) {
	raw, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stdout, "\nexample environment skipped: %v\n", err)
		return
	}
	c := &api.Client{BaseURL: url, Token: token}
	e, err := c.Create(ctx, api.CreateBody{SpecYAML: string(raw)})
	if err != nil {
		if _, _, gerr := c.Get(ctx, exampleName(raw)); gerr == nil {
			fmt.Fprintf(stdout, "\nexample environment already exists (from an earlier run)\n")
			return
		}
		fmt.Fprintf(stdout, "\nexample environment not created: %v\n", err)
		return
	}
	_ = c.Watch(ctx, e.Name, func(x envmgr.Environment) bool {
		if x.State == envmgr.StateReady {
			key := filepath.Join(envsDir, x.Name, "api-key")
			fmt.Fprintf(stdout, `
example environment %s is ready; its strategy trades on paper through the risk gate.
  node admin API   %s   (API key in %s; the admin key, needed to resume a halt, beside it)
    curl -H "Authorization: Bearer $(cat %s)" %s/v1/status
    curl -H "Authorization: Bearer $(cat %s)" %s/v1/pnl        (also /v1/positions /v1/orders /v1/fills /v1/risk /metrics)
  its orders, fills and risk events:
    go run ./cmd/paddock tap -nats-creds %s 'env.%s.*'
`, x.Name, x.Endpoint, key, key, x.Endpoint, key, x.Endpoint, observerCreds, x.Name)
			return false
		}
		if x.State == envmgr.StateFailed {
			fmt.Fprintf(stdout, "\nexample environment %s failed while %s: %s\n", x.Name, x.FailedAt, x.Reason)
			return false
		}
		return true
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
