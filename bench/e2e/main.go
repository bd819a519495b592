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
	latRate     int
	latSubs     int
	latDuration time.Duration
	timeout     time.Duration
}

func run(ctx context.Context) error {
	var o options
	subs := flag.String("subs", "1,10,100", "subscriber counts for the throughput runs")
	flag.IntVar(&o.n, "n", 600_000, "trades per throughput run with one subscriber (fewer with more subscribers)")
	flag.IntVar(&o.latRate, "latency-rate", 50_000, "trades per second in the latency run")
	flag.IntVar(&o.latSubs, "latency-subs", 10, "subscribers in the latency run")
	flag.DurationVar(&o.latDuration, "latency-duration", 5*time.Second, "length of the latency run")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up on a run after this long")
	flag.StringVar(&topology, "subscribers", "process", "where subscribers run: process (a second process, like sandbox nodes) or inprocess")
	flag.Parse()
	for _, s := range strings.Split(*subs, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return fmt.Errorf("-subs: %q", s)
		}
		o.subs = append(o.subs, k)
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
	latN := int(float64(o.latRate) * o.latDuration.Seconds())
	lat, err := feedRun(ctx, sm, st.NATSURL, o.latSubs, latN, o.latRate, o.timeout)
	if err != nil {
		return fmt.Errorf("latency run: %w", err)
	}
	rawLat, err := rawLatency(ctx, st.NATSURL, o.latSubs, latN, o.latRate, o.timeout)
	if err != nil {
		return fmt.Errorf("raw latency run: %w", err)
	}
	report(rows, lat, rawLat, o)
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

func report(rows []row, lat row, rawLat []int64, o options) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "subscribers\ttrades\tfeed ingest msg/s\tdelivered msg/s\traw NATS msg/s per sub\tfeed/raw\tlost\tp50\tp99\tp999\t")
	for _, r := range rows {
		sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%.0f\t%.2f\t%d\t%v\t%v\t%v\t\n", r.subs, r.n, r.ingest, r.delivered, r.ceiling, r.ingest/r.ceiling, r.lost,
			percentile(r.lat, .5), percentile(r.lat, .99), percentile(r.lat, .999))
	}
	_ = tw.Flush()
	fmt.Println("\nUnlimited offered rate: latency there is queueing under saturation, not the feed's service time.")
	sort.Slice(lat.lat, func(i, j int) bool { return lat.lat[i] < lat.lat[j] })
	fmt.Printf("\nLatency at a fixed %d trades/s with %d subscribers (%d trades, %d deliveries, %d lost), simulator send -> subscriber receive:\n",
		o.latRate, lat.subs, lat.n, len(lat.lat), lat.lost)
	fmt.Printf("  p50 %v   p99 %v   p999 %v   max %v\n", percentile(lat.lat, .5), percentile(lat.lat, .99), percentile(lat.lat, .999), percentile(lat.lat, 1))
	sort.Slice(lat.legIn, func(i, j int) bool { return lat.legIn[i] < lat.legIn[j] })
	fmt.Printf("  of which simulator send -> feed receive (WebSocket leg): p50 %v   p99 %v   p999 %v\n",
		percentile(lat.legIn, .5), percentile(lat.legIn, .99), percentile(lat.legIn, .999))
	fmt.Printf("  raw NATS, same size, rate and subscribers, publish -> receive: p50 %v   p99 %v   p999 %v\n",
		percentile(rawLat, .5), percentile(rawLat, .99), percentile(rawLat, .999))
	if len(rows) > 0 {
		fmt.Printf("\nTargets: >= 300k msg/s ingest with 1 subscriber (measured %.0f); p99 < 1ms at 50k msg/s with 10 subscribers (measured %v).\n",
			rows[0].ingest, percentile(lat.lat, .99))
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
