package aws

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/sandbox"
)

// TestModuleVars: the module's variables carry references to secrets, never
// values; CreatedAt is the environment's, so re-plans have no diff.
func TestModuleVars(t *testing.T) {
	s, err := spec.Parse([]byte(`version: 1
environment: {name: e1}
exchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]
market_data: {mode: live}
risk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}
strategy: {binary: s}
`), spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC)
	e := envmgr.Environment{Name: "e1", Owner: "alice", PRNumber: 42, TTLHours: 48, CreatedAt: created}
	c := Config{VPCID: "vpc-1", SubnetID: "subnet-1", VPNCIDR: "10.8.0.0/16", AMI: "ami-1", PaddockURL: "https://a/p",
		PaddockSHA256: "abc", NodeNATSURL: "nats://nats.dev:4222"}
	v1, err := moduleVars(c, e, s, testArtifact)
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := moduleVars(c, e, s, testArtifact)
	a, _ := json.Marshal(v1)
	b, _ := json.Marshal(v2)
	if string(a) != string(b) || v1["created_at"] != "2026-11-23T01:02:03Z" || v1["pr_number"] != 42 {
		t.Fatalf("vars %s", a)
	}
	var nc sandbox.Config
	if err := json.Unmarshal([]byte(v1["node_config_json"].(string)), &nc); err != nil {
		t.Fatal(err)
	}
	if nc.NATSCreds != "/etc/paddock/node.creds" || nc.InboxPrefix != "_INBOX_e1" || nc.APIKeyFile == "" || nc.Risk.MaxPositionUSD != "1000" ||
		nc.Instruments[0].Quote != "USDT" || v1["nats_creds_secret"] != "/dev-envs/e1/nats-creds" {
		t.Fatalf("node config %+v", nc)
	}
	if strings.Contains(string(a), "BEGIN NATS") || strings.Contains(string(a), "SUAK") {
		t.Fatal("a secret value in the module's variables")
	}
	if _, err := moduleVars(c, envmgr.Environment{Name: "e2"}, s, testArtifact); err == nil {
		t.Fatal("an environment without a creation time")
	}
}

// testArtifact stands for an uploaded strategy in tests of the variables.
var testArtifact = &strategyArtifact{sha: strings.Repeat("0f", 32)}
