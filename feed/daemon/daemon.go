package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/paddockhq/paddock/venue"

	"github.com/paddockhq/paddock/internal/buildinfo"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/paddockhq/paddock/feed"
	"github.com/paddockhq/paddock/feed/binance"
	"github.com/paddockhq/paddock/feed/bybit"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natsconn"
	"github.com/paddockhq/paddock/natsauth"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/record"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Started is what Run reports once the feed is up, for callers that print
// where to look.
type Started struct {
	NATSURL    string // where subscribers connect
	MetricsURL string // http://host:port (/metrics, /healthz, /readyz)
	Service    *feed.Service
}

// Run runs the feed against the NATS servers in cfg.NATS.URLs until ctx is
// cancelled. It owns no server: the caller starts an embedded one (see
// StartNATS) when there is no cluster. onStart, if not nil, is called once
// everything is listening.
func Run(ctx context.Context, cfg *Config, log *slog.Logger, onStart func(Started)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.NATS.URLs) == 0 {
		// The feed is one NATS client among others; whoever runs it (the
		// paddock feed and dev commands) starts an embedded server as a peer.
		return errors.New("feed: no NATS URL to connect to")
	}
	natsURL := joinURLs(cfg.NATS.URLs)
	opts := []nats.Option{
		nats.Name("paddock-feed"),
		nats.CustomInboxPrefix(natsauth.FeedInbox), // its JetStream replies (recording streams) arrive on its own inbox
		nats.ReconnectBufSize(64 << 20),            // ride out a short cluster blip without dropping ticks
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil is our own Drain at shutdown
				log.Warn("NATS disconnected", "component", "feed", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "component", "feed", "url", nc.ConnectedUrl()) }),
	}
	if cfg.NATS.Credentials != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATS.Credentials))
	}
	nc, drain, err := natsconn.Connect(natsURL, opts...)
	if err != nil {
		return err
	}
	defer func() {
		// The shutdown Resets are the last messages out; wait for them.
		if err := drain(); err != nil {
			log.Warn("NATS drain", "component", "feed", "err", err)
		}
	}()

	reg := prometheus.NewRegistry()
	buildinfo.Register(reg)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := feed.NewMetrics(reg)
	var venues []feed.VenueEntry
	for _, v := range cfg.Venues {
		entry, err := buildVenue(v, nc, metrics, log)
		if err != nil {
			return err
		}
		venues = append(venues, entry)
	}
	so := feed.ServiceOptions{StatusInterval: cfg.StatusInterval, Logger: log}
	var recorders []*record.Recorder
	if rc := cfg.Record; rc != nil {
		rc.Defaults()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		rm := record.NewMetrics(reg)
		for _, v := range venues {
			if _, err := record.Ensure(ctx, js, v.Outlet.Name, *rc); err != nil {
				return err
			}
			r, err := record.NewRecorder(nc, js, v.Outlet.Name, log, rm)
			if err != nil {
				return err
			}
			r.Lease = rc.Lease
			recorders = append(recorders, r)
		}
		so.CheckpointInterval = rc.CheckpointInterval
		log.Info("recording market data", "component", "feed", "venues", len(venues), "max_age", rc.MaxAge, "checkpoints", rc.CheckpointInterval)
	}
	svc := feed.NewService(nc, venues, so)

	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("metrics listener %s: %w", cfg.MetricsListen, err)
	}
	srv := &http.Server{Handler: svc.Handler(reg), ReadHeaderTimeout: 5 * time.Second}
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()
	metricsURL := "http://" + ln.Addr().String()
	log.Info("feed endpoints", "component", "feed", "metrics", metricsURL+"/metrics", "ready", metricsURL+"/readyz")

	// The recorders outlive the service by its shutdown, so that the
	// shutdown Resets are recorded too.
	// A recorder that cannot run (no stream, no permission) stops the
	// feed with its error: configured recording never silently lapses.
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	svcCtx, stopSvc := context.WithCancel(ctx)
	defer stopSvc()
	recErrs := make(chan error, len(recorders))
	var recWG sync.WaitGroup
	for _, r := range recorders {
		recWG.Go(func() {
			if err := r.Run(recCtx); err != nil {
				log.Error("recorder failed; stopping the feed", "component", "feed", "err", err)
				recErrs <- err
				stopSvc()
			}
		})
	}
	// The recorders subscribe before the feed publishes, so that its first
	// books (the checkpoints a replay starts from) are recorded.
	for _, r := range recorders {
		select {
		case <-r.Subscribed():
		case <-svcCtx.Done():
		}
	}
	// Started once the recorders are ready: what the caller starts next
	// (an environment manager asking the feed what it carries) finds the
	// feed about to answer, not waiting on its recorders.
	if onStart != nil {
		onStart(Started{NATSURL: natsURL, MetricsURL: metricsURL, Service: svc})
	}
	runErr := svc.Run(svcCtx)
	_ = nc.Flush()
	stopRec()
	recWG.Wait()
	close(recErrs)
	for err := range recErrs {
		runErr = errors.Join(runErr, err)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("metrics server shutdown", "component", "feed", "err", err)
	}
	if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(runErr, fmt.Errorf("metrics server: %w", err))
	}
	return runErr
}

