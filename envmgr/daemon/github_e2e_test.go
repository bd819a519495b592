package daemon

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/api"
	"github.com/paddockhq/paddock/envmgr/github"
	"github.com/paddockhq/paddock/internal/testnode"
)

const hooksDir = "../../../shared/reference/github/webhooks"

// ghRig is the manager with the pull-request integration, GitHub's stand-in
// and the real webhook deliveries (GitHub's own examples), signed here.
type ghRig struct {
	t      *testing.T
	gh     *ghStandIn
	base   string // the manager's API
	secret []byte
	seq    atomic.Int64
	root   *api.Client
}

func newGHRig(t *testing.T) *ghRig {
	if _, err := os.Stat(hooksDir); err != nil {
		t.Skipf("GitHub's example webhook deliveries are not here (%s): this test needs ../shared/reference/github/webhooks", hooksDir)
	}
	dir := t.TempDir()
	ns, authDir := operatorNATS(t, dir)
	g := &ghRig{t: t, gh: newGHStandIn(t), secret: []byte("webhook-secret-0123456789")}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := &github.Config{APIURL: g.gh.srv.URL + "/", WebhookSecretFile: write("hook-secret", string(g.secret)),
		TokenFile: write("gh-token", "ghs_test_token"), Repos: []string{"Codertocat/Hello-World"}}
	tokens, _ := api.NewTokens([]api.Token{{Name: "root", Role: "admin", SHA256: api.HashToken("r")},
		{Name: "ci", Role: "integration", SHA256: api.HashToken("ci")}, {Name: "dev", Role: "developer", SHA256: api.HashToken("d")}})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{NoFeedCheck: true, NATSURL: ns.ClientURL(), Listen: "127.0.0.1:0", StateDir: filepath.Join(dir, "state"), Tokens: tokens,
			AuthDir: authDir, NodeCommand: testnode.Command, NodeReadyTimeout: 200 * time.Millisecond, ReconcileEvery: 200 * time.Millisecond, GitHub: cfg},
			nil, func(s Started) { started <- s.APIURL })
	}()
	select {
	case g.base = <-started:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	g.root = &api.Client{BaseURL: g.base, Token: "r"}
	return g
}

