package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

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
	stateDir := fs.String("state-dir", ".state", "local state (NATS JetStream data)")
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
		NATS:          daemon.NATSConfig{Embedded: daemon.EmbeddedConfig{Listen: *natsListen, StoreDir: *stateDir + "/nats"}},
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
	return daemon.Run(ctx, cfg, log, func(st daemon.Started) {
		fmt.Fprintf(stdout, `paddock is running on embedded defaults (Ctrl-C stops everything).

  venue simulator   %s  (Binance spot + USD-M protocol, %d events/s per symbol)
  NATS              %s
  feed metrics      %s/metrics   health %s/healthz   ready %s/readyz

Watch the market data (in another terminal):
  go run ./cmd/paddock tap 'market.data.binance.btcusdt.trades'
  go run ./cmd/paddock tap 'market.health.>'
  nats sub 'market.>' --server %s      (if you have the nats CLI)
`, s.Addr(), sf.rate, st.NATSURL, st.MetricsURL, st.MetricsURL, st.MetricsURL, st.NATSURL)
	})
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
