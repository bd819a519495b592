package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/sandbox/client"
)

// TestDeadMansSwitch: the node enforces its environment's deadline without
// the manager. At the deadline it refuses orders (and cancels the resting
// ones); an extension written to its deadline file lifts that; past the
// new deadline by the grace period, Run ends with ErrDeadlinePassed.
func TestDeadMansSwitch(t *testing.T) {
	clk := clock.NewFake(time.Now())
	deadline := clk.Now().Add(time.Minute).Truncate(time.Second)
	file := filepath.Join(t.TempDir(), "deadline")
	r := newRig(t, func(c *Config) {
		c.Deadline, c.DeadlineFile, c.DeadlineGraceSeconds = deadline, file, 300
	}, clk)
	resting, rej := r.place(client.OrderRequest{Side: "buy", Type: "limit", Price: "1000", Qty: "0.001", TimeInForce: "gtc"})
	if rej != nil {
		t.Fatalf("before the deadline: %v", rej)
	}
	clk.Advance(deadline.Sub(clk.Now()))
	eventually(t, "the node to refuse orders at the deadline", func() bool { _, ok := r.riskEvent("expired"); return ok })
	if _, rej := r.place(client.OrderRequest{Side: "buy", Type: "limit", Price: "1000", Qty: "0.001", TimeInForce: "gtc"}); rej == nil || rej.Code != CodeExpired {
		t.Fatalf("an order after the deadline: %v", rej)
	}
	eventually(t, "the resting order to be cancelled", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, o := range r.orders {
			if o.ID == resting.ID && o.Status == client.StatusCancelled {
				return true
			}
		}
		return false
	})
	if code, body := r.http("GET", "/readyz", ""); code == 200 {
		t.Fatalf("readyz says ready after the deadline: %s", body)
	}

	// The manager extends it: the local provisioner rewrites the file.
	extended := deadline.Add(24 * time.Hour)
	if err := os.WriteFile(file, []byte(extended.Format(time.RFC3339)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	eventually(t, "orders to be accepted after the extension", func() bool { _, ok := r.riskEvent("extended"); return ok })
	if _, rej := r.place(client.OrderRequest{Side: "buy", Type: "limit", Price: "1000", Qty: "0.001", TimeInForce: "gtc"}); rej != nil {
		t.Fatalf("after the extension: %v", rej)
	}

	// No further extension: the node ends grace after the new deadline.
	clk.Advance(extended.Sub(clk.Now()) + 299*time.Second)
	select {
	case err := <-r.done:
		t.Fatalf("the node ended inside its grace period: %v", err)
	default:
	}
	clk.Advance(time.Second)
	select {
	case err := <-r.done:
		if !errors.Is(err, ErrDeadlinePassed) {
			t.Fatalf("Run: %v, want ErrDeadlinePassed", err)
		}
		r.done <- nil // for the rig's cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("the node outlived its deadline and grace period")
	}
}
