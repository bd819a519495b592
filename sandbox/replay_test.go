package sandbox

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/paddockhq/paddock/feed/daemon"
	"github.com/paddockhq/paddock/feed/sim"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/record"
	"github.com/paddockhq/paddock/sandbox/client"
)

// TestANodeTradesOnAReplay: with market_data.mode replay, a node replays
// the recording into its own namespace (the feed is gone by then), joins
// the replayed book, and its paper venue fills against it; its venue is
// healthy on the replayer's heartbeat.
func TestANodeTradesOnAReplay(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	_, began, stopFeed := recordedSim(t, ns.ClientURL())
	stopFeed()
	ended := time.Now()

	dir := t.TempDir()
	c := &Config{Name: envName, NATSURL: ns.ClientURL(), AdminListen: "127.0.0.1:0", FeedStaleSeconds: 2,
		Instruments:  []Instrument{{Venue: "binance", Symbol: "btcusdt"}},
		Risk:         RiskConfig{MaxPositionUSD: "100000", MaxDrawdownPct: "50", MaxOrderRate: "50", StartingEquityUSD: "100000"},
		APIKeyFile:   filepath.Join(dir, "api-key"),
		AdminKeyFile: filepath.Join(dir, "admin-key"),
		Replay:       &ReplayConfig{Mode: "replay", Start: began.Add(400 * time.Millisecond), End: ended.Add(-200 * time.Millisecond), Speed: 0}}
	_ = os.WriteFile(c.APIKeyFile, []byte("env-key-0123456789abcdef\n"), 0o600)
	_ = os.WriteFile(c.AdminKeyFile, []byte("admin-key-0123456789abcdef\n"), 0o600)
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	n, err := Start(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-n.replayer.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the replay never finished")
	}
	eventually(t, "the replayed book to be live", func() bool {
		st, _, _, _ := n.trader.Snapshot()
		return len(st.Books) == 1 && st.Books[0].Live
	})
	cl, err := client.Connect(client.Config{Env: envName, NATSURL: ns.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	o, err := cl.Place(t.Context(), client.OrderRequest{Venue: "binance", Symbol: "btcusdt", Side: "buy", Type: "market", Qty: "0.001"})
	if err != nil {
		t.Fatalf("an order on the replayed book: %v", err)
	}
	if o.Status != client.StatusFilled {
		t.Fatalf("order %s (%s %s), want filled against the replayed book", o.Status, o.Code, o.Reason)
	}
	if now := n.replayer.Now(); now.Before(c.Replay.Start) || !now.Before(c.Replay.End) {
		t.Fatalf("replay clock %s outside the range", now)
	}
}

// recordedSim runs a simulator and a recording feed on the server at url
// and steps the market for about a second; it returns the simulator (for
// more steps), when the recording began, and a function that stops the
// feed (idempotent; also run when the test ends).
func recordedSim(t *testing.T, url string) (*sim.Sim, time.Time, func()) {
	t.Helper()
	s, err := sim.New("127.0.0.1:0", sim.Config{Symbols: []sim.Symbol{{Name: "BTCUSDT", Price: 27123.45}}, Seed: 7, TradeEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.Step(20)
	fc := &daemon.Config{NATS: daemon.NATSConfig{URLs: []string{url}}, MetricsListen: "127.0.0.1:0", StatusInterval: 100 * time.Millisecond,
		Record: &record.Config{CheckpointInterval: 100 * time.Millisecond},
		Venues: []daemon.VenueConfig{{Name: "binance", WSURL: s.SpotWS(), RESTURL: s.SpotREST(), Instruments: []string{"btcusdt"}, SilenceTimeout: time.Minute}}}
	if err := fc.Validate(); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(context.Background())
	fdone := make(chan error, 1)
	go func() { fdone <- daemon.Run(fctx, fc, nil, nil) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-fdone; err != nil {
			t.Errorf("feed: %v", err)
		}
	})
	t.Cleanup(stop)
	began := time.Now()
	for range 100 {
		s.Step(2)
		time.Sleep(10 * time.Millisecond) // the recording's clock is the wall clock: spread it
	}
	return s, began, stop
}
