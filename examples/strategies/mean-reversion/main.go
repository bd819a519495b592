// Command mean-reversion is an example strategy for paddock sandbox
// environments: it trades each instrument's mid price back towards its
// exponential moving average. It is built against the client package, the
// same API any Go strategy uses, and runs under `paddock node`, which starts
// it with its environment in PADDOCK_* variables and restarts it if it
// crashes.
//
// Every refusal of the risk gate is logged with its reason and the strategy
// carries on: a sandbox strategy should expect limits.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/risk"
	"github.com/paddockhq/paddock/sandbox/client"
	"gopkg.in/yaml.v3"
)

// Config is the strategy's config file (mean-reversion.yaml).
type Config struct {
	Window       int                    `yaml:"window"`        // EMA length, in book updates
	ThresholdBps float64                `yaml:"threshold_bps"` // distance from the EMA that triggers an order
	Interval     time.Duration          `yaml:"interval"`      // how often to decide
	OrderType    string                 `yaml:"order_type"`    // limit (at the touch) or market
	OrderTTL     time.Duration          `yaml:"order_ttl"`     // resting limit orders are cancelled after this
	Instruments  map[string]InstrConfig `yaml:"instruments"`   // by venue:symbol
}

// InstrConfig sizes one instrument.
type InstrConfig struct {
	Qty         string `yaml:"qty"`
	MaxPosition string `yaml:"max_position"` // the strategy's own cap, inside the environment's risk limits
}

type state struct {
	cfg      InstrConfig
	qty, max proto.Decimal
	ema      float64
	n        int
	bid, ask proto.Decimal
	live     bool
	pos      risk.Amount
	open     map[uint64]time.Time
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := client.FromEnv()
	if err != nil {
		return err
	}
	cfg, err := loadConfig(env.ConfigFile)
	if err != nil {
		return err
	}
	c, err := client.Connect(env)
	if err != nil {
		return err
	}
	defer c.Close()

	var mu sync.Mutex
	states := map[client.Instrument]*state{}
	for _, in := range env.Instruments {
		ic, ok := cfg.Instruments[in.String()]
		if !ok {
			log.Printf("%s: not in the strategy config; not traded", in)
			continue
		}
		q, err1 := proto.ParseUDecimal(ic.Qty)
		m, err2 := proto.ParseUDecimal(ic.MaxPosition)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("config %s: qty and max_position must be decimals", in)
		}
		states[in] = &state{cfg: ic, qty: q, max: m, open: map[uint64]time.Time{}}
	}
	alpha := 2 / float64(cfg.Window+1)
	market, err := c.Market(client.Handlers{
		Book: func(b *client.Book, _, _ []proto.Level) {
			mu.Lock()
			defer mu.Unlock()
			s := states[b.Instrument]
			if s == nil {
				return
			}
			bid, ok1 := b.BestBid()
			ask, ok2 := b.BestAsk()
			mid, ok3 := b.Mid()
			if !ok1 || !ok2 || !ok3 {
				return
			}
			s.bid, s.ask, s.live = bid.Price, ask.Price, true
			f, _ := strconv.ParseFloat(mid.String(), 64) // the signal may be approximate; orders are exact
			if s.n == 0 {
				s.ema = f
			}
			s.ema += alpha * (f - s.ema)
			s.n++
		},
		Reset: func(b *client.Book, why string) {
			mu.Lock()
			defer mu.Unlock()
			if s := states[b.Instrument]; s != nil {
				s.live = false
			}
			log.Printf("%s: book reset (%s); waiting for it to rejoin", b.Instrument, why)
		},
	})
	if err != nil {
		return err
	}
	if _, err := c.OnFill(func(f client.Fill) {
		mu.Lock()
		defer mu.Unlock()
		s := states[client.Instrument{Venue: f.Venue, Symbol: f.Symbol}]
		if s == nil {
			return
		}
		q, _ := proto.ParseUDecimal(f.Qty)
		if f.Side == "buy" {
			s.pos, _ = s.pos.Add(risk.Dec(q))
		} else {
			s.pos, _ = s.pos.Sub(risk.Dec(q))
		}
		log.Printf("fill %s %s %s @ %s (%s, fee %s %s); position %s", f.Venue+":"+f.Symbol, f.Side, f.Qty, f.Price,
			f.Liquidity, f.Fee, f.FeeCurrency, s.pos)
	}); err != nil {
		return err
	}
	go func() {
		if err := market.Run(ctx); err != nil {
			log.Printf("market data: %v", err)
			stop()
		}
	}()
	log.Printf("mean reversion on %d instruments: window %d, threshold %.3f bps, %s orders", len(states), cfg.Window, cfg.ThresholdBps, cfg.OrderType)

	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	lastSummary := time.Now()
	for {
		if time.Since(lastSummary) >= summaryEvery {
			lastSummary = time.Now()
			summarize(&mu, states, market.Now())
		}
		select {
		case <-ctx.Done():
			cancelAll(c, &mu, states)
			return nil
		case <-tick.C:
		}
		for in, s := range states {
			mu.Lock()
			req, expired := decide(cfg, in, s)
			mu.Unlock()
			for _, id := range expired {
				if _, err := c.Cancel(ctx, id); err != nil && !errors.Is(err, client.ErrRejected) {
					log.Printf("cancel %d: %v", id, err)
				}
			}
			if req == nil {
				continue
			}
			o, err := c.Place(ctx, *req)
			var rej *client.RejectedError
			switch {
			case errors.As(err, &rej):
				log.Printf("%s %s %s refused by the risk gate: %s", in, req.Side, req.Qty, rej.Reason)
			case err != nil:
				log.Printf("%s: place: %v", in, err)
			case o.Status == client.StatusOpen || o.Status == client.StatusPartiallyFilled:
				mu.Lock()
				s.open[o.ID] = time.Now()
				mu.Unlock()
				log.Printf("%s %s %s @ %s placed (order %d, %s)", in, req.Side, req.Qty, req.Price, o.ID, o.Status)
			default:
				log.Printf("%s %s %s placed (order %d, %s)", in, req.Side, req.Qty, o.ID, o.Status)
			}
		}
	}
}

