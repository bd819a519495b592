package sandbox

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/paddockhq/paddock/sandbox/client"
)

// TestNodeStatusHeartbeat: a running node reports itself on env.<name>.node
// with its books and halt state, and says when it stops; this is how a
// remote node reports ready to the manager.
func TestNodeStatusHeartbeat(t *testing.T) {
	r := newRig(t, func(c *Config) { c.StatusEverySeconds = 1 })
	sub, err := r.nc.SubscribeSync(client.StatusSubject(envName))
	if err != nil {
		t.Fatal(err)
	}
	next := func() client.NodeStatus {
		t.Helper()
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no heartbeat: %v", err)
		}
		var st client.NodeStatus
		if err := json.Unmarshal(m.Data, &st); err != nil {
			t.Fatalf("heartbeat %q: %v", m.Data, err)
		}
		return st
	}
	st := next()
	if st.Env != envName || st.State != client.NodeRunning || st.Admin != r.node.Endpoint() || st.Books != 1 ||
		st.BooksLive != 1 || st.Halted || st.StartedAt.IsZero() || st.Time.Before(st.StartedAt) {
		t.Fatalf("heartbeat %+v", st)
	}
	r.node.Trader().Halt("test")
	// A beat published just before the halt may still be queued; the one
	// after it must say halted.
	for range 2 {
		if st = next(); st.Halted {
			break
		}
	}
	if !st.Halted {
		t.Fatalf("heartbeat after a halt %+v", st)
	}
	r.stopNode()
	for st.State == client.NodeRunning {
		st = next()
	}
	if st.State != client.NodeStopping {
		t.Fatalf("last heartbeat %+v", st)
	}
}
