package client

import (
	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/sandbox/marketdata"
)

// The market data side of the SDK is sandbox/marketdata (SPEC.md section 6
// joining); these names keep strategies importing only this package.
type (
	Instrument = marketdata.Instrument
	Book       = marketdata.Book
	Handlers   = marketdata.Handlers
	Market     = marketdata.Market
)

// Pending is the most messages a Market buffers (see marketdata.Pending).
const Pending = marketdata.Pending

// ErrSlow is reported when a Market fell behind and NATS dropped messages.
var ErrSlow = marketdata.ErrSlow

// NewMarket prepares a Market for the given instruments; Run subscribes.
func NewMarket(nc *nats.Conn, instruments []Instrument, h Handlers) (*Market, error) {
	return marketdata.NewMarket(nc, instruments, h)
}

// MarkLive marks a book live (for tests of code that reads books).
func MarkLive(b *Book) { marketdata.MarkLive(b) }
