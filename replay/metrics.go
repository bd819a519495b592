package replay

import "github.com/prometheus/client_golang/prometheus"

// Metrics count a replay's deliveries and how late each paced message
// left against its schedule (the replay clock's pacing accuracy; what a
// subscriber sees adds NATS's delivery on top). Safe for concurrent use.
type Metrics struct {
	delivered prometheus.Counter
	late      prometheus.Histogram
}

// NewMetrics registers a replay's metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "paddock_replay_messages_total",
			Help: "Recorded messages the replay delivered onto the environment's namespace."}),
		late: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paddock_replay_lateness_seconds",
			Help:    "How late each paced replayed message was published against its recorded offset at the replay's speed.",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 750e-6, 1e-3, 2e-3, 5e-3, 10e-3, 50e-3, 0.1, 1}}),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.late)
	}
	return m
}
