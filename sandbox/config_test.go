package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigBounds: a node configuration whose names would not be subject
// tokens, or whose durations are negative or absurd, is refused with the
// field, before any of it reaches NATS or a timer.
func TestConfigBounds(t *testing.T) {
	base := `{"name":"%s","nats_url":"nats://x","api_key_file":"k","admin_key_file":"a",
"instruments":[{"venue":"%s","symbol":"btcusdt"}],
"risk":{"max_position_usd":"1000","max_drawdown_pct":"5","max_order_rate":"10","starting_equity_usd":"10000","max_mark_age_seconds":%d},
"feed_stale_seconds":%d,"status_every_seconds":%d%s}`
	for _, tc := range []struct {
		name, env, venue     string
		markAge, stale, beat int
		extra, want          string
	}{
		{"fine", "ok", "binance", 10, 3, 5, "", ""},
		{"dotted name", "a.b", "binance", 0, 0, 0, "", "name"},
		{"wildcard venue", "ok", "*", 0, 0, 0, "", "subject tokens"},
		{"negative staleness", "ok", "binance", 0, -1, 0, "", "feed_stale_seconds"},
		{"huge heartbeat", "ok", "binance", 0, 0, 1 << 30, "", "status_every_seconds"},
		{"huge mark age", "ok", "binance", 9999999, 0, 0, "", "max_mark_age_seconds"},
		{"restart backwards", "ok", "binance", 0, 0, 0, `,"strategy":{"command":["x"],"restart_min_ms":5000,"restart_max_ms":10}`, "restart_min_ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.json")
			body := fmt.Sprintf(base, tc.env, tc.venue, tc.markAge, tc.stale, tc.beat, tc.extra)
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
