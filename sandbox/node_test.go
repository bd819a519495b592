package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/feed/daemon"
	"github.com/paddockhq/paddock/feed/sim"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/sandbox/client"
)

// rig is the whole data path on loopback: the venue simulator, the real
// feed publishing to a real NATS server, and a node trading on paper. The
// simulator only moves when the test steps it, so the books are exact and
// still while the test trades.
type rig struct {
	t        *testing.T
	sim      *sim.Sim
	nc       *nats.Conn
	cl       *client.Client
	node     *Node
	stopFeed func()
	stopNode func() // stops the node and waits for Run to return
	apiKey   string
	adminKey string
	mu       sync.Mutex
	events   []client.RiskEvent
	orders   []client.Order
	done     chan error // Run's result
}

const envName = "t1"

func newRig(t *testing.T, mutate func(*Config), clk ...clock.Clock) *rig {
	t.Helper()
	r := &rig{t: t, apiKey: "env-key-0123456789abcdef", adminKey: "admin-key-0123456789abcdef"}
	var err error
	r.sim, err = sim.New("127.0.0.1:0", sim.Config{Symbols: []sim.Symbol{{Name: "BTCUSDT", Price: 27123.45}}, Seed: 7, TradeEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.sim.Close() })
	r.sim.Step(40)
	ns := natstest.Server(t, embednats.Options{})

	feedCtx, stopFeed := context.WithCancel(context.Background())
	feedDone := make(chan error, 1)
	started := make(chan struct{})
	fc := &daemon.Config{NATS: daemon.NATSConfig{URLs: []string{ns.ClientURL()}},
		MetricsListen: "127.0.0.1:0", StatusInterval: 100 * time.Millisecond,
		Venues: []daemon.VenueConfig{{Name: "binance", WSURL: r.sim.SpotWS(), RESTURL: r.sim.SpotREST(),
			Instruments: []string{"btcusdt"}, SilenceTimeout: time.Minute}}}
	if err := fc.Validate(); err != nil {
		t.Fatal(err)
	}
	go func() {
		feedDone <- daemon.Run(feedCtx, fc, nil, func(daemon.Started) { close(started) })
	}()
	select {
	case <-started:
	case err := <-feedDone:
		t.Fatalf("feed: %v", err)
	}
	var once sync.Once
	r.stopFeed = func() { once.Do(func() { stopFeed(); <-feedDone }) }
	t.Cleanup(r.stopFeed)

	dir := t.TempDir()
	c := &Config{Name: envName, NATSURL: ns.ClientURL(), AdminListen: "127.0.0.1:0",
		Instruments:  []Instrument{{Venue: "binance", Symbol: "btcusdt"}},
		Risk:         RiskConfig{MaxPositionUSD: "1000", MaxDrawdownPct: "5", MaxOrderRate: "50", StartingEquityUSD: "10000"},
		APIKeyFile:   filepath.Join(dir, "api-key"),
		AdminKeyFile: filepath.Join(dir, "admin-key"), FeedStaleSeconds: 1}
	_ = os.WriteFile(c.APIKeyFile, []byte(r.apiKey+"\n"), 0o600)
	_ = os.WriteFile(c.AdminKeyFile, []byte(r.adminKey+"\n"), 0o600)
	if mutate != nil {
		mutate(c)
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	r.node, err = Start(c, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	if len(clk) > 0 {
		r.node.SetClock(clk[0])
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r.done = done
	go func() { done <- r.node.Run(ctx) }()
	var stopOnce sync.Once
	r.stopNode = func() {
		stopOnce.Do(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("node: %v", err)
			}
		})
	}
	t.Cleanup(r.stopNode)
	r.nc = natstest.Connect(t, ns.ClientURL())
	for kind, f := range map[string]func([]byte){
		"risk": func(b []byte) {
			var e client.RiskEvent
			_ = json.Unmarshal(b, &e)
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		},
		"orders": func(b []byte) {
			var o client.Order
			_ = json.Unmarshal(b, &o)
			r.mu.Lock()
			r.orders = append(r.orders, o)
			r.mu.Unlock()
		},
	} {
		if _, err := r.nc.Subscribe(client.EventSubject(envName, kind), func(m *nats.Msg) { f(m.Data) }); err != nil {
			t.Fatal(err)
		}
	}
	_ = r.nc.Flush()
	r.cl, err = client.Connect(client.Config{Env: envName, NATSURL: ns.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.cl.Close() })
	r.waitSynced()
	return r
}

// eventually polls cond every 10ms for up to 10s: the components run on
// their own goroutines and processes, so the test waits for the state it
// expects rather than sleeping a fixed time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitSynced waits until the node's book equals the simulator's true book
// and the venue is healthy. The feed syncs a book only once a diff follows
// its REST snapshot, so while they differ the simulator steps every 100ms.
func (r *rig) waitSynced() {
	r.t.Helper()
	polls := 0
	eventually(r.t, "the node's book to equal the simulator's", func() bool {
		if polls++; polls%10 == 0 {
			r.sim.Step(1)
		}
		bids, asks, _ := r.sim.Book(false, "BTCUSDT")
		tr := r.node.Trader()
		tr.mu.Lock()
		defer tr.mu.Unlock()
		b := tr.books[0]
		if b == nil || !b.Live() || !tr.venues["binance"].healthy {
			return false
		}
		return sameLevels(b.AppendBids(nil, 0), bids) && sameLevels(b.AppendAsks(nil, 0), asks)
	})
}

func sameLevels(a, b []proto.Level) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Price.Cmp(b[i].Price) != 0 || a[i].Qty.Cmp(b[i].Qty) != 0 {
			return false
		}
	}
	return true
}

