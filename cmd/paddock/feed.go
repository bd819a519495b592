package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/feed/daemon"
	"github.com/paddockhq/paddock/feed/sim"
	"github.com/paddockhq/paddock/natsauth"
	"github.com/paddockhq/paddock/proto"
)

func init() {
	commands["feed"] = command{"run the feed multiplexer (one WebSocket per venue -> NATS)", runFeed}
	commands["sim"] = command{"run the local Binance venue simulator", runSim}
	commands["tap"] = command{"subscribe to a subject and print decoded messages as JSON", runTap}
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("log level %q: want debug, info, warn or error", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// envDefault returns the environment variable's value, or def.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func runFeed(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("feed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", envDefault("PADDOCK_FEED_CONFIG", ""), "configuration file (see feed/feed.example.yaml) [PADDOCK_FEED_CONFIG]")
	natsURL := fs.String("nats-url", envDefault("PADDOCK_NATS_URL", ""), "external NATS URLs, comma separated; overrides the file and disables the embedded server [PADDOCK_NATS_URL]")
	creds := fs.String("nats-creds", envDefault("PADDOCK_NATS_CREDS", ""), "NATS credentials file [PADDOCK_NATS_CREDS]")
	metrics := fs.String("metrics-listen", envDefault("PADDOCK_METRICS_LISTEN", ""), "metrics/health listen address [PADDOCK_METRICS_LISTEN]")
	level := fs.String("log-level", envDefault("PADDOCK_LOG_LEVEL", "info"), "debug, info, warn or error [PADDOCK_LOG_LEVEL]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *config == "" {
		return usageError{"paddock feed: -config is required (start from feed/feed.example.yaml)"}
	}
	log, err := newLogger(*level, stderr)
	if err != nil {
		return err
	}
	cfg, err := daemon.LoadConfig(*config)
	if err != nil {
		return err
	}
	if *natsURL != "" {
		cfg.NATS.URLs = strings.Split(*natsURL, ",")
	}
	if *creds != "" {
		cfg.NATS.Credentials = *creds
	}
	if *metrics != "" {
		cfg.MetricsListen = *metrics
	}
	if len(cfg.NATS.URLs) == 0 {
		srv, err := daemon.StartNATS(cfg, log)
		if err != nil {
			return err
		}
		defer srv.Shutdown() // after the feed drained its connection
	}
	return daemon.Run(ctx, cfg, log, nil)
}

// simFlags are shared by `paddock sim` and `paddock dev`.
type simFlags struct {
	spot, perp string
	rate       int
	seed       uint64
	maxConnAge time.Duration
	tradeEvery int
	pingEvery  time.Duration
}

func (f *simFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.spot, "spot", "BTCUSDT,ETHUSDT", "spot symbols, comma separated")
	fs.StringVar(&f.perp, "perp", "BTCUSDT", "USD-M perpetual symbols, comma separated")
	fs.IntVar(&f.rate, "rate", 20, "market events per second per symbol")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed")
	fs.DurationVar(&f.maxConnAge, "max-conn-age", 0, "close connections at this age (a compressed 24h cap; 0 = never)")
	fs.IntVar(&f.tradeEvery, "trade-every", 2, "one event in N carries a trade")
	fs.DurationVar(&f.pingEvery, "ping-every", 20*time.Second, "ping interval")
}

func (f *simFlags) config(log *slog.Logger) sim.Config {
	c := sim.Config{Seed: f.seed, MaxConnAge: f.maxConnAge, TradeEvery: f.tradeEvery, PingInterval: f.pingEvery, Logger: log}
	prices := map[string]float64{"BTCUSDT": 27123.45, "ETHUSDT": 1650.25}
	add := func(list string, futures bool) {
		for _, s := range strings.Split(list, ",") {
			if s = strings.ToUpper(strings.TrimSpace(s)); s != "" {
				c.Symbols = append(c.Symbols, sim.Symbol{Name: s, Futures: futures, Price: prices[s]})
			}
		}
	}
	add(f.spot, false)
	add(f.perp, true)
	return c
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9100", "listen address")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	var sf simFlags
	sf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*level, stderr)
	if err != nil {
		return err
	}
	s, err := sim.New(*listen, sf.config(log))
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stdout, "simulator listening on %s\n  binance:      ws_url %s  rest_url %s\n  binance-perp: ws_url %s  rest_url %s\n"+
		"  bybit:        ws_url %s   (the spot symbols, Bybit v5)\n  bybit-perp:   ws_url %s   (the perp symbols, Bybit v5 linear)\n",
		s.Addr(), s.SpotWS(), s.SpotREST(), s.PerpWS(), s.PerpREST(), s.BybitSpotWS(), s.BybitLinearWS())
	s.Run(ctx, sf.rate)
	return nil
}

func runTap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: paddock tap [flags] <subject> [subject...]   e.g. market.data.binance.btcusdt.trades or 'market.health.>'")
		fs.PrintDefaults()
	}
	url := fs.String("nats-url", envDefault("PADDOCK_NATS_URL", nats.DefaultURL), "NATS URL [PADDOCK_NATS_URL]")
	creds := fs.String("nats-creds", envDefault("PADDOCK_NATS_CREDS", ""), "NATS credentials file [PADDOCK_NATS_CREDS]")
	count := fs.Int("n", 0, "exit after this many messages (0 = until interrupted)")
	human := fs.Bool("human", false, "print decimals as decimal strings and times as RFC 3339, instead of the wire's JSON schema")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{"usage: paddock tap [-n N] [-human] <subject> [subject...]   e.g. market.data.binance.btcusdt.trades or 'market.>'"}
	}
	// A refused subscription arrives asynchronously; tap exits non-zero with
	// it instead of waiting for messages that will never come.
	asyncErr := make(chan error, 1)
	opts := []nats.Option{nats.Name("paddock-tap"), nats.CustomInboxPrefix(natsauth.ObserverInbox),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case asyncErr <- err:
			default:
			}
		})}
	if *creds != "" {
		opts = append(opts, nats.UserCredentials(*creds))
	}
	nc, err := nats.Connect(*url, opts...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *url, err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 1024)
	for _, subject := range fs.Args() {
		sub, err := nc.ChanSubscribe(subject, msgs)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
		defer sub.Unsubscribe()
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	buf := make([]byte, 0, 4096)
	for n := 0; *count == 0 || n < *count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case err := <-asyncErr:
			return fmt.Errorf("subscribe %s: %w", strings.Join(fs.Args(), " "), err)
		case msg := <-msgs:
			if strings.HasPrefix(msg.Subject, "env.") { // environment events are JSON already
				fmt.Fprintf(stdout, "%s %s\n", msg.Subject, msg.Data)
				continue
			}
			m, err := proto.Decode(msg.Data)
			if err != nil && !errors.Is(err, proto.ErrUnknownType) {
				fmt.Fprintf(stdout, "%s: undecodable (%v): %x\n", msg.Subject, err, msg.Data)
				continue
			}
			buf = append(append(buf[:0], msg.Subject...), ' ')
			if *human {
				buf = append(buf, humanJSON(m)...)
			} else {
				buf = m.AppendJSON(buf)
			}
			fmt.Fprintf(stdout, "%s\n", buf)
		}
	}
	return nil
}
