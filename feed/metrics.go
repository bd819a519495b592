package feed

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the feed's Prometheus metrics. Create one per registry with
// NewMetrics; the hot path uses label handles resolved once per venue and
// instrument, so counting costs an atomic add and no allocation.
type Metrics struct {
	connState     *prometheus.GaugeVec
	connections   *prometheus.GaugeVec
	reconnects    *prometheus.CounterVec
	rollovers     *prometheus.CounterVec
	frames        *prometheus.CounterVec
	parseErrors   *prometheus.CounterVec
	duplicates    *prometheus.CounterVec
	unknownSyms   *prometheus.CounterVec
	gaps          *prometheus.CounterVec
	resyncs       *prometheus.CounterVec
	restarts      *prometheus.CounterVec
	tradeGaps     *prometheus.CounterVec
	published     *prometheus.CounterVec
	publishErrors *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	lastAge       *prometheus.GaugeVec
	inSync        *prometheus.GaugeVec
	snapshotReqs  *prometheus.CounterVec
	overflows     *prometheus.CounterVec
	ignored       *prometheus.CounterVec
	subErrors     *prometheus.CounterVec
	crossed       *prometheus.CounterVec
	gapsPerMil    *prometheus.GaugeVec
}

// NewMetrics creates the feed's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	v := []string{"venue"}
	vi := []string{"venue", "instrument"}
	m := &Metrics{
		connState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_feed_connection_state",
			Help: "Venue connection state: 0 unknown, 1 connecting, 2 connected, 3 disconnected, 4 stale."}, v),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_feed_connections",
			Help: "Open exchange WebSocket connections (two per slot during a rollover)."}, v),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_reconnects_total",
			Help: "Unplanned reconnections after a lost, silent or failed connection."}, v),
		rollovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_rollovers_total",
			Help: "Planned make-before-break connection rollovers (age cap or serverShutdown)."}, v),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_frames_total",
			Help: "WebSocket data frames received."}, v),
		parseErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_parse_errors_total",
			Help: "Frames dropped because they could not be parsed, by reason."}, []string{"venue", "reason"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_duplicates_dropped_total",
			Help: "Events dropped as already published (overlapping connections during a rollover)."}, v),
		unknownSyms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_unknown_symbol_frames_total",
			Help: "Frames for symbols that are not configured."}, v),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_book_gaps_total",
			Help: "Order book continuity breaks (each publishes a Reset and triggers a resync)."}, vi),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_book_resync_restarts_total",
			Help: "Resyncs started over because the update ids could not converge: snapshots that kept predating the buffered diffs, or a book that ran ahead of its stream (a corrupt or hostile update id)."}, vi),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_book_resyncs_total",
			Help: "Order books brought (back) in sync from a REST snapshot."}, vi),
		tradeGaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_trade_ids_missed_total",
			Help: "Exchange trade ids never received (gaps in the venue's sequential trade ids)."}, vi),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_messages_published_total",
			Help: "Messages published to NATS, by message type."}, []string{"venue", "instrument", "type"}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_nats_publish_errors_total",
			Help: "NATS publish calls that failed."}, v),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paddock_feed_publish_latency_seconds",
			Help:    "Exchange event time to NATS publish (includes clock skew between the exchange and this host).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, v),
		lastAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_feed_last_message_age_seconds",
			Help: "Seconds since the last exchange frame, updated every status interval."}, v),
		inSync: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_feed_books_in_sync",
			Help: "Instruments whose order book is in sync."}, v),
		snapshotReqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_snapshot_requests_total",
			Help: "Snapshot requests answered."}, v),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_ignored_frames_total",
			Help: "Well-formed frames for streams the feed does not handle (a topic it did not subscribe to), dropped without counting as parse errors."}, v),
		subErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_subscription_errors_total",
			Help: "Subscriptions the venue refused (also shown by /readyz until the topic is subscribed)."}, v),
		gapsPerMil: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_feed_gaps_per_million_messages",
			Help: "Book gaps per million messages published, per venue since the feed started (also in the Status heartbeat)."}, v),
		crossed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_book_crossed_total",
			Help: "Updates that would have crossed the book (best bid >= best ask): corruption behind valid sequence numbers; each resets and resyncs the book."}, vi),
		overflows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_feed_queue_overflows_total",
			Help: "Bounded queues that filled: rollover_held (a rollover switched early; the old connection's lag became a gap) and resync_buffer (a book's buffered diffs were dropped and its sync started over)."}, []string{"venue", "queue"}),
	}
	reg.MustRegister(m.connState, m.connections, m.reconnects, m.rollovers, m.frames, m.parseErrors, m.duplicates,
		m.unknownSyms, m.gaps, m.resyncs, m.restarts, m.tradeGaps, m.published, m.publishErrors, m.latency, m.lastAge, m.inSync, m.snapshotReqs, m.overflows, m.ignored, m.subErrors, m.crossed, m.gapsPerMil)
	return m
}