// summaryEvery is how often the strategy logs what it follows (never per
// update: a log line per book update would drown the node's log).
const summaryEvery = 10 * time.Second

// summarize logs each instrument's book updates so far, mid and average,
// with the market's clock (the replay clock on a replay).
func summarize(mu *sync.Mutex, states map[client.Instrument]*state, clock time.Time) {
	mu.Lock()
	defer mu.Unlock()
	for in, s := range states {
		log.Printf("%s: %d book updates, live %v, bid/ask %s/%s, ema %.2f; market clock %s", in, s.n, s.live, s.bid, s.ask, s.ema, clock.Format(time.RFC3339Nano))
	}
}

// decide returns the order to place (if any) and the resting orders to
// cancel, from the mid's distance to its EMA.
func decide(cfg Config, in client.Instrument, s *state) (*client.OrderRequest, []uint64) {
	var expired []uint64
	for id, at := range s.open {
		if time.Since(at) > cfg.OrderTTL {
			expired = append(expired, id)
			delete(s.open, id)
		}
	}
	if !s.live || s.n < cfg.Window || len(s.open) > 0 {
		return nil, expired
	}
	bid, _ := strconv.ParseFloat(s.bid.String(), 64)
	ask, _ := strconv.ParseFloat(s.ask.String(), 64)
	dev := ((bid+ask)/2 - s.ema) / s.ema * 1e4
	req := &client.OrderRequest{Venue: in.Venue, Symbol: in.Symbol, Qty: s.cfg.Qty, Type: cfg.OrderType}
	var next risk.Amount
	switch {
	case dev < -cfg.ThresholdBps: // below the average: buy, expecting a move back up
		req.Side, req.Price = "buy", s.bid.String()
		next, _ = s.pos.Add(risk.Dec(s.qty))
	case dev > cfg.ThresholdBps:
		req.Side, req.Price = "sell", s.ask.String()
		next, _ = s.pos.Sub(risk.Dec(s.qty))
	default:
		return nil, expired
	}
	if next.Abs().Cmp(risk.Dec(s.max)) > 0 {
		return nil, expired // the strategy's own cap
	}
	if cfg.OrderType == "market" {
		req.Price = ""
	}
	return req, expired
}

func cancelAll(c *client.Client, mu *sync.Mutex, states map[client.Instrument]*state) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	mu.Lock()
	var ids []uint64
	for _, s := range states {
		for id := range s.open {
			ids = append(ids, id)
		}
	}
	mu.Unlock()
	for _, id := range ids {
		_, _ = c.Cancel(ctx, id)
	}
	log.Printf("stopped; cancelled %d open orders", len(ids))
}

func loadConfig(path string) (Config, error) {
	cfg := Config{Window: 100, ThresholdBps: 1, Interval: time.Second, OrderType: "limit", OrderTTL: 5 * time.Second}
	if path == "" {
		return cfg, errors.New("no strategy config (strategy.config in .dev-env.yaml)")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.Window < 1 || cfg.Interval <= 0 || (cfg.OrderType != "limit" && cfg.OrderType != "market") {
		return cfg, fmt.Errorf("%s: window >= 1, interval > 0 and order_type limit or market are required", path)
	}
	return cfg, nil
}
