package slack_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/natskv"
	"github.com/paddockhq/paddock/envmgr/slack"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
)

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

const envSpec = `version: 1
environment: {name: %s}
exchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]
market_data: {mode: live}
risk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}
strategy: {binary: s}
ttl_hours: 24
`

type commandRig struct {
	clk     *clock.Fake
	store   *natskv.Store
	mgr     *envmgr.Manager
	servers []*httptest.Server // two replicas, one nonce store
}

func newCommandRig(t testing.TB) *commandRig {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	// The signature check also runs on the wall clock inside slack-go, so
	// the fake clock starts at the real time.
	g := &commandRig{clk: clock.NewFake(time.Now().Truncate(time.Second))}
	var err error
	g.store, err = natskv.Open(t.Context(), natstest.Connect(t, ns.ClientURL()), natskv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g.mgr = envmgr.NewManager(g.store, g.clk.Now, nil)
	path := filepath.Join(t.TempDir(), "signing-secret")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := slack.Config{SigningSecretFile: path, Owners: map[string]slack.Owner{
		"alice": {SlackUser: "U0ALICE"}, "bob": {SlackUser: "U0BOB"}}}
	for range 2 {
		store, err := natskv.Open(t.Context(), natstest.Connect(t, ns.ClientURL()), natskv.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := slack.NewCommand(cfg, envmgr.NewManager(store, g.clk.Now, nil), store, g.clk, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(cmd)
		t.Cleanup(srv.Close)
		g.servers = append(g.servers, srv)
	}
	for _, o := range []string{"alice", "bob"} {
		if _, err := g.mgr.Create(t.Context(), envmgr.Actor{Name: o}, envmgr.CreateRequest{SpecYAML: []byte(fmt.Sprintf(envSpec, o+"-env"))}); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// signed is a slash command request as Slack signs it.
type signed struct {
	body      string
	timestamp string
	signature string
}

func sign(at time.Time, user, text, key string) signed {
	body := url.Values{"command": {"/paddock"}, "user_id": {user}, "text": {text}, "team_id": {"T1"}}.Encode()
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	return signed{body: body, timestamp: ts, signature: "v0=" + hex.EncodeToString(mac.Sum(nil))}
}

func (g *commandRig) send(t testing.TB, replica int, s signed) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, g.servers[replica].URL, strings.NewReader(s.body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", s.timestamp)
	req.Header.Set("X-Slack-Signature", s.signature)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		var m struct {
			ResponseType string `json:"response_type"`
			Text         string `json:"text"`
		}
		if err := json.Unmarshal(raw, &m); err != nil || m.ResponseType != "ephemeral" {
			t.Fatalf("reply %s: want an ephemeral message", raw)
		}
		return resp.StatusCode, m.Text
	}
	return resp.StatusCode, string(raw)
}

func TestSlashCommand(t *testing.T) {
	g := newCommandRig(t)
	before, _, _ := g.store.Get(t.Context(), "alice-env")
	for _, tc := range []struct {
		name    string
		req     func() signed
		code    int
		want    string
		extends bool
	}{
		{"extend own environment", func() signed { return sign(g.clk.Now(), "U0ALICE", "extend alice-env 12", secret) }, 200, "extended by 12h", true},
		{"default is 24 hours", func() signed { return sign(g.clk.Now().Add(-time.Second), "U0ALICE", "extend alice-env", secret) }, 200, "extended by 24h", true},
		{"someone else's environment", func() signed { return sign(g.clk.Now(), "U0ALICE", "extend bob-env", secret) }, 200, "no environment called `bob-env`", false},
		{"unknown slack user", func() signed { return sign(g.clk.Now(), "U0MALLORY", "extend alice-env", secret) }, 200, "not mapped to an owner", false},
		{"beyond 96h waits for an admin", func() signed { return sign(g.clk.Now(), "U0ALICE", "extend alice-env 100", secret) }, 200, "waits for an admin", false},
		{"bad hours", func() signed { return sign(g.clk.Now(), "U0ALICE", "extend alice-env -3", secret) }, 200, "whole number from 1", false},
		{"bad name", func() signed { return sign(g.clk.Now(), "U0ALICE", "extend ../../etc", secret) }, 200, "not an environment name", false},
		{"help", func() signed { return sign(g.clk.Now(), "U0ALICE", "", secret) }, 200, "Usage", false},
		{"wrong secret", func() signed { return sign(g.clk.Now(), "U0ALICE", "extend alice-env", "not-the-secret-at-all") }, 401, "invalid request signature", false},
		{"tampered body", func() signed {
			s := sign(g.clk.Now(), "U0ALICE", "extend alice-env 1", secret)
			s.body = strings.Replace(s.body, "alice-env+1", "alice-env+90", 1)
			return s
		}, 401, "invalid request signature", false},
		{"older than 5 minutes", func() signed {
			return sign(g.clk.Now().Add(-5*time.Minute-time.Second), "U0ALICE", "extend alice-env", secret)
		}, 401, "more than 5 minutes", false},
		{"from the future", func() signed { return sign(g.clk.Now().Add(6*time.Minute), "U0ALICE", "extend alice-env", secret) }, 401, "more than 5 minutes", false},
		{"no signature", func() signed {
			s := sign(g.clk.Now(), "U0ALICE", "extend alice-env", secret)
			s.signature = ""
			return s
		}, 401, "invalid request signature", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev, _, _ := g.store.Get(t.Context(), "alice-env")
			code, msg := g.send(t, 0, tc.req())
			if code != tc.code || !strings.Contains(msg, tc.want) {
				t.Fatalf("%d %q, want %d %q", code, msg, tc.code, tc.want)
			}
			now, _, _ := g.store.Get(t.Context(), "alice-env")
			if moved := !now.ExpiresAt.Equal(prev.ExpiresAt); moved != tc.extends {
				t.Fatalf("deadline moved: %v, want %v", moved, tc.extends)
			}
		})
	}
	after, _, _ := g.store.Get(t.Context(), "alice-env")
	if want := before.ExpiresAt.Add(36 * time.Hour); !after.ExpiresAt.Equal(want) {
		t.Fatalf("deadline %s, want %s", after.ExpiresAt, want)
	}
	audit, _ := g.store.Audit(t.Context(), "alice-env")
	var slackExt int
	for _, a := range audit {
		if a.Action == "extend" && a.Via == "slack" && a.Actor == "alice" && strings.Contains(a.Detail, "new deadline") {
			slackExt++
		}
	}
	if slackExt != 2 {
		t.Fatalf("%d extensions audited as alice via slack, want 2: %+v", slackExt, audit)
	}
}

// TestSlashCommandReplay: a valid request is accepted once; sent again,
// to the same replica or another, within its five minutes, it is refused.
func TestSlashCommandReplay(t *testing.T) {
	g := newCommandRig(t)
	s := sign(g.clk.Now(), "U0ALICE", "extend alice-env 1", secret)
	if code, msg := g.send(t, 0, s); code != 200 || !strings.Contains(msg, "extended") {
		t.Fatalf("first: %d %s", code, msg)
	}
	for replica := range 2 {
		if code, msg := g.send(t, replica, s); code != 401 || !strings.Contains(msg, "already received") {
			t.Fatalf("replay to replica %d: %d %s", replica, code, msg)
		}
	}
	e, _, _ := g.store.Get(t.Context(), "alice-env")
	if e.TTLHours != 25 {
		t.Fatalf("ttl %dh after one extension and two replays, want 25h", e.TTLHours)
	}
}
