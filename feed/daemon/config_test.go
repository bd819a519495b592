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