// VenueMetrics are one venue's resolved metric handles, for its adapter.
type VenueMetrics struct {
	m              *Metrics
	venue          string
	Frames         prometheus.Counter
	Reconnects     prometheus.Counter
	Rollovers      prometheus.Counter
	Duplicates     prometheus.Counter
	UnknownSymbols prometheus.Counter
	Connections    prometheus.Gauge
	connState      prometheus.Gauge
	lastAge        prometheus.Gauge
	inSync         prometheus.Gauge
	snapshotReqs   prometheus.Counter
	gapsPerMil     prometheus.Gauge
	// HeldOverflows counts rollovers switched early on a full held queue.
	HeldOverflows prometheus.Counter
	// Ignored counts frames of streams the feed does not handle;
	// SubscribeErrors subscriptions the venue refused.
	Ignored, SubscribeErrors prometheus.Counter
}

func (m *Metrics) forVenue(venue string) *VenueMetrics {
	return &VenueMetrics{
		m: m, venue: venue,
		Frames:          m.frames.WithLabelValues(venue),
		Reconnects:      m.reconnects.WithLabelValues(venue),
		Rollovers:       m.rollovers.WithLabelValues(venue),
		Duplicates:      m.duplicates.WithLabelValues(venue),
		UnknownSymbols:  m.unknownSyms.WithLabelValues(venue),
		Connections:     m.connections.WithLabelValues(venue),
		connState:       m.connState.WithLabelValues(venue),
		lastAge:         m.lastAge.WithLabelValues(venue),
		inSync:          m.inSync.WithLabelValues(venue),
		snapshotReqs:    m.snapshotReqs.WithLabelValues(venue),
		gapsPerMil:      m.gapsPerMil.WithLabelValues(venue),
		HeldOverflows:   m.overflows.WithLabelValues(venue, "rollover_held"),
		Ignored:         m.ignored.WithLabelValues(venue),
		SubscribeErrors: m.subErrors.WithLabelValues(venue),
	}
}

// ParseError counts a dropped frame. reason is a short fixed string (the
// error's text), so the label set stays small.
func (vm *VenueMetrics) ParseError(reason string) {
	vm.m.parseErrors.WithLabelValues(vm.venue, reason).Inc()
}

// instrumentMetrics are one instrument's resolved handles.
type instrumentMetrics struct {
	trades, bbos, deltas, snapshots, resets prometheus.Counter
	checkpoints                             prometheus.Counter
	publishErrors                           prometheus.Counter
	latency                                 prometheus.Observer
	Gaps, Resyncs, Restarts, TradeGaps      prometheus.Counter
	bufferOverflows                         prometheus.Counter
	crossed                                 prometheus.Counter
}

func (m *Metrics) forInstrument(venue, inst string) *instrumentMetrics {
	return &instrumentMetrics{
		trades:          m.published.WithLabelValues(venue, inst, "trade"),
		bbos:            m.published.WithLabelValues(venue, inst, "bbo"),
		deltas:          m.published.WithLabelValues(venue, inst, "book_delta"),
		snapshots:       m.published.WithLabelValues(venue, inst, "book_snapshot"),
		checkpoints:     m.published.WithLabelValues(venue, inst, "book_checkpoint"),
		resets:          m.published.WithLabelValues(venue, inst, "reset"),
		publishErrors:   m.publishErrors.WithLabelValues(venue),
		latency:         m.latency.WithLabelValues(venue),
		Gaps:            m.gaps.WithLabelValues(venue, inst),
		Resyncs:         m.resyncs.WithLabelValues(venue, inst),
		Restarts:        m.restarts.WithLabelValues(venue, inst),
		TradeGaps:       m.tradeGaps.WithLabelValues(venue, inst),
		bufferOverflows: m.overflows.WithLabelValues(venue, "resync_buffer"),
		crossed:         m.crossed.WithLabelValues(venue, inst),
	}
}

// CountGap, CountResync and CountMissedTrades are for venue adapters.
func (in *Instrument) CountGap()    { in.metrics.Gaps.Inc(); in.gaps.Add(1) }
func (in *Instrument) CountResync() { in.metrics.Resyncs.Inc() }

// CountResyncRestart counts a resync started over because its update ids
// could not converge.
func (in *Instrument) CountResyncRestart() { in.metrics.Restarts.Inc() }

// CountBufferOverflow counts a resync buffer that filled and was dropped.
func (in *Instrument) CountBufferOverflow() { in.metrics.bufferOverflows.Inc() }

// CountMissedTrades adds n trade ids that were never received.
func (in *Instrument) CountMissedTrades(n uint64) { in.metrics.TradeGaps.Add(float64(n)) }
