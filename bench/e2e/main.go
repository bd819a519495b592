// Command e2e measures the feed end to end on loopback: the simulator sends
// Binance trade frames over a WebSocket, the feed normalizes and publishes
// them on its embedded NATS server, and 1, 10 and 100 subscribers receive
// them. In the same run it measures raw NATS publish/subscribe of messages of
// the same size, the ceiling of the bus on this machine, and reports the
// feed's throughput as a fraction of it, plus latency from the simulator's
// send to the subscriber's receive at a fixed rate.
//
// Everything shares one process and this machine's cores, as on a
// developer's laptop; run it with `make bench-e2e`.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/feed/daemon"
	"github.com/paddockhq/paddock/feed/sim"
	"github.com/paddockhq/paddock/proto"
)

func main() {
	for _, a := range os.Args[1:] {
		if a == "-role=sub" {
			if err := subMain(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e subscriber:", err)
				os.Exit(1)
			}
			return
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

type options struct {
	n           int
	subs        []int
	latRates    []int
	latSubs     int
	latDuration time.Duration
	timeout     time.Duration
}

func run(ctx context.Context) error {
	var o options
	subs := flag.String("subs", "1,10,100", "subscriber counts for the throughput runs")
	flag.IntVar(&o.n, "n", 600_000, "trades per throughput run with one subscriber (fewer with more subscribers)")
	latRates := flag.String("latency-rates", "10000,25000,50000", "trades per second of each latency run (the target is stated at 50000)")
	flag.IntVar(&o.latSubs, "latency-subs", 10, "subscribers in the latency run")
	flag.DurationVar(&o.latDuration, "latency-duration", 5*time.Second, "length of the latency run")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up on a run after this long")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process during the latency runs to this file")
	flag.StringVar(&topology, "subscribers", "process", "where subscribers run: process (a second process, like sandbox nodes) or inprocess")
	flag.Parse()
	for _, s := range strings.Split(*subs, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return fmt.Errorf("-subs: %q", s)
		}
		o.subs = append(o.subs, k)
	}
	for _, s := range strings.Split(*latRates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r < 1 {
			return fmt.Errorf("-latency-rates: %q", s)
		}
		o.latRates = append(o.latRates, r)
	}

	sm, err := sim.New("127.0.0.1:0", sim.Config{Symbols: []sim.Symbol{{Name: "BTCUSDT", Price: 27123.45}}, QueueLen: 1 << 14})
	if err != nil {
		return err
	}
	defer sm.Close()
	stateDir, err := os.MkdirTemp("", "paddock-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	cfg := &daemon.Config{
		NATS:          daemon.NATSConfig{Embedded: daemon.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: stateDir}},
		MetricsListen: "127.0.0.1:0",
		Venues:        []daemon.VenueConfig{{Name: "binance", WSURL: sm.SpotWS(), RESTURL: sm.SpotREST(), Instruments: []string{"btcusdt"}, Events: []string{"trades"}}},
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	natsSrv, err := daemon.StartNATS(cfg, nil)
	if err != nil {
		return err
	}
	defer natsSrv.Shutdown()
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	started := make(chan daemon.Started, 1)
	feedDone := make(chan error, 1)
	go func() { feedDone <- daemon.Run(feedCtx, cfg, nil, func(s daemon.Started) { started <- s }) }()
	var st daemon.Started
	select {
	case st = <-started:
	case err := <-feedDone:
		return fmt.Errorf("feed: %w", err)
	case <-time.After(10 * time.Second):
		return errors.New("feed did not start")
	}
	defer func() { stopFeed(); <-feedDone }()

	if topology != "process" && topology != "inprocess" {
		return fmt.Errorf("-subscribers %q: want process or inprocess", topology)
	}
	fmt.Printf("paddock end-to-end benchmark on %s: simulator -> WebSocket -> feed -> NATS (one process) -> subscribers (%s)\n\n", cpuInfo(), topology)
	var rows []row
	for _, k := range o.subs {
		n := runSize(o.n, k)
		ceil, err := rawCeiling(ctx, st.NATSURL, k, n, o.timeout)
		if err != nil {
			return fmt.Errorf("raw NATS with %d subscribers: %w", k, err)
		}
		r, err := feedRun(ctx, sm, st.NATSURL, k, n, 0, o.timeout)
		if err != nil {
			return fmt.Errorf("feed with %d subscribers: %w", k, err)
		}
		r.ceiling = ceil
		rows = append(rows, r)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	var lats []latRun
	for _, rate := range o.latRates {
		n := int(float64(rate) * o.latDuration.Seconds())
		feed, err := feedRun(ctx, sm, st.NATSURL, o.latSubs, n, rate, o.timeout)
		if err != nil {
			return fmt.Errorf("latency run at %d/s: %w", rate, err)
		}
		raw, err := rawLatency(ctx, st.NATSURL, o.latSubs, n, rate, o.timeout)
		if err != nil {
			return fmt.Errorf("raw latency run at %d/s: %w", rate, err)
		}
		lats = append(lats, latRun{feed: feed, raw: raw})
	}
	pprof.StopCPUProfile() // a no-op without -cpuprofile
	report(rows, lats, o)
	return nil
}

// runSize keeps runs with many subscribers bounded: deliveries grow with k.
func runSize(n, k int) int {
	if k >= 100 {
		return n / 10
	}
	if k >= 10 {
		return n / 3
	}
	return n
}

type row struct {
	subs      int
	n         int
	rate      int     // offered rate (0 = unlimited)
	ingest    float64 // trades/s published by the feed and received by every subscriber
	delivered float64 // messages/s delivered across all subscribers
	ceiling   float64 // raw NATS messages/s per subscriber, same size, same run
	lost      int
	lat       []int64 // ns, all subscribers
	legIn     []int64 // ns, simulator send -> feed receive, per delivery
	legOut    []int64 // ns, feed receive -> subscriber receive, per delivery
	late      []int64 // ns, each trade's write after its schedule (paced runs)
}

// feedRun blasts n trades through the feed and measures what k subscribers
// in a separate process receive.
func feedRun(ctx context.Context, sm *sim.Sim, url string, k, n, rate int, timeout time.Duration) (row, error) {
	subj, _ := proto.DataSubject("binance", "btcusdt", proto.EventTrades)
	sent := make([]int64, n)
	wait, err := subscribers(ctx, url, subj, k, n, timeout)
	if err != nil {
		return row{}, err
	}
	// A zero-length blast reserves nothing and returns the id the next
	// blast starts at.
	base, err := blastWhenSubscribed(ctx, sm)
	if err != nil {
		return row{}, err
	}
	start := time.Now()
	if _, err := sm.Blast(ctx, false, "BTCUSDT", n, rate, sent); err != nil {
		return row{}, err
	}
	res, err := wait()
	if err != nil {
		return row{}, err
	}
	r := row{subs: k, n: n, rate: rate}
	var got, last int64
	for _, rec := range res.records {
		id := uint64(rec[0])
		if id < base || id-base >= uint64(n) {
			continue // from an earlier run
		}
		s := atomic.LoadInt64(&sent[id-base])
		got++
		last = max(last, rec[1])
		if s > 0 {
			r.lat = append(r.lat, rec[1]-s)
			r.legIn = append(r.legIn, rec[2]-s)
			r.legOut = append(r.legOut, rec[1]-rec[2])
		}
	}
	if rate > 0 {
		// How smooth the offered load was: each write's lateness against
		// its schedule (start + i/rate). The simulator paces in batches of
		// 8 with Go timers, which have 1 ms resolution when the process
		// is idle, so late writes go out as a burst.
		for i := range sent {
			if s := atomic.LoadInt64(&sent[i]); s > 0 {
				r.late = append(r.late, s-start.UnixNano()-int64(float64(i)/float64(rate)*1e9))
			}
		}
	}
	r.lost = int(int64(n)*int64(k) - got)
	if elapsed := time.Duration(last - start.UnixNano()); elapsed > 0 {
		r.ingest = float64(got) / float64(k) / elapsed.Seconds()
		r.delivered = float64(got) / elapsed.Seconds()
	}
	return r, nil
}

// blastWhenSubscribed waits until the feed's connection has subscribed the
// trade stream, then returns the next trade id the simulator will use.
func blastWhenSubscribed(ctx context.Context, sm *sim.Sim) (uint64, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		id, err := sm.Blast(ctx, false, "BTCUSDT", 0, 0, nil)
		if err == nil {
			return id, nil
		}
		if time.Now().After(deadline) {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// rawCeiling publishes n messages of a Trade's size as fast as one
// connection can, and measures what k subscribers in a separate process
// receive per second.
func rawCeiling(ctx context.Context, url string, k, n int, timeout time.Duration) (float64, error) {
	res, start, err := rawRun(ctx, url, "bench.raw", k, n, 0, timeout)
	if err != nil {
		return 0, err
	}
	elapsed := time.Duration(res.last - start.UnixNano())
	if elapsed <= 0 {
		return 0, errors.New("nothing received")
	}
	return float64(res.received) / float64(k) / elapsed.Seconds(), nil
}

// rawLatency publishes n Trade-sized messages at rate, paced like the
// simulator (batches of 8), each carrying its send time: the bus's own
// latency on this machine, for comparison with the feed's.
func rawLatency(ctx context.Context, url string, k, n, rate int, timeout time.Duration) ([]int64, error) {
	res, _, err := rawRun(ctx, url, "bench.rawlat", k, n, rate, timeout)
	if err != nil {
		return nil, err
	}
	lats := make([]int64, 0, len(res.records))
	for _, rec := range res.records {
		lats = append(lats, rec[1]-rec[0])
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	return lats, nil
}

func rawRun(ctx context.Context, url, subject string, k, n, rate int, timeout time.Duration) (subResult, time.Time, error) {
	wait, err := subscribers(ctx, url, subject, k, n, timeout)
	if err != nil {
		return subResult{}, time.Time{}, err
	}
	pub, err := nats.Connect(url, nats.Name("e2e-raw-pub"))
	if err != nil {
		return subResult{}, time.Time{}, err
	}
	defer pub.Close()
	msg := make([]byte, proto.TradeSize)
	start := time.Now()
	for i := range n {
		if rate > 0 && i%8 == 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		binary.LittleEndian.PutUint64(msg[16:], uint64(time.Now().UnixNano()))
		if err := pub.Publish(subject, msg); err != nil {
			return subResult{}, start, err
		}
	}
	if err := pub.Flush(); err != nil {
		return subResult{}, start, err
	}
	res, err := wait()
	return res, start, err
}

func percentile(sorted []int64, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return time.Duration(sorted[i])
}

// latRun is one offered rate: the feed's run and raw NATS's.
type latRun struct {
	feed row
	raw  []int64
}

func sorted(v []int64) []int64 {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v
}

func report(rows []row, lats []latRun, o options) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "subscribers\ttrades\tfeed ingest msg/s\tdelivered msg/s\traw NATS msg/s per sub\tfeed/raw\tlost\tp50\tp99\tp999\t")
	for _, r := range rows {
		r.lat = sorted(r.lat)
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%.0f\t%.2f\t%d\t%v\t%v\t%v\t\n", r.subs, r.n, r.ingest, r.delivered, r.ceiling, r.ingest/r.ceiling, r.lost,
			percentile(r.lat, .5), percentile(r.lat, .99), percentile(r.lat, .999))
	}
	_ = tw.Flush()
	fmt.Println("\nUnlimited offered rate: latency there is queueing under saturation, not the feed's service time.")

	fmt.Printf("\nLatency at fixed rates with %d subscribers, %v per run; the feed's from the simulator's write to the subscriber's\n"+
		"receive, split at the feed's receive; raw NATS's from publish to receive, same size, rate and subscribers:\n\n", o.latSubs, o.latDuration)
	tw = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "trades/s\tdeliveries\tlost\tfeed p50\tfeed p99\tfeed p999\tWebSocket leg p99\tfeed->sub p99\traw p50\traw p99\traw p999\tsim write lateness p99\t")
	var at50k time.Duration = -1
	for _, l := range lats {
		f := l.feed
		lat, in, out, late := sorted(f.lat), sorted(f.legIn), sorted(f.legOut), sorted(f.late)
		fmt.Fprintf(tw, "%d\t%d\t%d\t%v\t%v\t%v\t%v\t%v\t%v\t%v\t%v\t%v\t\n", f.rate, len(lat), f.lost,
			percentile(lat, .5), percentile(lat, .99), percentile(lat, .999), percentile(in, .99), percentile(out, .99),
			percentile(l.raw, .5), percentile(l.raw, .99), percentile(l.raw, .999), percentile(late, .99))
		if f.rate == 50_000 {
			at50k = percentile(lat, .99)
		}
	}
	_ = tw.Flush()
	if len(rows) > 0 {
		fmt.Printf("\nTargets: >= 300k msg/s ingest with 1 subscriber (measured %.0f)", rows[0].ingest)
		if at50k >= 0 {
			fmt.Printf("; p99 < 1ms at 50k msg/s with %d subscribers (measured %v)", o.latSubs, at50k)
		}
		fmt.Println(".")
	}
}

func cpuInfo() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	model, cores := "", 0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "model name") && model == "" {
			_, model, _ = strings.Cut(line, ": ")
		}
		if strings.HasPrefix(line, "processor") {
			cores++
		}
	}
	return fmt.Sprintf("%d x %s", cores, model)
}