// payload is one of GitHub's example deliveries with edits applied.
func (g *ghRig) payload(file string, edit func(map[string]any)) []byte {
	raw, err := os.ReadFile(filepath.Join(hooksDir, file))
	if err != nil {
		g.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		g.t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	out, _ := json.Marshal(m)
	return out
}

// deliver posts a delivery as GitHub does (signed, with its event and
// delivery headers); delivery "" gets a fresh id.
func (g *ghRig) deliver(event, delivery string, body []byte, sign bool) (int, string) {
	g.t.Helper()
	if delivery == "" {
		delivery = fmt.Sprintf("d-%d", g.seq.Add(1))
	}
	req, _ := http.NewRequest("POST", g.base+"/v1/github/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	if sign {
		mac := hmac.New(sha256.New, g.secret)
		mac.Write(body)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// pr sets a pull_request delivery's number, head, draft flag, fork and
// author; the stand-in serves the same PR.
func (g *ghRig) pr(file string, number int, sha string, draft bool, headRepo, author string, more func(map[string]any)) []byte {
	return g.payload(file, func(m map[string]any) {
		m["number"] = number
		p := m["pull_request"].(map[string]any)
		p["number"], p["draft"] = number, draft
		p["user"].(map[string]any)["login"] = author
		head := p["head"].(map[string]any)
		head["sha"], head["ref"] = sha, fmt.Sprintf("feature-%d", number)
		head["repo"].(map[string]any)["full_name"] = headRepo
		if more != nil {
			more(m)
		}
		g.gh.mu.Lock()
		g.gh.prs[number] = p
		g.gh.mu.Unlock()
	})
}

func (g *ghRig) comment(number int, user, association, body string) []byte {
	return g.payload("issue_comment_created.payload.json", func(m map[string]any) {
		is := m["issue"].(map[string]any)
		is["number"] = number
		is["pull_request"] = map[string]any{"url": fmt.Sprintf("https://api.github.com/repos/Codertocat/Hello-World/pulls/%d", number)}
		c := m["comment"].(map[string]any)
		c["id"], c["body"], c["author_association"] = 500000+g.seq.Add(1), body, association
		c["user"].(map[string]any)["login"] = user
	})
}

func (g *ghRig) env(name string) (envmgr.Environment, bool) {
	e, _, err := g.root.Get(context.Background(), name)
	return e, err == nil
}

func (g *ghRig) waitFor(what string, cond func() bool) {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			resp, err := http.Get(g.base + "/metrics")
			var m []byte
			if err == nil {
				m, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			var work []string
			for _, l := range strings.Split(string(m), "\n") {
				if strings.HasPrefix(l, "paddock_github_") {
					work = append(work, l)
				}
			}
			g.t.Fatalf("timed out waiting for %s\nmetrics: %v\ncomment on #2:\n%s", what, work, g.gh.body(2))
		}
		time.Sleep(20 * time.Millisecond) // polling: the manager and the worker run on their own
	}
}

const prSpec = `version: 1
exchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]
market_data: {mode: live}
risk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}
strategy: {binary: strategy.sh}
ttl_hours: 24
`

// TestPullRequestEnvironments drives the integration with GitHub's own
// example deliveries against the stand-in: a PR's environment comes up
// from its head commit (built from the commit's tarball, the artifact's
// digest audited), follows 20 pushes with one comment, answers slash
// commands by permission, leaves drafts and forks to a maintainer, survives
// GitHub's rate limit, and is destroyed on merge.
func TestPullRequestEnvironments(t *testing.T) {
	g := newGHRig(t)
	sha := g.gh.commit(map[string]string{".dev-env.yaml": prSpec, "strategy.sh": "#!/bin/sh\nexec sleep 3600\n"})

	// ping, and hostile deliveries.
	if code, _ := g.deliver("ping", "", g.payload("ping_payload.json", nil), true); code != 200 {
		t.Fatalf("ping: %d", code)
	}
	opened := g.pr("pull_request_opened.payload.json", 2, sha, false, "Codertocat/Hello-World", "Codertocat", nil)
	for _, h := range []struct {
		name  string
		body  []byte
		sign  bool
		tweak func([]byte) []byte
		code  int
	}{
		{"unsigned", opened, false, nil, 401},
		{"wrong signature", opened, true, func(b []byte) []byte { return append(bytes.Clone(b), ' ') }, 401},
		{"malformed JSON", []byte(`{"action": "opened", "pull_request": `), true, nil, 400},
		{"oversized", bytes.Repeat([]byte("x"), 6<<20), true, nil, 413},
	} {
		body := h.body
		code := 0
		if h.tweak != nil { // signed, then changed in transit
			req, _ := http.NewRequest("POST", g.base+"/v1/github/webhook", bytes.NewReader(h.tweak(body)))
			mac := hmac.New(sha256.New, g.secret)
			mac.Write(body)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "pull_request")
			req.Header.Set("X-GitHub-Delivery", "tampered")
			req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			code = resp.StatusCode
		} else {
			code, _ = g.deliver("pull_request", "", body, h.sign)
		}
		if code != h.code {
			t.Errorf("%s: %d, want %d", h.name, code, h.code)
		}
	}

	// Opened: an environment from the head commit, one comment, a status.
	if code, _ := g.deliver("pull_request", "open-2", opened, true); code != 202 {
		t.Fatalf("opened: %d", code)
	}
	if code, body := g.deliver("pull_request", "open-2", opened, true); code != 200 || !strings.Contains(body, "duplicate") {
		t.Fatalf("redelivery: %d %s", code, body)
	}
	g.waitFor("pr-2 up", func() bool { e, ok := g.env("pr-2"); return ok && e.State == nodeUp })
	e, _ := g.env("pr-2")
	if e.Owner != "Codertocat" || e.Repo != "Codertocat/Hello-World" || e.CommitSHA != sha || e.DeployedSHA != sha || e.PRNumber != 2 {
		t.Fatalf("pr-2: %+v", e)
	}
	g.waitFor("the comment to show the node", func() bool { return strings.Contains(g.gh.body(2), "Node admin API") })
	audit, _ := g.root.Audit(context.Background(), "pr-2")
	var chain []string
	for _, a := range audit {
		if a.Action == "artifact" && a.CommitSHA == sha && strings.Contains(a.Detail, "Codertocat/Hello-World@"+sha+": sha256 ") {
			chain = append(chain, a.Action)
		}
	}
	if len(chain) != 1 {
		t.Fatalf("the artifact's digest is not audited with its commit: %+v", audit)
	}

	// 20 pushes: one comment, the environment on the last commit.
	var last string
	for n := range 20 {
		last = g.gh.commit(map[string]string{"README.md": fmt.Sprintf("push %d\n", n)})
		if code, _ := g.deliver("pull_request", "", g.pr("pull_request_synchronize.payload.json", 2, last, false, "Codertocat/Hello-World", "Codertocat", nil), true); code != 202 {
			t.Fatalf("push %d: %d", n, code)
		}
	}
	g.waitFor("pr-2 redeployed from the last push", func() bool {
		e, ok := g.env("pr-2")
		return ok && e.DeployedSHA == last && e.State == nodeUp
	})
	g.waitFor("the comment to show the last push", func() bool { return strings.Contains(g.gh.body(2), "`"+last[:7]+"`") })
	if cs := g.gh.paddockComments(2); len(cs) != 1 || g.gh.creates[2] != 1 {
		t.Fatalf("%d paddock comments (%d created) after 20 pushes, want 1", len(cs), g.gh.creates[2])
	}

	// Slash commands: the author extends, a stranger is refused, a
	// collaborator (by the permission API) stops it.
	g.gh.perms["bob"] = "write"
	before, _ := g.env("pr-2")
	for _, c := range []struct{ user, assoc, body, want string }{
		{"Codertocat", "NONE", "/paddock extend 2", "@Codertocat extended it by 2h"},
		{"mallory", "NONE", "/paddock destroy", "@mallory: sorry"},
		{"bob", "NONE", "/paddock stop", "@bob: `/paddock stop` accepted"},
	} {
		if code, _ := g.deliver("issue_comment", "", g.comment(2, c.user, c.assoc, c.body), true); code != 202 {
			t.Fatalf("%s: %d", c.body, code)
		}
		g.waitFor(c.want, func() bool { return strings.Contains(g.gh.body(2), c.want) })
	}
	g.waitFor("pr-2 stopped", func() bool { e, _ := g.env("pr-2"); return e.State == envmgr.StateStopped })
	g.waitFor("the comment to show it stopped", func() bool { return strings.Contains(g.gh.body(2), "paddock environment `pr-2`: stopped") })
	if after, _ := g.env("pr-2"); !after.ExpiresAt.Equal(before.ExpiresAt.Add(2 * time.Hour)) {
		t.Fatalf("deadline %s, want %s", after.ExpiresAt, before.ExpiresAt.Add(2*time.Hour))
	}
	g.gh.mu.Lock()
	reactions := strings.Join(g.gh.reactions, " ")
	g.gh.mu.Unlock()
	if strings.Count(reactions, ":+1") != 2 || strings.Count(reactions, ":-1") != 1 {
		t.Fatalf("reactions %s", reactions)
	}

	// An invalid .dev-env.yaml: the comment has env validate's errors, with
	// their lines.
	bad := g.gh.commit(map[string]string{".dev-env.yaml": strings.Replace(prSpec, "max_drawdown_pct: 5", "max_drawdown_pct: lots", 1)})
	g.deliver("pull_request", "", g.pr("pull_request_opened.payload.json", 5, bad, false, "Codertocat/Hello-World", "Codertocat", nil), true)
	g.waitFor("the invalid spec's comment", func() bool {
		b := g.gh.body(5)
		return strings.Contains(b, "is invalid") && strings.Contains(b, ".dev-env.yaml: line 4") && strings.Contains(b, "max_drawdown_pct")
	})
	if _, ok := g.env("pr-5"); ok {
		t.Fatal("an invalid spec was provisioned")
	}

	// Draft and fork PRs are not provisioned; a fork's author cannot start
	// it, a maintainer can.
	if code, _ := g.deliver("pull_request", "", g.pr("pull_request_opened.payload.json", 3, sha, true, "Codertocat/Hello-World", "Codertocat", nil), true); code != 202 {
		t.Fatal("draft")
	}
	if code, _ := g.deliver("pull_request", "", g.pr("pull_request_opened.payload.json", 4, sha, false, "mallory/Hello-World", "mallory", nil), true); code != 202 {
		t.Fatal("fork")
	}
	g.waitFor("the draft's comment", func() bool { return strings.Contains(g.gh.body(3), "it is a draft") })
	g.waitFor("the fork's comment", func() bool { return strings.Contains(g.gh.body(4), "comes from a fork") })
	if _, ok := g.env("pr-3"); ok {
		t.Fatal("a draft PR was provisioned")
	}
	if _, ok := g.env("pr-4"); ok {
		t.Fatal("a fork's PR was provisioned")
	}
	g.deliver("issue_comment", "", g.comment(4, "mallory", "CONTRIBUTOR", "/paddock up"), true)
	g.waitFor("the fork author refused", func() bool { return strings.Contains(g.gh.body(4), "started by a maintainer") })
	if _, ok := g.env("pr-4"); ok {
		t.Fatal("the fork's author started an environment")
	}

	// GitHub rate-limits the integration, then recovers: the work waits,
	// the lifecycle does not.
	g.gh.mu.Lock()
	g.gh.rateLimited = 3
	g.gh.mu.Unlock()
	g.deliver("issue_comment", "", g.comment(4, "Codertocat", "MEMBER", "/paddock up"), true)
	g.waitFor("the maintainer's /paddock up", func() bool { e, ok := g.env("pr-4"); return ok && e.State == nodeUp })
	g.waitFor("the fork's comment after the rate limit", func() bool { return strings.Contains(g.gh.body(4), "Node admin API") })
	g.gh.mu.Lock()
	hits := g.gh.limitedHits
	g.gh.mu.Unlock()
	if hits == 0 {
		t.Fatal("the rate limit was never hit")
	}

	// Merged: destroyed, and the comment says so and why.
	closed := g.pr("pull_request_closed.payload.json", 2, last, false, "Codertocat/Hello-World", "Codertocat", func(m map[string]any) {
		m["pull_request"].(map[string]any)["merged"] = true
	})
	g.deliver("pull_request", "", closed, true)
	g.waitFor("pr-2 destroyed", func() bool { e, _ := g.env("pr-2"); return e.State == envmgr.StateDestroyed })
	g.waitFor("the comment to say it is destroyed", func() bool {
		b := g.gh.body(2)
		return strings.Contains(b, "paddock environment `pr-2`: destroyed") && strings.Contains(b, "pull request #2 was merged")
	})
	if cs := g.gh.paddockComments(2); len(cs) != 1 {
		t.Fatalf("%d paddock comments on #2 at the end", len(cs))
	}
	// The states were edited into the one comment: coming up, up, stopped,
	// destroyed (a state that lasts less than the worker's turn may be
	// rendered as the one after it: the comment shows the record as it is).
	g.gh.mu.Lock()
	history := strings.Join(g.gh.history[2], "\n")
	g.gh.mu.Unlock()
	said := func(st string) bool { return strings.Contains(history, "paddock environment `pr-2`: "+st) }
	if !said("requested") && !said("provisioning") {
		t.Error("the comment never said the environment was coming up")
	}
	for _, st := range []string{"degraded", "stopped", "destroyed"} {
		if !said(st) {
			t.Errorf("the comment never said %s", st)
		}
	}
	g.gh.mu.Lock()
	var states []string
	for _, s := range g.gh.statuses {
		if s.SHA == sha {
			states = append(states, s.State)
		}
	}
	g.gh.mu.Unlock()
	if len(states) == 0 || states[0] != "pending" {
		t.Fatalf("statuses of the first commit: %v", states)
	}
}

// TestCIModeBuildsThePullRequestsCommit: a workflow's `paddock env up -pr
// -sha -repo -update` (an integration token) gets an environment built from
// that commit's tree, the PR comment and status; a push moves it with
// -update; a developer token may not name a repository.
func TestCIModeBuildsThePullRequestsCommit(t *testing.T) {
	g := newGHRig(t)
	sha := g.gh.commit(map[string]string{".dev-env.yaml": prSpec, "strategy.sh": "#!/bin/sh\nexec sleep 3600\n"})
	ci := &api.Client{BaseURL: g.base, Token: "ci", Via: "cli"}
	ctx := context.Background()
	body := api.CreateBody{SpecYAML: prSpec, PRNumber: 9, Branch: "feature-9", CommitSHA: sha, Repo: "Codertocat/Hello-World"}
	dev := &api.Client{BaseURL: g.base, Token: "d"}
	var se *api.StatusError
	if _, err := dev.Create(ctx, body); !errors.As(err, &se) || se.Status != 403 {
		t.Fatalf("a developer named a repository: %v", err)
	}
	if _, err := ci.Create(ctx, body); err != nil {
		t.Fatal(err)
	}
	g.waitFor("pr-9 up", func() bool { e, ok := g.env("pr-9"); return ok && e.State == nodeUp && e.DeployedSHA == sha })
	g.waitFor("pr-9's comment", func() bool { return strings.Contains(g.gh.body(9), "Node admin API") })
	next := g.gh.commit(map[string]string{"README.md": "next\n"})
	body.CommitSHA = next
	if _, err := ci.Update(ctx, "pr-9", body); err != nil {
		t.Fatal(err)
	}
	g.waitFor("pr-9 on the next commit", func() bool { e, _ := g.env("pr-9"); return e.DeployedSHA == next && e.State == nodeUp })
	audit, _ := g.root.Audit(ctx, "pr-9")
	built := 0
	for _, a := range audit {
		if a.Action == "artifact" && strings.Contains(a.Detail, "Codertocat/Hello-World@") {
			built++
		}
	}
	if built != 2 {
		t.Fatalf("%d builds from the repository's commits audited, want 2", built)
	}
}
