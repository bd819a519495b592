package natsconn

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/internal/embednats"
)

// TestDrainDeliversBufferedMessages: messages published right before the
// drain reach a subscriber, and drain returns only once the connection is
// closed.
func TestDrainDeliversBufferedMessages(t *testing.T) {
	ns, err := embednats.Start(embednats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	sub, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got, _ := sub.SubscribeSync("x")
	_ = sub.Flush()
	nc, drain, err := Connect(ns.ClientURL(), nats.Name("test"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	for range n {
		if err := nc.Publish("x", []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	if err := drain(); err != nil {
		t.Fatal(err)
	}
	if !nc.IsClosed() {
		t.Fatal("drain returned before the connection closed")
	}
	for i := range n {
		if _, err := got.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("message %d of %d lost: %v", i, n, err)
		}
	}
	if err := drain(); err != nil {
		t.Fatalf("a second drain: %v", err)
	}
	if _, _, err := Connect("nats://127.0.0.1:1", nats.MaxReconnects(0)); err == nil {
		t.Fatal("connected to nothing")
	}
}
