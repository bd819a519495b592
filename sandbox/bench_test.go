package sandbox

import (
	"log/slog"
	"testing"
	"time"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/sandbox/client"
	"github.com/paddockhq/paddock/sandbox/marketdata"
	"github.com/prometheus/client_golang/prometheus"
)

type discard struct{ n int }

func (d *discard) Publish(string, []byte) error { d.n++; return nil }

// benchTrader is a trader with a joined 20-level book and a healthy venue,
// driven directly (no NATS) so the benchmark measures the node's own work.
func benchTrader(tb testing.TB) *Trader {
	c := &Config{Name: "bench", NATSURL: "nats://unused", APIKeyFile: "x", AdminKeyFile: "x",
		Instruments: []Instrument{{Venue: "binance", Symbol: "btcusdt"}},
		Risk:        RiskConfig{MaxPositionUSD: "1000000", MaxDrawdownPct: "50", MaxOrderRate: "100000000", StartingEquityUSD: "1000000"}}
	if err := c.check(); err != nil {
		tb.Fatal(err)
	}
	tr, err := NewTrader(c, &discard{}, slog.New(slog.DiscardHandler), NewMetrics(prometheus.NewRegistry()), time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	var bids, asks []proto.Level
	for i := range 20 {
		bids = append(bids, proto.Level{Price: proto.Decimal{Mant: 2712300 - int64(i), Exp: -2}, Qty: proto.Decimal{Mant: 1000, Exp: -3}})
		asks = append(asks, proto.Level{Price: proto.Decimal{Mant: 2712301 + int64(i), Exp: -2}, Qty: proto.Decimal{Mant: 1000, Exp: -3}})
	}
	b := &marketdata.Book{Instrument: client.Instrument{Venue: "binance", Symbol: "btcusdt"}}
	if err := b.Load(bids, asks); err != nil {
		tb.Fatal(err)
	}
	marketdata.MarkLive(b)
	tr.mu.Lock()
	tr.onBook(b, nil, nil)
	tr.venues["binance"].lastStatus = time.Now().Add(time.Hour)
	tr.setHealth("binance", tr.venues["binance"], true, "")
	tr.mu.Unlock()
	return tr
}

// BenchmarkPlace is an order's path through the node without the network:
// validation, the risk gate, the paper venue, accounting and the JSON
// events. kind=ioc-miss does not fill; kind=market-fill fills one level
// (buys and sells alternate so the position stays flat).
func BenchmarkPlace(b *testing.B) {
	for _, kind := range []string{"ioc-miss", "market-fill"} {
		b.Run("kind="+kind, func(b *testing.B) {
			tr := benchTrader(b)
			reqs := []client.OrderRequest{
				{Venue: "binance", Symbol: "btcusdt", Side: "buy", Type: "limit", TimeInForce: "ioc", Qty: "0.001", Price: "27000.00"},
				{Venue: "binance", Symbol: "btcusdt", Side: "sell", Type: "limit", TimeInForce: "ioc", Qty: "0.001", Price: "28000.00"},
			}
			if kind == "market-fill" {
				reqs = []client.OrderRequest{
					{Venue: "binance", Symbol: "btcusdt", Side: "buy", Type: "market", Qty: "0.001"},
					{Venue: "binance", Symbol: "btcusdt", Side: "sell", Type: "market", Qty: "0.001"},
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := tr.Place(reqs[i%2])
				if r.Error != "" {
					b.Fatal(r.Error)
				}
				i++
				if i%1000 == 0 { // keep the order map from growing without bound
					tr.mu.Lock()
					clear(tr.orders)
					tr.mu.Unlock()
				}
			}
		})
	}
}

func TestBenchTraderPlaces(t *testing.T) {
	tr := benchTrader(t)
	r := tr.Place(client.OrderRequest{Venue: "binance", Symbol: "btcusdt", Side: "buy", Type: "market", Qty: "1.5"})
	if r.Error != "" || r.Order.Status != client.StatusFilled || r.Order.AvgPrice != "27123.01333333" || r.Order.Fees != "40.68452" {
		t.Fatalf("%+v %+v", r, r.Order)
	}
}

// TestMarketPathAllocs locks the node's per-tick work at zero allocations:
// a trade print that fills nothing, and a book update with its mark and
// drawdown evaluation (called, as the Market does, with the lock held).
func TestMarketPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; make test runs this without it")
	}
	tr := benchTrader(t)
	msg, err := proto.AppendTrade(nil, &proto.Header{Venue: proto.VenueBinance, Seq: 1},
		&proto.Trade{Price: proto.Decimal{Mant: 2712300, Exp: -2}, Qty: proto.Decimal{Mant: 1, Exp: -3}, TradeID: 1, Side: proto.SideBuy})
	if err != nil {
		t.Fatal(err)
	}
	tv, err := proto.DecodeTrade(msg)
	if err != nil {
		t.Fatal(err)
	}
	in := client.Instrument{Venue: "binance", Symbol: "btcusdt"}
	b := tr.books[0]
	delta := []proto.Level{{Price: proto.Decimal{Mant: 2712300, Exp: -2}, Qty: proto.Decimal{Mant: 2000, Exp: -3}}}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if n := testing.AllocsPerRun(200, func() { tr.onTrade(in, tv) }); n != 0 {
		t.Errorf("a trade print allocates %.0f times", n)
	}
	if n := testing.AllocsPerRun(200, func() { tr.onBook(b, delta, nil) }); n != 0 {
		t.Errorf("a book update allocates %.0f times", n)
	}
}
