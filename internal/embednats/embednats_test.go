package embednats

import (
	"testing"

	"github.com/nats-io/nats.go"
)

func TestStartPublishSubscribe(t *testing.T) {
	s, err := Start(Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("x.y")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("x.y", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5e9)
	if err != nil || string(msg.Data) != "hello" {
		t.Fatalf("got %v, %v", msg, err)
	}
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
}

func TestBadListen(t *testing.T) {
	if _, err := Start(Options{Listen: "no-port"}); err == nil {
		t.Fatal("accepted a listen address without a port")
	}
}
