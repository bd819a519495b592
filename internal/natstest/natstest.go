// Package natstest starts real embedded NATS servers and connections for
// tests, cleaned up when the test ends.
package natstest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/internal/embednats"
)

// Server starts an embedded server, shut down when the test ends.
func Server(tb testing.TB, o embednats.Options) *embednats.Server {
	tb.Helper()
	ns, err := embednats.Start(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ns.Shutdown)
	return ns
}

// Connect connects to url, closed when the test ends.
func Connect(tb testing.TB, url string, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}
