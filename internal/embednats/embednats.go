// Package embednats runs a NATS server inside the paddock process, so that
// `make run` and the tests need no separately installed broker. Production
// deployments point paddock at an external NATS cluster instead.
package embednats

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server.
type Options struct {
	// Listen is host:port; port 0 picks a free port. Default 127.0.0.1:0.
	Listen string
	// StoreDir enables JetStream with file storage there; empty disables it.
	StoreDir string
	// MaxPayload bounds a message; 0 keeps NATS's default (1 MiB).
	MaxPayload int32
	// Logger receives the server's warnings and errors; nil discards them.
	Logger *slog.Logger
	// Operator, when set, runs the server in operator/JWT mode: only users
	// with JWTs issued under these accounts may connect.
	Operator *Operator
}

// Operator is the trust configuration of operator/JWT mode.
type Operator struct {
	Claims        *jwt.OperatorClaims
	SystemAccount string
	Accounts      map[string]string // account public key -> JWT, preloaded
	ResolverDir   string            // where the resolver keeps account JWTs
}

// Server is a running embedded NATS server. Safe for concurrent use.
type Server struct {
	srv *server.Server
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		Host:       host,
		Port:       port,
		NoSigs:     true,
		MaxPayload: o.MaxPayload,
		JetStream:  o.StoreDir != "",
		StoreDir:   o.StoreDir,
		// Slow subscribers are cut off rather than allowed to stall the feed.
		WriteDeadline: 2 * time.Second,
	}
	if op := o.Operator; op != nil {
		res, err := server.NewDirAccResolver(op.ResolverDir, 0, 2*time.Minute, server.NoDelete)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: account resolver: %w", err)
		}
		for pub, j := range op.Accounts {
			if err := res.Store(pub, j); err != nil {
				return nil, fmt.Errorf("embedded nats: preload account %s: %w", pub, err)
			}
		}
		opts.TrustedOperators = []*jwt.OperatorClaims{op.Claims}
		opts.SystemAccount = op.SystemAccount
		opts.AccountResolver = res
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if o.Logger != nil {
		srv.SetLoggerV2(&logAdapter{l: o.Logger.With("component", "nats-server")}, false, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready after 10s")
	}
	return &Server{srv: srv}, nil
}

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// logAdapter forwards the server's log lines to slog.
type logAdapter struct{ l *slog.Logger }

func (a *logAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *logAdapter) Tracef(format string, v ...any)  {}
