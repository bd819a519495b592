// Package sandbox is the sandbox node's runtime, what `paddock node` runs on
// each environment's machine: it joins exact books for the declared
// instruments from the feed's NATS subjects, takes orders from the strategy
// (NATS request/reply under env.<name>.orders.> and the admin HTTP API),
// passes every order through the environment's risk gate, fills it on the
// paper venue against the live book, publishes orders, fills and risk events,
// and supervises the strategy process. It is a runtime of its own, beside
// the environment manager (it never imports envmgr): sandbox/paper is its
// paper venue and sandbox/client the strategy SDK, the import path
// strategies use.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/replay"

	"github.com/paddockhq/paddock/internal/clock"

	"github.com/paddockhq/paddock/internal/buildinfo"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/internal/natsconn"
	"github.com/paddockhq/paddock/sandbox/client"
	"github.com/paddockhq/paddock/sandbox/marketdata"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Node is a running sandbox node. Start it with Start, then Run.
type Node struct {
	cfg      *Config
	log      *slog.Logger
	nc       *nats.Conn
	drain    func() error
	trader   *Trader
	sup      *Supervisor
	market   *marketdata.Market
	sub      *nats.Subscription
	ln       net.Listener
	srv      *http.Server
	endpoint string
	creds    *credsReloader // set by Run when the node has a creds file
	clk      clock.Clock
	replayer *replay.Replayer // market_data.mode replay and both
}

// SetClock sets the clock the dead man's switch runs on (before Run; the
// default is the real one).
func (n *Node) SetClock(c clock.Clock) { n.clk = c }

// credsCheckEvery is how often the node looks for re-issued credentials.
const credsCheckEvery = 2 * time.Second

// Run starts a node and runs it until ctx ends.
func Run(ctx context.Context, c *Config, log *slog.Logger) error {
	n, err := Start(c, log)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

// Start connects to NATS, builds the trading core, subscribes the order API
// and opens the admin listener. Nothing trades until Run.
func Start(c *Config, log *slog.Logger) (_ *Node, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: c, log: log.With("component", "node", "env", c.Name), clk: clock.Real}
	k, err := loadKeys(c.APIKeyFile, c.AdminKeyFile)
	if err != nil {
		return nil, err
	}
	opts := []nats.Option{nats.Name("paddock-node-" + c.Name)}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	if n.nc, n.drain, err = natsconn.Connect(c.NATSURL, opts...); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = n.drain()
		}
	}()
	reg := prometheus.NewRegistry()
	buildinfo.Register(reg)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := NewMetrics(reg)
	if n.trader, err = NewTrader(c, n.nc, n.log, m, time.Now); err != nil {
		return nil, err
	}
	var ins []marketdata.Instrument
	for _, in := range c.Instruments {
		ins = append(ins, marketdata.Instrument{Venue: in.Venue, Symbol: in.Symbol})
	}
	marketLog := rateLimited(n.log, time.Second)
	// In market_data.mode replay the node trades on its own replay
	// namespace, which its replayer (Run) fills from the recording.
	namespace := ""
	if r := c.Replay; r != nil {
		js, err := jetstream.New(n.nc)
		if err != nil {
			return nil, err
		}
		var rins []replay.Instrument
		for _, in := range ins {
			rins = append(rins, replay.Instrument{Venue: in.Venue, Symbol: in.Symbol})
		}
		if n.replayer, err = replay.New(js, n.nc, replay.Config{Prefix: proto.ReplayNamespace(c.Name), Instruments: rins,
			Start: r.Start, End: r.End, Speed: r.Speed, Metrics: replay.NewMetrics(reg)}, nil, n.log); err != nil {
			return nil, err
		}
		if r.Mode == "replay" {
			namespace = proto.ReplayNamespace(c.Name)
		}
	}
	n.market, err = marketdata.NewMarketAt(n.nc, namespace, ins, n.trader.Handlers(func(err error) {
		m.marketErrors.Inc()
		marketLog(err)
	}))
	if err != nil {
		return nil, err
	}
	market := n.market
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "paddock_node_market_dropped_total",
		Help: "Market data messages NATS dropped because the node fell client.Pending messages behind (its books resync)."},
		func() float64 { return float64(market.Dropped()) }))
	if n.sub, err = n.trader.Serve(n.nc); err != nil {
		return nil, fmt.Errorf("order API: %w", err)
	}
	if n.ln, err = net.Listen("tcp", c.AdminListen); err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	n.endpoint = "http://" + n.ln.Addr().String()
	if c.Strategy != nil {
		// The strategy runs in its own directory, so every path it is given
		// is absolute.
		creds, cfg := absPath(c.NATSCreds), absPath(c.Strategy.Config)
		env := []string{client.EnvName + "=" + c.Name, client.EnvNATSURL + "=" + c.NATSURL,
			client.EnvNATSCreds + "=" + creds, client.EnvInbox + "=" + c.InboxPrefix,
			client.EnvInstruments + "=" + client.FormatInstruments(ins), client.EnvConfig + "=" + cfg,
			client.EnvAdminURL + "=" + n.endpoint, client.EnvMarketNamespace + "=" + namespace}
		if c.Replay != nil {
			env = append(env, client.EnvReplayNamespace+"="+proto.ReplayNamespace(c.Name))
		}
		n.sup = NewSupervisor(c.Strategy, env, log.With("env", c.Name), m)
		n.trader.OnHalt, n.trader.OnResume = n.sup.Pause, n.sup.Resume
	}
	n.srv = &http.Server{Handler: adminHandler(n.trader, n.sup, k, reg, func() string { return n.nc.Status().String() }),
		ReadHeaderTimeout: 5 * time.Second}
	return n, nil
}

