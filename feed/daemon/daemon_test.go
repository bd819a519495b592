package daemon

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paddockhq/paddock/feed/sim"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/record"
)

// TestRunAgainstSimulator runs the whole daemon from a configuration, as
// `paddock feed` does, against the simulator, and checks a clean shutdown.
func TestRunAgainstSimulator(t *testing.T) {
	sm, err := sim.New("127.0.0.1:0", sim.Config{Symbols: []sim.Symbol{{Name: "BTCUSDT"}, {Name: "BTCUSDT", Futures: true}}, TradeEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	cfg, err := ParseConfig([]byte(`
nats: {embedded: {listen: "127.0.0.1:0", store_dir: "` + t.TempDir() + `"}}
metrics_listen: 127.0.0.1:0
status_interval: 100ms
venues:
  - {name: binance, ws_url: "` + sm.SpotWS() + `", rest_url: "` + sm.SpotREST() + `", instruments: [btcusdt]}
  - {name: binance-perp, ws_url: "` + sm.PerpWS() + `", rest_url: "` + sm.PerpREST() + `", instruments: [btcusdt]}
  - {name: bybit-perp, ws_url: "` + sm.BybitLinearWS() + `", instruments: [btcusdt], bybit: {depth: 200}}
  - {name: binance-us, ws_url: "` + sm.SpotWS() + `", rest_url: "` + sm.SpotREST() + `", instruments: [btcusdt]}
  - {name: binance-b, kind: binance, wire_id: 1024, ws_url: "` + sm.SpotWS() + `", rest_url: "` + sm.SpotREST() + `", instruments: [btcusdt]}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan Started, 1)
	done := make(chan error, 1)
	srv, err := StartNATS(cfg, nil) // the commands start it as a peer; Run only connects
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	go func() { done <- Run(ctx, cfg, nil, func(s Started) { started <- s }) }()
	var st Started
	select {
	case st = <-started:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not started within 10s")
	}
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	books, err := nc.SubscribeSync("market.data.*.btcusdt.orderbook")
	if err != nil {
		t.Fatal(err)
	}
	trades, err := nc.SubscribeSync("market.data.binance-perp.btcusdt.trades")
	if err != nil {
		t.Fatal(err)
	}
	bybitTrades, err := nc.SubscribeSync("market.data.bybit-perp.btcusdt.trades")
	if err != nil {
		t.Fatal(err)
	}
	// binance-us: a second instance of the binance kind, on its own subjects.
	usTrades, err := nc.SubscribeSync("market.data.binance-us.btcusdt.trades")
	if err != nil {
		t.Fatal(err)
	}
	// binance-b: an instance defined only here, with a site-local wire id.
	bTrades, err := nc.SubscribeSync("market.data.binance-b.btcusdt.trades")
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	ready := func() bool {
		resp, err := http.Get(st.MetricsURL + "/readyz")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ready() {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		sm.Step(1) // the books sync once depth events flow
	}
	if resp, err := http.Get(st.MetricsURL + "/metrics"); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "paddock_build_info{") {
			t.Error("the feed's /metrics lacks paddock_build_info")
		}
	}
	sm.Step(20)
	msg, err := trades.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := proto.DecodeTrade(msg.Data); err != nil || tr.Venue() != proto.VenueBinancePerp {
		t.Fatalf("trade: %v %v", tr, err)
	}
	msg, err = bybitTrades.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := proto.DecodeTrade(msg.Data); err != nil || tr.Venue() != proto.VenueBybitPerp {
		t.Fatalf("bybit trade: %v %v", tr, err)
	}
	msg, err = usTrades.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := proto.DecodeTrade(msg.Data); err != nil || tr.Venue() != proto.VenueBinanceUS {
		t.Fatalf("binance-us trade: %v %v", tr, err)
	}
	msg, err = bTrades.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := proto.DecodeTrade(msg.Data); err != nil || tr.Venue() != 1024 {
		t.Fatalf("binance-b trade: %v %v", tr, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15s of cancellation")
	}
	// The last orderbook messages of both venues are shutdown Resets.
	resets := 0
	for {
		msg, err := books.NextMsg(200 * time.Millisecond)
		if err != nil {
			break
		}
		if m, err := proto.Decode(msg.Data); err == nil && m.Type() == proto.TypeReset {
			if r, _ := m.AsReset(); r.Reason() == proto.ResetShutdown {
				resets++
			}
		}
	}
	if resets != 5 {
		t.Fatalf("%d shutdown Resets, want one per venue", resets)
	}
}

// TestOperatorMode runs the embedded server with an authority: the feed
// connects as its own user, an observer can read market data, and an
// anonymous client cannot connect.
func TestOperatorMode(t *testing.T) {
	sm, err := sim.New("127.0.0.1:0", sim.Config{Symbols: []sim.Symbol{{Name: "BTCUSDT"}}, TradeEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	authDir := t.TempDir()
	cfg, err := ParseConfig([]byte(`
nats: {embedded: {listen: "127.0.0.1:0", store_dir: "` + t.TempDir() + `", auth_dir: "` + authDir + `"}}
metrics_listen: 127.0.0.1:0
venues: [{name: binance, ws_url: "` + sm.SpotWS() + `", rest_url: "` + sm.SpotREST() + `", instruments: [btcusdt]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan Started, 1)
	done := make(chan error, 1)
	srv, err := StartNATS(cfg, nil) // the commands start it as a peer; Run only connects
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	go func() { done <- Run(ctx, cfg, nil, func(s Started) { started <- s }) }()
	st := <-started
	if _, err := nats.Connect(st.NATSURL, nats.MaxReconnects(0)); err == nil {
		t.Fatal("anonymous client connected to the operator-mode server")
	}
	obs, err := nats.Connect(st.NATSURL, nats.UserCredentials(authDir+"/observer.creds"))
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	trades, _ := obs.SubscribeSync("market.data.binance.btcusdt.trades")
	_ = obs.Flush()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sm.Step(1)
		if _, err := trades.NextMsg(20 * time.Millisecond); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no trades reached the observer: the feed could not publish as its user")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRunOwnsNoServer: Run only connects; with no NATS URL it says so
// instead of starting a server of its own.
func TestRunOwnsNoServer(t *testing.T) {
	cfg := &Config{MetricsListen: "127.0.0.1:0", Venues: []VenueConfig{{Name: "binance", WSURL: "ws://127.0.0.1:1", RESTURL: "http://127.0.0.1:1", Instruments: []string{"btcusdt"}}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := Run(t.Context(), cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "no NATS URL") {
		t.Fatalf("Run without a URL: %v", err)
	}
}

// TestTheFirstBooksAreRecorded: the recorders subscribe before the feed
// publishes, so the books it first loads are in the recording, indexed:
// a replay can start seconds after the feed did, long before the first
// periodic checkpoint (an hour here).
func TestTheFirstBooksAreRecorded(t *testing.T) {
	sm, err := sim.New("127.0.0.1:0", sim.Config{Symbols: []sim.Symbol{{Name: "BTCUSDT"}}, TradeEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	cfg, err := ParseConfig([]byte(`
nats: {embedded: {listen: "127.0.0.1:0", store_dir: "` + t.TempDir() + `"}}
metrics_listen: 127.0.0.1:0
record: {checkpoint_interval: 1h}
venues:
  - {name: binance, ws_url: "` + sm.SpotWS() + `", rest_url: "` + sm.SpotREST() + `", instruments: [btcusdt]}
`))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := StartNATS(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan Started, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, nil, func(s Started) { started <- s }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	st := <-started
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(15 * time.Second)
	for {
		rs, err := record.Coverage(t.Context(), js, "binance", "btcusdt")
		if err == nil && len(rs) == 1 && !rs[0].Imported {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the feed's first book was not recorded and indexed: %v %v", rs, err)
		}
		sm.Step(1)
		time.Sleep(50 * time.Millisecond) // the feed and the recorder run on their own goroutines
	}
}
