package daemon

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigIsValid(t *testing.T) {
	c, err := LoadConfig("../feed.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Venues) != 2 || c.Venues[0].WSURL != "wss://stream.binance.com:9443" || c.Venues[1].Binance.TradeStream != "aggTrade" ||
		c.Venues[0].MaxConnectionAge != 23*time.Hour || c.NATS.Embedded.Listen != "127.0.0.1:4222" {
		t.Fatalf("unexpected config: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown field", "venues: [{name: binance, instruments: [btcusdt], instrumnets: [x]}]", "field instrumnets not found"},
		{"no venues", "metrics_listen: :9000", "at least one venue"},
		{"unknown venue", "venues: [{name: kraken, instruments: [xbtusd]}]", `unknown venue "kraken"`},
		{"upper-case symbol", "venues: [{name: binance, instruments: [BTCUSDT]}]", `instrument "BTCUSDT"`},
		{"dotted symbol", "venues: [{name: binance, instruments: [btc.usdt]}]", `instrument "btc.usdt"`},
		{"bad event", "venues: [{name: binance, instruments: [btcusdt], events: [quotes]}]", `event "quotes"`},
		{"duplicate venue", "venues: [{name: binance, instruments: [a]}, {name: binance, instruments: [b]}]", "listed twice"},
		{"bad duration", "status_interval: soon\nvenues: [{name: binance, instruments: [a]}]", "cannot unmarshal"},
		{"all problems at once", "venues: [{name: binance, instruments: [BAD, b.c], events: [x]}]", `event "x"`},
		{"flat binance key (first wave)", "venues: [{name: binance, instruments: [a], trade_stream: aggTrade}]", "moved into the venue's binance: section"},
		{"bad trade stream", "venues: [{name: binance, instruments: [a], binance: {trade_stream: trades}}]", `binance.trade_stream "trades"`},
		{"too many streams", "venues: [{name: binance, instruments: [a], binance: {max_streams_per_connection: 5000}}]", "want 1 to 1024"},
		{"bybit depth 500 on spot", "venues: [{name: bybit, instruments: [a], bybit: {depth: 500}}]", "bybit.depth 500"},
		{"binance section on bybit", "venues: [{name: bybit-perp, instruments: [a], binance: {trade_stream: trade}}]", "a binance section, but bybit-perp is not a Binance venue"},
		{"bybit section on binance", "venues: [{name: binance, instruments: [a], bybit: {depth: 50}}]", "a bybit section, but binance is not a Bybit venue"},
		{"instance without wire id", "venues: [{name: binance-b, kind: binance, ws_url: ws://x, rest_url: http://x, instruments: [a]}]", "needs a wire_id from 1024 up"},
		{"instance with a registry id", "venues: [{name: binance-b, kind: binance, wire_id: 5, ws_url: ws://x, rest_url: http://x, instruments: [a]}]", "needs a wire_id from 1024 up"},
		{"two instances, one id", "venues: [{name: b1, kind: binance, wire_id: 2000, ws_url: ws://x, rest_url: http://x, instruments: [a]}, {name: b2, kind: bybit-perp, wire_id: 2000, ws_url: ws://y, instruments: [a]}]", "wire_id 2000 is another venue's"},
		{"instance of an unknown kind", "venues: [{name: k1, kind: kraken, wire_id: 2000, ws_url: ws://x, instruments: [a]}]", `unknown venue "kraken"`},
		{"instance named like a registry venue", "venues: [{name: bybit, kind: binance, wire_id: 2000, ws_url: ws://x, rest_url: http://x, instruments: [a]}]", "is a registry venue's"},
		{"instance name not a token", "venues: [{name: b.1, kind: binance, wire_id: 2000, ws_url: ws://x, rest_url: http://x, instruments: [a]}]", `instance name "b.1"`},
		{"instance without endpoints", "venues: [{name: b1, kind: binance, wire_id: 2000, instruments: [a]}]", "names its endpoints"},
		{"wire id on a registry venue", "venues: [{name: binance, wire_id: 2000, instruments: [a]}]", "wire_id is for instances"},
		{"unknown binance key", "venues: [{name: binance, instruments: [a], binance: {depth: 5}}]", "field depth not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
	_, err := ParseConfig([]byte("venues: [{name: binance, instruments: [BAD, b.c], events: [x]}]"))
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Fatalf("want 3 problems reported together, got %d:\n%v", n, err)
	}
	if _, err := LoadConfig("does-not-exist.yaml"); !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
