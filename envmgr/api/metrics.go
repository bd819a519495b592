package api

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API's Prometheus metrics. Create one per registry with
// NewMetrics; safe for concurrent use.
type Metrics struct {
	requests *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

// NewMetrics creates the API's metrics and registers them with reg (nil: not
// registered, for tests that do not look).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_envmgr_api_requests_total",
			Help: "API requests by route pattern and status code."}, []string{"route", "code"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_envmgr_api_refused_total",
			Help: "Requests refused before they reached an environment: unauthenticated, bad_name, bad_request."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.refused)
	}
	return m
}