func buildVenue(v VenueConfig, nc *nats.Conn, m *feed.Metrics, log *slog.Logger) (feed.VenueEntry, error) {
	d, err := v.registryVenue()
	if err != nil {
		return feed.VenueEntry{}, err
	}
	id := d.ID
	if v.Kind != "" {
		id = proto.VenueID(v.WireID)
	}
	var ev feed.Events
	for _, e := range v.Events {
		switch e {
		case "trades":
			ev.Trades = true
		case "orderbook":
			ev.Orderbook = true
		case "bbo":
			ev.BBO = true
		}
	}
	out, err := feed.NewNamedOutlet(v.Name, id, v.Instruments, ev, nc, m, nil)
	if err != nil {
		return feed.VenueEntry{}, err
	}
	newAdapter := adapters[d.Adapter]
	if newAdapter == nil {
		return feed.VenueEntry{}, fmt.Errorf("venue %s: no adapter", v.Name)
	}
	a, err := newAdapter(d, v, out, log)
	if err != nil {
		return feed.VenueEntry{}, fmt.Errorf("venue %s: %w", v.Name, err)
	}
	log.Info("venue configured", "component", "feed", "venue", v.Name, "instruments", len(v.Instruments))
	return feed.VenueEntry{Outlet: out, Venue: a}, nil
}

// adapters makes a venue's adapter, by the registry's adapter family: the
// one place a new venue's code is wired in.
var adapters = map[string]func(d venue.Venue, v VenueConfig, out *feed.Outlet, log *slog.Logger) (feed.Venue, error){
	"binance": func(d venue.Venue, v VenueConfig, out *feed.Outlet, log *slog.Logger) (feed.Venue, error) {
		b := v.Binance // Validate fills it for every Binance venue
		return binance.New(binance.Config{
			Futures: d.Type == "perpetual", WSURL: v.WSURL, RESTURL: v.RESTURL, TradeStream: b.TradeStream,
			DepthLimit: b.DepthLimit, MaxStreamsPerConn: b.MaxStreams, SilenceTimeout: v.SilenceTimeout,
			MaxConnAge: v.MaxConnectionAge, RolloverOverlap: v.RolloverOverlap, Logger: log,
		}, out)
	},
	"bybit": func(d venue.Venue, v VenueConfig, out *feed.Outlet, log *slog.Logger) (feed.Venue, error) {
		b := v.Bybit // Validate fills it for every Bybit venue
		return bybit.New(bybit.Config{WSURL: v.WSURL, Depth: b.Depth, PingEvery: b.PingInterval, SilenceTimeout: v.SilenceTimeout,
			MaxConnAge: v.MaxConnectionAge, RolloverOverlap: v.RolloverOverlap, Logger: log}, out)
	},
}

// carried lists the venues this feed has an adapter for.
func carried() []string {
	var out []string
	for _, name := range venue.Carried() {
		if d, _ := venue.ByName(name); adapters[d.Adapter] != nil {
			out = append(out, name)
		}
	}
	return out
}

func joinURLs(urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ","
		}
		s += u
	}
	return s
}

// StartNATS starts the embedded NATS server cfg.NATS.Embedded describes, in
// operator mode when it names an auth directory, and points cfg at it: its
// URL, and the feed's credentials unless cfg names some. The caller owns the
// server and shuts it down after the feed (and every other client) drained.
func StartNATS(cfg *Config, log *slog.Logger) (*embednats.Server, error) {
	ec := cfg.NATS.Embedded
	eo := embednats.Options{Listen: ec.Listen, StoreDir: ec.StoreDir, Logger: log}
	var srv *embednats.Server
	var err error
	if ec.AuthDir != "" {
		srv, err = natsauth.StartServer(ec.AuthDir, eo)
		if err == nil && cfg.NATS.Credentials == "" {
			cfg.NATS.Credentials = filepath.Join(ec.AuthDir, natsauth.FeedCredsFile)
		}
	} else {
		srv, err = embednats.Start(eo)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	cfg.NATS.URLs = []string{srv.ClientURL()}
	if log != nil {
		log.Info("embedded NATS server running", "component", "nats", "url", srv.ClientURL(), "store_dir", ec.StoreDir)
	}
	return srv, nil
}
