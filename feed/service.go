// Package feed is the venue-agnostic core of the feed multiplexer: the
// per-instrument publishing state (exact books, sequence numbers, subjects),
// the snapshot request/reply service, the per-venue Status heartbeat,
// metrics and health endpoints. Venue adapters (feed/binance, ...) parse the
// exchange's protocol, keep its continuity rules and call into an Outlet;
// this package imports none of them.
package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outlet is one venue's instruments and metric handles: what its adapter
// publishes through. Its instrument set is fixed at construction, so lookups
// need no lock.
type Outlet struct {
	Venue       proto.VenueID
	Name        string // the venue's subject token (Venue.String(), or an instance's own name)
	Instruments []*Instrument
	Metrics     *VenueMetrics

	bySymbol  map[string]*Instrument
	healthSub string
}

// NewOutlet creates the instruments of one venue. symbols are subject
// tokens (lower-case exchange symbols).
func NewOutlet(venue proto.VenueID, symbols []string, ev Events, pub Publisher, m *Metrics, now func() time.Time) (*Outlet, error) {
	return NewNamedOutlet(venue.String(), venue, symbols, ev, pub, m, now)
}

// NewNamedOutlet is NewOutlet for a venue instance with a name of its own
// (subjects, metric labels) and a site-local wire id (see proto.LocalVenueIDs).
func NewNamedOutlet(name string, venue proto.VenueID, symbols []string, ev Events, pub Publisher, m *Metrics, now func() time.Time) (*Outlet, error) {
	if now == nil {
		now = time.Now
	}
	o := &Outlet{Venue: venue, Name: name, Metrics: m.forVenue(name), bySymbol: map[string]*Instrument{}}
	var err error
	if o.healthSub, err = proto.HealthSubject(name); err != nil {
		return nil, err
	}
	for _, s := range symbols {
		if _, dup := o.bySymbol[s]; dup {
			return nil, fmt.Errorf("venue %s: instrument %q listed twice", name, s)
		}
		in, err := newInstrument(venue, name, s, ev, pub, m.forInstrument(name, s), now)
		if err != nil {
			return nil, fmt.Errorf("venue %s: %w", name, err)
		}
		o.Instruments = append(o.Instruments, in)
		o.bySymbol[s] = in
	}
	return o, nil
}

// Instrument returns the instrument with subject token symbol, or nil.
func (o *Outlet) Instrument(symbol string) *Instrument { return o.bySymbol[symbol] }

// VenueStatus is what an adapter reports for the Status heartbeat and
// readiness.
type VenueStatus struct {
	State       proto.State
	Connections int
	LastData    int64 // recv time of the last frame, ns (0 = never)
	// Problems the venue reports beyond its connection state (a refused
	// subscription); /readyz lists them.
	Problems []string
}

// Venue is a running venue adapter, consumed by Service.
type Venue interface {
	// Run connects and publishes until ctx is cancelled; it returns nil
	// then, and an error only when the venue cannot run at all.
	Run(ctx context.Context) error
	Status() VenueStatus
}

// VenueEntry pairs an adapter with its outlet.
type VenueEntry struct {
	Outlet *Outlet
	Venue  Venue
}

// Service runs venue adapters and the services around them. Create with
// NewService; Run once.
type Service struct {
	nc       *nats.Conn
	venues   []VenueEntry
	log      *slog.Logger
	interval time.Duration
	every    time.Duration // checkpoints
	now      func() time.Time

	mu        sync.Mutex
	healthSeq map[proto.VenueID]uint64
}

// ServiceOptions configure a Service.
type ServiceOptions struct {
	StatusInterval time.Duration // default 1s
	// CheckpointInterval, when positive, publishes every book in sync as a
	// BookSnapshot on its orderbook subject this often (the recording's
	// checkpoints; 0: none).
	CheckpointInterval time.Duration
	Logger             *slog.Logger
	Now                func() time.Time
}

