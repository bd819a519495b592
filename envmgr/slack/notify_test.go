package slack_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/slack"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestConfigRefusesWhatWouldNotWork(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  slack.Config
		want string
	}{
		{"plain http to a remote host", slack.Config{Default: slack.Route{Webhook: "http://hooks.example.com/x"}}, "want https"},
		{"not a URL", slack.Config{Default: slack.Route{Webhook: "hooks.slack.com/services/x"}}, "not a webhook URL"},
		{"credentials in the URL", slack.Config{Owners: map[string]slack.Owner{"a": {Route: slack.Route{Webhook: "https://u:p@hooks.slack.com/x"}}}}, "not a webhook URL"},
		{"unknown zone", slack.Config{Owners: map[string]slack.Owner{"a": {TimeZone: "Mars/Olympus"}}}, "not an IANA zone"},
		{"one slack user for two owners", slack.Config{Owners: map[string]slack.Owner{"a": {SlackUser: "U1"}, "b": {SlackUser: "U1"}}}, "is also"},
		{"negative give-up", slack.Config{GiveUpAfter: -time.Second}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	ok := slack.Config{Default: slack.Route{Webhook: "https://hooks.slack.com/services/T/B/X"},
		Owners: map[string]slack.Owner{"a": {Route: slack.Route{Webhook: "http://127.0.0.1:9/x"}, TimeZone: "Asia/Tokyo", SlackUser: "U1"}}}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestRoutingAndRefusal: an owner's route wins over the default; a 4xx is
// the receiver's final answer (not retried, counted), and an owner with no
// route and no default is counted unrouted.
func TestRoutingAndRefusal(t *testing.T) {
	var dflt, alice atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/default":
			dflt.Add(1)
		case "/alice":
			alice.Add(1)
		default:
			http.Error(w, "no_service", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	n, err := slack.New(slack.Config{Default: slack.Route{Webhook: srv.URL + "/default"}, Owners: map[string]slack.Owner{
		"alice": {Route: slack.Route{Webhook: srv.URL + "/alice"}}, "carol": {Route: slack.Route{Webhook: srv.URL + "/gone"}}}},
		slack.Options{Metrics: slack.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.Run(t.Context()) }()
	done := make(chan error, 3)
	for _, owner := range []string{"alice", "bob", "carol"} {
		n.Notify(envmgr.Event{Kind: envmgr.EventReady, Env: owner + "-env", Owner: owner, Deadline: time.Now()}, func(err error) { done <- err })
	}
	var refused int
	for range 3 {
		if err := <-done; err != nil {
			if !strings.Contains(err.Error(), "refused") {
				t.Fatal(err)
			}
			refused++
		}
	}
	if refused != 1 || dflt.Load() != 1 || alice.Load() != 1 {
		t.Fatalf("refused %d, default %d, alice %d", refused, dflt.Load(), alice.Load())
	}
	if got := testutil.ToFloat64(n.MetricsFailed("refused")); got != 1 {
		t.Fatalf("refused counted %v", got)
	}
}
