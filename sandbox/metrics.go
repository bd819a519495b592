package sandbox

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the node's Prometheus metrics, on the admin API's /metrics.
type Metrics struct {
	orders           *prometheus.CounterVec // by result: accepted or the refusal code
	fills            *prometheus.CounterVec // by liquidity
	trades           prometheus.Counter
	bookUpdates      prometheus.Counter
	bookResyncs      prometheus.Counter
	marketErrors     prometheus.Counter
	publishErrors    prometheus.Counter
	halts            prometheus.Counter
	halted           prometheus.Gauge
	strategyRestarts prometheus.Counter
	strategyRunning  prometheus.Gauge
}

// NewMetrics registers the node's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_node_orders_total",
			Help: "Orders received, by result: accepted or the refusal code."}, []string{"result"}),
		fills: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_node_fills_total",
			Help: "Paper fills, by liquidity (maker or taker)."}, []string{"liquidity"}),
		trades:        prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_node_market_trades_total", Help: "Trades received from the feed."}),
		bookUpdates:   prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_node_book_updates_total", Help: "Book joins, snapshots and deltas applied."}),
		bookResyncs:   prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_node_book_resyncs_total", Help: "Books discarded and rejoined (Reset, gap, damaged message)."}),
		marketErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_node_market_errors_total", Help: "Market data dropped or lost (damaged messages, trade gaps, slow consumer)."}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_node_publish_errors_total", Help: "Events that could not be published."}),
		halts:         prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_node_halts_total", Help: "Times the environment halted."}),
		halted:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_node_halted", Help: "1 while the environment is halted."}),
		strategyRestarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_node_strategy_restarts_total",
			Help: "Strategy restarts after it exited unexpectedly."}),
		strategyRunning: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_node_strategy_running", Help: "1 while the strategy process runs."}),
	}
	reg.MustRegister(m.orders, m.fills, m.trades, m.bookUpdates, m.bookResyncs, m.marketErrors, m.publishErrors,
		m.halts, m.halted, m.strategyRestarts, m.strategyRunning)
	return m
}
