package natsauth

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestPermissionMatrix reads the permission matrix in README.md ("Security:
// who can do what") and tries every cell, publish and subscribe, with every
// credential paddock issues, against a real operator-mode server. On the
// first wave's code the observer could subscribe to _INBOX.>, where the
// manager's JetStream replies (every environment's record) arrive.
func TestPermissionMatrix(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "<!-- permission-matrix -->")
	table, _, ok2 := strings.Cut(table, "<!-- /permission-matrix -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no permission matrix")
	}
	node, err := EnvUser("alpha", []Instrument{{Venue: "binance", Symbol: "btcusdt"}}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	replayNode, err := ReplayEnvUser("gamma", []Instrument{{Venue: "binance", Symbol: "btcusdt"}}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]User{"feed": FeedUser(), "observer": ObserverUser(), "node of alpha": node, "manager": ManagerUser(),
		"replay node of gamma": replayNode}
	r := newRig(t)
	var header []string
	cells := 0
	for _, line := range strings.Split(strings.TrimSpace(table), "\n") {
		cols := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		switch {
		case header == nil:
			header = cols
			continue
		case strings.HasPrefix(cols[0], "---"):
			continue
		}
		subject := strings.Trim(cols[0], "`")
		for i, who := range header[1:] {
			u, ok := users[who]
			if !ok {
				t.Fatalf("unknown credential %q in the matrix", who)
			}
			want := cols[i+1]
			for _, op := range []string{"pub", "sub"} {
				allowed := r.allowed(t, u, op, subject)
				if allowed != strings.Contains(want, op) {
					t.Errorf("%s %s %s: allowed=%v, README says %q", who, op, subject, allowed, want)
				}
				cells++
			}
		}
	}
	if cells < 19*4*2 {
		t.Fatalf("only %d cells checked", cells)
	}
}

// allowed reports whether u may do op (pub or sub) on subject: a fresh
// connection does it and flushes; the server answers a violation before the
// flush's PONG, and nats.go records it as the connection's last error.
func (r *rig) allowed(t *testing.T, u User, op, subject string) bool {
	t.Helper()
	nc, _, _ := r.connect(t, u)
	defer nc.Close()
	var err error
	if op == "pub" {
		err = nc.Publish(subject, []byte("x"))
	} else {
		_, err = nc.SubscribeSync(subject)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", op, subject, err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil && !strings.Contains(err.Error(), "ermission") {
		t.Fatalf("flush: %v", err)
	}
	last := nc.LastError()
	return last == nil || !strings.Contains(strings.ToLower(last.Error()), "permissions violation")
}
