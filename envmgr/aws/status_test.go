package aws

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/sandbox/client"
)

// TestHeartbeatsSupervise: an AWS node's heartbeats are its status. No beat
// yet is no news; a running beat carries the node's health; a node silent
// past NodeBeatTimeout is reported not ready with that reason (not
// restarted); a stopping beat means not running, so the reconciler starts
// it again. On the first wave's code AWS nodes had no status at all.
func TestHeartbeatsSupervise(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{})
	nc := natstest.Connect(t, ns.ClientURL())
	p := &Provisioner{cfg: Config{NodeBeatTimeout: 200 * time.Millisecond}, nc: nc, beats: map[string]beat{}}
	var err error
	if p.beatsSub, err = nc.Subscribe(client.StatusSubject("*"), p.onBeat); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pub := natstest.Connect(t, ns.ClientURL())
	send := func(st client.NodeStatus) {
		raw, _ := json.Marshal(st)
		if err := pub.Publish(client.StatusSubject(st.Env), raw); err != nil {
			t.Fatal(err)
		}
		_ = pub.Flush()
		_ = nc.Flush() // the subscriber has processed what was sent before its PONG
	}
	status := func() (bool, []string, bool) {
		st, err := p.Status(t.Context(), "n1")
		if err != nil {
			t.Fatal(err)
		}
		if st.Health == nil {
			return st.Running, nil, false
		}
		return st.Running, st.Health.Reasons, st.Health.Ready
	}
	if running, reasons, _ := status(); !running || reasons != nil {
		t.Fatalf("before any beat: running %v, reasons %v", running, reasons)
	}
	send(client.NodeStatus{Env: "n1", State: client.NodeRunning, Health: &client.Health{Ready: true, Books: 1, BooksLive: 1}})
	waitFor(t, func() bool { _, _, ready := status(); return ready })
	// Another environment's beat on n1's subject is ignored.
	raw, _ := json.Marshal(client.NodeStatus{Env: "n2", State: client.NodeStopping})
	_ = pub.Publish(client.StatusSubject("n1"), raw)
	_ = pub.Flush()
	if running, _, ready := status(); !running || !ready {
		t.Fatal("a beat about n2 on n1's subject changed n1")
	}
	// Silence.
	waitFor(t, func() bool {
		_, reasons, ready := status()
		return !ready && len(reasons) > 0 && strings.HasPrefix(reasons[0], "no heartbeat from the node for")
	})
	// Stopping.
	send(client.NodeStatus{Env: "n1", State: client.NodeStopping})
	waitFor(t, func() bool { running, _, _ := status(); return !running })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond) // heartbeats arrive asynchronously
	}
}
