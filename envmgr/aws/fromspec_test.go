package aws

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/local"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/internal/testnode"
	"github.com/paddockhq/paddock/sandbox"
)

// TestNodeConfigIsTheSameEverywhere: for one spec, the node the local
// provisioner starts and the node the AWS module boots get the same risk
// limits, instruments, fees, USD rates and staleness limit; only where they
// run differs. The first wave's AWS translation had diverged (no USD rates,
// no staleness setting).
func TestNodeConfigIsTheSameEverywhere(t *testing.T) {
	raw := []byte(`version: 1
environment: {name: same}
exchanges:
  - {name: binance, type: spot, sandbox: true, instruments: [BTC/USDT, ETH/BTC]}
  - {name: binance, type: perpetual, sandbox: true, instruments: [BTCUSDT]}
market_data: {mode: live}
risk_config: {max_position_usd: 750.5, max_drawdown_pct: 2.5, max_order_rate: 3, starting_equity_usd: 25000}
strategy: {binary: s}
`)
	s, err := spec.Parse(raw, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rates, stale := map[string]string{"BTC": "60000"}, 7
	e := envmgr.Environment{Name: "same", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}

	vars, err := moduleVars(Config{NodeNATSURL: "nats://10.0.0.1:4222", USDRates: rates, FeedStaleSeconds: stale}, e, s, testArtifact)
	if err != nil {
		t.Fatal(err)
	}
	var onAWS sandbox.Config
	if err := json.Unmarshal([]byte(vars["node_config_json"].(string)), &onAWS); err != nil {
		t.Fatal(err)
	}

	ns := natstest.Server(t, embednats.Options{})
	dir := t.TempDir()
	p, err := local.New(local.Config{StateDir: dir, NATSURL: ns.ClientURL(), Command: testnode.Command, ReadyTimeout: time.Nanosecond,
		USDRates: rates, FeedStaleSeconds: stale})
	if err != nil {
		t.Fatal(err)
	}
	defer p.StopAll(t.Context())
	if _, err := p.Provision(t.Context(), e, s); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(filepath.Join(dir, "same", "node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var onLocal sandbox.Config
	if err := json.Unmarshal(written, &onLocal); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what       string
		local, aws any
	}{
		{"risk", onLocal.Risk, onAWS.Risk},
		{"instruments", onLocal.Instruments, onAWS.Instruments},
		{"fees", onLocal.Fees, onAWS.Fees},
		{"usd rates", onLocal.USDRates, onAWS.USDRates},
		{"feed staleness", onLocal.FeedStaleSeconds, onAWS.FeedStaleSeconds},
	} {
		if !reflect.DeepEqual(c.local, c.aws) {
			t.Errorf("%s: local %+v, AWS %+v", c.what, c.local, c.aws)
		}
	}
	if onAWS.Risk.StartingEquityUSD != "25000" || len(onAWS.Instruments) != 3 || onAWS.Instruments[1].Quote != "BTC" || onAWS.USDRates["BTC"] != "60000" {
		t.Errorf("AWS node config %+v", onAWS)
	}
}

func TestMain(m *testing.M) {
	testnode.MaybeRun()
	os.Exit(m.Run())
}
