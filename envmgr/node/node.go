// Package node is the sandbox node's runtime, what `paddock node` runs on
// each environment's machine. This version connects to NATS with the
// environment's credentials, subscribes to its declared instruments' market
// data and reports its health; the risk gate, paper venue and strategy
// supervision build on it.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/internal/natsconn"
	"github.com/paddockhq/paddock/proto"
)

// Config is the node's configuration file, written by the provisioner.
type Config struct {
	Name         string       `json:"name"`
	NATSURL      string       `json:"nats_url"`
	NATSCreds    string       `json:"nats_creds,omitempty"`
	InboxPrefix  string       `json:"inbox_prefix,omitempty"` // the environment's private reply inbox
	AdminListen  string       `json:"admin_listen"`           // default 127.0.0.1:0
	EndpointFile string       `json:"endpoint_file"`          // where the admin URL is written once listening
	Instruments  []Instrument `json:"instruments"`
}

// Instrument is one declared instrument.
type Instrument struct {
	Venue  string `json:"venue"`
	Symbol string `json:"symbol"`
}

// LoadConfig reads a node configuration file.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read node config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("parse node config %s: %w", path, err)
	}
	if c.Name == "" || c.NATSURL == "" {
		return nil, fmt.Errorf("node config %s: name and nats_url are required", path)
	}
	if c.AdminListen == "" {
		c.AdminListen = "127.0.0.1:0"
	}
	return &c, nil
}

// Run runs the node until ctx ends.
func Run(ctx context.Context, c *Config, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "node", "env", c.Name)
	opts := []nats.Option{nats.Name("paddock-node-" + c.Name)}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	nc, drain, err := natsconn.Connect(c.NATSURL, opts...)
	if err != nil {
		return err
	}
	defer func() {
		if err := drain(); err != nil {
			log.Warn("NATS drain", "err", err)
		}
	}()
	var messages atomic.Uint64
	for _, in := range c.Instruments {
		subj, err := proto.DataWildcard(in.Venue, in.Symbol)
		if err != nil {
			return fmt.Errorf("instrument %s %s: %w", in.Venue, in.Symbol, err)
		}
		if _, err := nc.Subscribe(subj, func(*nats.Msg) { messages.Add(1) }); err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
	}
	ln, err := net.Listen("tcp", c.AdminListen)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "env": c.Name, "pid": os.Getpid(),
			"nats": nc.Status().String(), "market_data_messages": messages.Load(), "uptime_seconds": int(time.Since(started).Seconds())})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	endpoint := "http://" + ln.Addr().String()
	if c.EndpointFile != "" {
		if err := os.WriteFile(c.EndpointFile+".tmp", []byte(endpoint), 0o600); err != nil {
			return err
		}
		if err := os.Rename(c.EndpointFile+".tmp", c.EndpointFile); err != nil {
			return err
		}
	}
	log.Info("node running", "admin", endpoint, "instruments", len(c.Instruments))
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