// NewService creates a service that publishes through nc.
func NewService(nc *nats.Conn, venues []VenueEntry, o ServiceOptions) *Service {
	if o.StatusInterval <= 0 {
		o.StatusInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{nc: nc, venues: venues, log: o.Logger.With("component", "feed"), interval: o.StatusInterval, every: o.CheckpointInterval, now: o.Now,
		healthSeq: map[proto.VenueID]uint64{}}
}

// Run starts the snapshot service, every venue and the Status heartbeat, and
// blocks until ctx is cancelled. On the way out it publishes a Reset
// (shutdown) for every book in sync and flushes NATS; the caller drains or
// closes the connection.
func (s *Service) Run(ctx context.Context) error {
	// One subscription per instrument with a book, so that a request for an
	// instrument the feed does not carry gets "no responders" at once.
	var subs []*nats.Subscription
	for _, v := range s.venues {
		h := s.snapshotHandler(v.Outlet)
		for _, in := range v.Outlet.Instruments {
			if !in.Events.Orderbook {
				continue
			}
			subj, err := proto.SnapshotSubject(v.Outlet.Name, in.Symbol)
			if err != nil {
				return err
			}
			sub, err := s.nc.Subscribe(subj, h)
			if err != nil {
				return fmt.Errorf("subscribe %s: %w", subj, err)
			}
			subs = append(subs, sub)
		}
	}
	if err := s.nc.Flush(); err != nil {
		return fmt.Errorf("flush snapshot subscriptions: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(s.venues))
	for _, v := range s.venues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := v.Venue.Run(ctx); err != nil {
				errc <- fmt.Errorf("venue %s: %w", v.Outlet.Name, err)
				cancel()
			}
		}()
	}
	s.log.Info("feed running", "venues", len(s.venues))
	t := time.NewTicker(s.interval)
	defer t.Stop()
	var checkpoints <-chan time.Time
	if s.every > 0 {
		ct := time.NewTicker(s.every)
		defer ct.Stop()
		checkpoints = ct.C
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			s.publishStatus()
		case <-checkpoints:
			for _, v := range s.venues {
				for _, in := range v.Outlet.Instruments {
					if in.Events.Orderbook {
						in.Checkpoint()
					}
				}
			}
		}
	}
	wg.Wait()
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	now := s.now().UnixNano()
	for _, v := range s.venues {
		for _, in := range v.Outlet.Instruments {
			in.Reset(Times{Recv: now}, proto.ResetShutdown)
		}
	}
	s.publishStatus()
	_ = s.nc.Flush()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func (s *Service) snapshotHandler(o *Outlet) nats.MsgHandler {
	buf := make([]byte, 0, 64*1024)
	var mu sync.Mutex // the venue's subscriptions share buf
	return func(msg *nats.Msg) {
		sub, err := proto.ParseSubject(msg.Subject)
		if err != nil || sub.Kind != proto.KindSnapshot {
			return
		}
		in := o.Instrument(sub.Instrument)
		if in == nil || msg.Reply == "" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		buf = in.SnapshotReply(buf[:0], s.now().UnixNano())
		if err := msg.Respond(buf); err == nil {
			o.Metrics.snapshotReqs.Inc()
		}
	}
}

// publishStatus publishes one Status per venue and refreshes the gauges.
func (s *Service) publishStatus() {
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf [proto.StatusSize]byte
	for _, v := range s.venues {
		st := v.Venue.Status()
		inSync := 0
		for _, in := range v.Outlet.Instruments {
			if in.InSync() {
				inSync++
			}
		}
		o := v.Outlet
		o.Metrics.connState.Set(float64(st.State))
		o.Metrics.Connections.Set(float64(st.Connections))
		o.Metrics.inSync.Set(float64(inSync))
		if st.LastData > 0 {
			o.Metrics.lastAge.Set(float64(now-st.LastData) / 1e9)
		}
		s.healthSeq[o.Venue]++
		h := proto.Header{Venue: o.Venue, Seq: s.healthSeq[o.Venue], RecvTime: now}
		msgs, gaps := s.messageCount(o), s.gapCount(o)
		var perMillion uint64
		if msgs > 0 {
			perMillion = min(gaps*1_000_000/msgs, 1<<32-1) // gaps < 2^44 in any feed's lifetime: no overflow
		}
		o.Metrics.gapsPerMil.Set(float64(perMillion))
		msg, _ := proto.AppendStatus(buf[:0], &h, &proto.Status{
			State: st.State, Connections: uint16(st.Connections), Instruments: uint16(len(o.Instruments)),
			InSync: uint16(inSync), LastData: st.LastData, Messages: msgs, Gaps: gaps, GapsPerMillion: uint32(perMillion),
		})
		if err := s.nc.Publish(o.healthSub, msg); err != nil {
			s.log.Warn("publish status", "venue", o.Name, "err", err)
		}
	}
}

// messageCount sums the venue's published messages.
func (s *Service) messageCount(o *Outlet) uint64 {
	var n uint64
	for _, in := range o.Instruments {
		n += in.published.Load()
	}
	return n
}

// gapCount sums the venue's book gaps.
func (s *Service) gapCount(o *Outlet) uint64 {
	var n uint64
	for _, in := range o.Instruments {
		n += in.gaps.Load()
	}
	return n
}

// Ready reports whether every venue is connected and every book it carries is
// in sync, with the reasons when not.
func (s *Service) Ready() (bool, []string) {
	var why []string
	for _, v := range s.venues {
		st := v.Venue.Status()
		if st.State != proto.StateConnected {
			why = append(why, fmt.Sprintf("%s: %s", v.Outlet.Name, st.State))
		}
		for _, p := range st.Problems {
			why = append(why, fmt.Sprintf("%s: %s", v.Outlet.Name, p))
		}
		for _, in := range v.Outlet.Instruments {
			if in.Events.Orderbook && !in.InSync() {
				why = append(why, fmt.Sprintf("%s.%s: book not in sync", v.Outlet.Name, in.Symbol))
			}
		}
	}
	return len(why) == 0, why
}

// Handler serves /healthz (the process is up), /readyz (Ready) and /metrics
// (the given gatherer).
func (s *Service) Handler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := s.Ready()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": ok, "reasons": why})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	return mux
}