// Endpoint is the admin API's base URL.
func (n *Node) Endpoint() string { return n.endpoint }

// Trader is the node's trading core.
func (n *Node) Trader() *Trader { return n.trader }

// Run serves the admin API, joins the books, starts the strategy and runs
// until ctx ends; then it stops the strategy, shuts the API down and drains
// NATS. Every goroutine it starts has ended when it returns.
func (n *Node) Run(ctx context.Context) error {
	defer func() {
		if err := n.drain(); err != nil {
			n.log.Warn("NATS drain", "err", err)
		}
	}()
	defer func() { _ = n.sub.Unsubscribe() }()
	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	serveErr := make(chan error, 1)
	marketErr := make(chan error, 1)
	wg.Go(func() { serveErr <- n.srv.Serve(n.ln) })
	wg.Go(func() {
		if err := n.market.Run(runCtx); err != nil && runCtx.Err() == nil {
			// Market data ended on its own: the node cannot trade, and its
			// supervisor (the provisioner) must see a failure, not a clean exit.
			marketErr <- fmt.Errorf("market data: %w", err)
			stop()
		}
	})
	wg.Go(func() { every(runCtx, 250*time.Millisecond, func() { n.trader.CheckFeeds(n.cfg.feedStale()) }) })
	if n.sup != nil {
		wg.Go(func() { n.sup.Run(runCtx) })
	}
	if n.replayer != nil {
		wg.Go(func() {
			if err := n.replayer.Run(runCtx); err != nil && runCtx.Err() == nil {
				// The books stay not live, so the node reports degraded with
				// that reason; the log says why.
				n.log.Error("replay failed", "err", err)
			}
		})
	}
	if n.cfg.NATSCreds != "" {
		n.creds = newCredsReloader(n.cfg.NATSCreds, n.nc)
		wg.Go(func() { every(runCtx, credsCheckEvery, func() { n.creds.check() }) })
	}
	deadErr := make(chan error, 1)
	if !n.cfg.Deadline.IsZero() || n.cfg.DeadlineFile != "" || n.creds != nil {
		d := &deadman{cfg: n.cfg, clk: n.clk, trader: n.trader, creds: n.creds}
		wg.Go(func() {
			if err := d.run(runCtx); err != nil {
				n.log.Warn("deadline passed and the grace period ended with no extension; shutting down", "grace", n.cfg.deadlineGrace())
				deadErr <- err
				stop()
			}
		})
	}
	var err error
	if n.cfg.EndpointFile != "" {
		if err = writeAtomic(n.cfg.EndpointFile, n.endpoint); err != nil {
			stop()
		}
	}
	started := time.Now().UTC()
	// The heartbeat: the first one is the node reporting ready.
	beat := func() { n.publishStatus(client.NodeRunning, started) }
	beat()
	wg.Go(func() { every(runCtx, n.cfg.statusEvery(), beat) })
	n.log.Info("node running", "admin", n.endpoint, "instruments", len(n.cfg.Instruments), "strategy", n.sup != nil)
	select {
	case <-runCtx.Done():
	case err = <-serveErr:
		stop()
	}
	n.publishStatus(client.NodeStopping, started)
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.srv.Shutdown(shut)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	select { // every goroutine has ended: a market-data failure is in the channel
	case merr := <-marketErr:
		err = errors.Join(err, merr)
	default:
	}
	select {
	case derr := <-deadErr:
		err = errors.Join(err, derr)
	default:
	}
	return err
}

// publishStatus sends a NodeStatus heartbeat. A failed publish is logged:
// the next beat retries, and the manager only needs one.
func (n *Node) publishStatus(state string, started time.Time) {
	st, _, _, _ := n.trader.Snapshot()
	ns := client.NodeStatus{Env: n.cfg.Name, State: state, Admin: n.endpoint, StartedAt: started, Time: time.Now().UTC(),
		Halted: st.Halted, Books: len(st.Books)}
	for _, b := range st.Books {
		if b.Live {
			ns.BooksLive++
		}
	}
	h := readiness(n.trader, n.sup)
	ns.Health = &h
	if n.sup != nil {
		switch ss := n.sup.Status(); {
		case ss.Paused:
			ns.Strategy = "paused"
		case ss.Running:
			ns.Strategy = "running"
		default:
			ns.Strategy = "restarting"
		}
	}
	if n.creds != nil {
		ns.CredsExpireAt = n.creds.expiresAt()
	}
	raw, err := json.Marshal(ns)
	if err == nil {
		err = n.nc.Publish(client.StatusSubject(n.cfg.Name), raw)
	}
	if err != nil {
		n.log.Warn("node status", "err", err)
	}
}

// every calls fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			fn()
		}
	}
}

func writeAtomic(path, content string) error {
	if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// rateLimited logs at most one market-data problem per interval, with the
// number suppressed since; the metric counts every one.
func rateLimited(log *slog.Logger, every time.Duration) func(error) {
	var mu sync.Mutex
	var last time.Time
	suppressed := 0
	return func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < every {
			suppressed++
			return
		}
		log.Warn("market data", "err", err, "suppressed", suppressed)
		last, suppressed = time.Now(), 0
	}
}

// absPath makes a configured path absolute against the node's working
// directory; empty stays empty.
func absPath(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