func (r *rig) place(req client.OrderRequest) (client.Order, *client.RejectedError) {
	r.t.Helper()
	if req.Venue == "" {
		req.Venue, req.Symbol = "binance", "btcusdt"
	}
	o, err := r.cl.Place(r.t.Context(), req)
	if rej, ok := err.(*client.RejectedError); ok {
		return o, rej
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return o, nil
}

func (r *rig) http(method, path, key string) (int, []byte) {
	r.t.Helper()
	req, _ := http.NewRequestWithContext(r.t.Context(), method, r.node.Endpoint()+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func (r *rig) riskEvent(typ string) (client.RiskEvent, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Type == typ {
			return e, true
		}
	}
	return client.RiskEvent{}, false
}

// testWriter sends the node's warnings to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestRunReturnsAMarketDataFailure: when market data fails on its own (here
// the connection is gone before the node subscribes), Run returns the
// failure, so that the node's supervisor sees one; the first wave's Run
// logged it and returned nil.
func TestRunReturnsAMarketDataFailure(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{})
	dir := t.TempDir()
	c := &Config{Name: envName, NATSURL: ns.ClientURL(), AdminListen: "127.0.0.1:0",
		Instruments:  []Instrument{{Venue: "binance", Symbol: "btcusdt"}},
		Risk:         RiskConfig{MaxPositionUSD: "1000", MaxDrawdownPct: "5", MaxOrderRate: "50", StartingEquityUSD: "10000"},
		APIKeyFile:   filepath.Join(dir, "api-key"),
		AdminKeyFile: filepath.Join(dir, "admin-key")}
	_ = os.WriteFile(c.APIKeyFile, []byte("env-key-0123456789abcdef\n"), 0o600)
	_ = os.WriteFile(c.AdminKeyFile, []byte("admin-key-0123456789abcdef\n"), 0o600)
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	n, err := Start(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	n.nc.Close()
	done := make(chan error, 1)
	go func() { done <- n.Run(t.Context()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "market data") {
			t.Fatalf("Run returned %v, want the market-data failure", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after market data failed")
	}
}
