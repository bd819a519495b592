package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/paddockhq/paddock/envmgr/api"
	"github.com/paddockhq/paddock/envmgr/daemon"
)

func init() {
	commands["envmgr"] = command{"run the environment manager (API, reconciler, local provisioner)", runEnvmgr}
}

func runEnvmgr(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("envmgr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats-url", envDefault("PADDOCK_NATS_URL", "nats://127.0.0.1:4222"), "NATS URL (the feed's embedded server by default) [PADDOCK_NATS_URL]")
	creds := fs.String("nats-creds", envDefault("PADDOCK_NATS_CREDS", ""), "NATS credentials file [PADDOCK_NATS_CREDS]")
	listen := fs.String("listen", envDefault("PADDOCK_ENVMGR_LISTEN", "127.0.0.1:8090"), "API listen address [PADDOCK_ENVMGR_LISTEN]")
	tokens := fs.String("tokens", envDefault("PADDOCK_TOKENS", ""), "API tokens file: tokens: [{name, role, sha256}] [PADDOCK_TOKENS]")
	stateDir := fs.String("state-dir", ".state", "local state: node directories")
	authDir := fs.String("auth-dir", envDefault("PADDOCK_NATS_AUTH_DIR", ""), "NATS authority directory (operator/JWT mode): the manager connects as its user and issues node credentials [PADDOCK_NATS_AUTH_DIR]")
	source := fs.String("source-dir", envDefault("PADDOCK_SOURCE_DIR", "."), "repository checkout that strategy paths in .dev-env.yaml are relative to [PADDOCK_SOURCE_DIR]")
	replicas := fs.Int("replicas", 1, "JetStream replicas of the environment store (3 on a production cluster)")
	every := fs.Duration("reconcile-every", 10*time.Second, "expiry and supervision interval")
	level := fs.String("log-level", envDefault("PADDOCK_LOG_LEVEL", "info"), "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *tokens == "" {
		return usageError{"paddock envmgr: -tokens is required (hash a token with `paddock env token-hash <token>`)"}
	}
	log, err := newLogger(*level, stderr)
	if err != nil {
		return err
	}
	t, err := api.LoadTokens(*tokens)
	if err != nil {
		return err
	}
	return daemon.Run(ctx, daemon.Config{NATSURL: *natsURL, NATSCreds: *creds, Listen: *listen, StateDir: *stateDir, Tokens: t, ReconcileEvery: *every, AuthDir: *authDir, Replicas: *replicas, SourceDir: *source}, log,
		func(s daemon.Started) { fmt.Fprintf(stderr, "environment manager API on %s\n", s.APIURL) })
}
