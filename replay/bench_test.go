package replay_test

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/record"
	"github.com/paddockhq/paddock/replay"
)

// feedLike is a stream of messages as the feed publishes them for one
// instrument: a BookSnapshot, then 10-level deltas and trades (3:1), with
// exchange times t0 + i*step.
func feedLike(n int, t0 time.Time, step time.Duration) (subjects []string, msgs [][]byte) {
	return feedAt(n, func(i int) time.Time { return t0.Add(time.Duration(i) * step) }, 0)
}

// feedAt is feedLike with the exchange time of message i given by at and,
// when checkpointEvery > 0, a whole-book checkpoint every checkpointEvery
// messages, as the feed publishes them.
func feedAt(n int, at func(i int) time.Time, checkpointEvery int) (subjects []string, msgs [][]byte) {
	ob, _ := proto.DataSubject("binance", "btcusdt", proto.EventOrderbook)
	tr, _ := proto.DataSubject("binance", "btcusdt", proto.EventTrades)
	lv := func(p int64, q int64) proto.Level {
		return proto.Level{Price: proto.Decimal{Mant: p, Exp: -2}, Qty: proto.Decimal{Mant: q, Exp: -5}}
	}
	var bids, asks []proto.Level
	for i := range 10 {
		bids = append(bids, lv(2712345-int64(i), 100+int64(i)))
		asks = append(asks, lv(2712346+int64(i), 100+int64(i)))
	}
	var seqB, seqT uint64
	for i := range n {
		ts := at(i).UnixNano()
		var raw []byte
		switch {
		case i == 0 || checkpointEvery > 0 && i%checkpointEvery == 0:
			seqB++
			h := proto.Header{Venue: proto.VenueBinance, Seq: seqB, EventTime: ts, RecvTime: ts}
			raw, _ = proto.AppendBookSnapshot(nil, &h, &proto.BookSnapshot{UpdateID: uint64(i), Bids: bids, Asks: asks})
			subjects = append(subjects, ob)
		case i%4 == 3:
			seqT++
			h := proto.Header{Venue: proto.VenueBinance, Seq: seqT, EventTime: ts, RecvTime: ts}
			raw, _ = proto.AppendTrade(nil, &h, &proto.Trade{Price: bids[0].Price, Qty: bids[0].Qty, TradeID: uint64(i), Side: proto.SideBuy})
			subjects = append(subjects, tr)
		default:
			seqB++
			h := proto.Header{Venue: proto.VenueBinance, Seq: seqB, EventTime: ts, RecvTime: ts}
			d := []proto.Level{lv(2712345-int64(i%10), 50+int64(i%97))}
			raw, _ = proto.AppendBookDelta(nil, &h, &proto.BookDelta{FirstUpdateID: uint64(i), LastUpdateID: uint64(i), Bids: d, Asks: asks[:1]})
			subjects = append(subjects, ob)
		}
		msgs = append(msgs, raw)
	}
	return subjects, msgs
}

// recordN publishes n feed-like messages and records them through the
// recorder, waiting until all are stored.
func recordN(b testing.TB, c record.Config, n int) (*nats.Conn, jetstream.JetStream, string, time.Time) {
	t0 := time.Now().Add(-time.Hour)
	subs, msgs := feedLike(n, t0, time.Millisecond)
	nc, js, dir := recordMsgs(b, c, subs, msgs)
	return nc, js, dir, t0
}

// recordMsgs records msgs (published on subs) through a recorder into a
// fresh server's recording of binance and returns once every message is
// stored.
func recordMsgs(b testing.TB, c record.Config, subs []string, msgs [][]byte) (*nats.Conn, jetstream.JetStream, string) {
	dir := b.TempDir()
	ns := natstest.Server(b, embednats.Options{StoreDir: dir})
	nc, js := recordOn(b, ns.ClientURL(), c, subs, msgs)
	return nc, js, dir
}

// recordOn records msgs through a recorder into the server at url.
func recordOn(b testing.TB, url string, c record.Config, subs []string, msgs [][]byte) (*nats.Conn, jetstream.JetStream) {
	nc := natstest.Connect(b, url)
	js, _ := jetstream.New(nc)
	if _, err := record.Ensure(context.Background(), js, "binance", c); err != nil {
		b.Fatal(err)
	}
	rec, err := record.NewRecorder(natstest.Connect(b, url), js, "binance", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	select {
	case <-rec.Subscribed():
	case err := <-done:
		b.Fatal(err)
	}
	for i := range msgs {
		_ = nc.Publish(subs[i], msgs[i])
		if i%20000 == 0 {
			_ = nc.Flush() // pace the publisher like a feed: the recorder is a subscriber
		}
	}
	_ = nc.Flush()
	cancel() // the recorder drains its subscription and stores what it holds
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if got := rec.Recorded(); got != uint64(len(msgs)) {
		b.Fatalf("recorded %d of %d messages", got, len(msgs))
	}
	return nc, js
}

func diskBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// BenchmarkRecordingBytesPerMessage is the disk cost of a recorded
// message (a 10-level book, 1-level deltas, trades), with and without the
// stream's S2 compression.
func BenchmarkRecordingBytesPerMessage(b *testing.B) {
	const n = 200_000
	for _, comp := range []bool{true, false} {
		b.Run(fmt.Sprintf("s2=%v", comp), func(b *testing.B) {
			var perMsg, payload float64
			for b.Loop() {
				_, _, dir, _ := recordN(b, record.Config{Uncompressed: !comp}, n)
				// The server compresses a block once it is sealed, in its
				// own time: measure the store as it settles.
				size := diskBytes(dir)
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
					time.Sleep(500 * time.Millisecond) // the server's background work; no event says it is done
					if now := diskBytes(dir); now < size {
						size = now
					} else {
						break
					}
				}
				perMsg = float64(size) / n
				_, msgs := feedLike(n, time.Now(), time.Millisecond)
				var sum int
				for _, m := range msgs {
					sum += len(m)
				}
				payload = float64(sum) / n
			}
			b.ReportMetric(perMsg, "disk-B/msg")
			b.ReportMetric(payload, "payload-B/msg")
		})
	}
}

// BenchmarkIngestWithRecording is the feed's publish path (core NATS
// publishes at full speed, then a flush) with and without the recording
// stream capturing the subjects, in one run: recording is the server's
// work, not the feed's.
func BenchmarkIngestWithRecording(b *testing.B) {
	const n = 200_000
	subs, msgs := feedLike(n, time.Now(), time.Millisecond)
	for _, rec := range []bool{false, true} {
		b.Run(fmt.Sprintf("record=%v", rec), func(b *testing.B) {
			ns := natstest.Server(b, embednats.Options{StoreDir: b.TempDir()})
			nc := natstest.Connect(b, ns.ClientURL())
			if rec {
				js, _ := jetstream.New(nc)
				if _, err := record.Ensure(context.Background(), js, "binance", record.Config{}); err != nil {
					b.Fatal(err)
				}
				r, _ := record.NewRecorder(natstest.Connect(b, ns.ClientURL()), js, "binance", nil, nil)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- r.Run(ctx) }()
				defer func() { cancel(); <-done }()
				time.Sleep(50 * time.Millisecond) // the recorder subscribes
			}
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				for i := range msgs {
					_ = nc.Publish(subs[i], msgs[i])
				}
				_ = nc.Flush()
			}
			b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkReplayThroughput replays a recorded range at max speed to one
// subscriber and reports delivered messages per second.
func BenchmarkReplayThroughput(b *testing.B) {
	const n = 300_000
	nc, js, _, t0 := recordN(b, record.Config{}, n)
	var got atomic.Int64
	sub, _ := nc.Subscribe("replay.bench.market.data.>", func(*nats.Msg) { got.Add(1) })
	_ = sub.SetPendingLimits(-1, -1)
	defer sub.Unsubscribe()
	_ = nc.Flush()
	var msgs uint64
	start := time.Now()
	for b.Loop() {
		r, err := replay.New(js, nc, replay.Config{Prefix: "replay.bench", Instruments: []replay.Instrument{{Venue: "binance", Symbol: "btcusdt"}},
			Start: t0.Add(time.Millisecond), End: t0.Add(time.Duration(n) * time.Millisecond), Lookback: time.Second}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { _ = r.Run(ctx) }()
		<-r.Done()
		msgs += r.Published()
		cancel()
	}
	b.ReportMetric(float64(msgs)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkReplayStartMidDay is the time from starting a replay at noon
// of a recorded day to its first delivered message. The day is one
// instrument's at a busy pair's rate: 3,000,000 messages (35 a second)
// over 24 hours of exchange time, with a checkpoint every minute as the
// feed writes them. The start is found by exchange time through the
// checkpoint markers (a binary search), then at most a minute of the
// recording is read and fast-forwarded.
func BenchmarkReplayStartMidDay(b *testing.B) {
	const n = 3_000_000
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	step := 24 * time.Hour / n
	subs, msgs := feedAt(n, func(i int) time.Time { return day.Add(time.Duration(i) * step) }, int(time.Minute/step))
	nc, js, _ := recordMsgs(b, record.Config{}, subs, msgs)
	noon := day.Add(12 * time.Hour)
	first := make(chan struct{}, 1)
	sub, _ := nc.Subscribe("replay.mid.market.data.>", func(*nats.Msg) {
		select {
		case first <- struct{}{}:
		default:
		}
	})
	defer sub.Unsubscribe()
	var worst time.Duration
	for b.Loop() {
		r, err := replay.New(js, nc, replay.Config{Prefix: "replay.mid", Instruments: []replay.Instrument{{Venue: "binance", Symbol: "btcusdt"}},
			Start: noon, End: noon.Add(time.Hour), Speed: 1}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		began := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- r.Run(ctx) }()
		select {
		case <-first:
		case err := <-errc:
			b.Fatalf("the replay ended before its first message: %v", err)
		}
		worst = max(worst, time.Since(began))
		cancel()
		<-errc
		for len(first) > 0 {
			<-first
		}
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "ms-to-first-worst")
}

// BenchmarkReplayPacing replays 60 s of recording at 1x to a subscriber
// and reports how late messages arrive against their recorded offsets
// (p50, p99, max). The recorded times are a market's: gaps drawn from an
// exponential distribution (mean 1 ms) with bursts of messages sharing an
// instant. The NATS server runs in another process, as in production.
// Lateness is measured against the fastest arrival (the transport's
// floor), so a uniformly slow path does not pass as on time. The baseline
// in the same run, source=bare, publishes the same messages at the same
// instants from a loop that spins for each one: the best pacing this
// machine's scheduler and NATS deliver.
func BenchmarkReplayPacing(b *testing.B) {
	const span = 60 * time.Second
	t0 := time.Now().Add(-time.Hour)
	times := marketTimes(t0, span)
	subs, msgs := feedAt(len(times), func(i int) time.Time { return times[i] }, 0)
	url := serverProcess(b, b.TempDir())
	nc, js := recordOn(b, url, record.Config{}, subs, msgs)
	sc := natstest.Connect(b, url) // the subscriber's own connection, as a strategy's
	for _, source := range []string{"replay", "bare"} {
		b.Run("source="+source, func(b *testing.B) {
			for b.Loop() {
				late := arrivals(b, sc, "replay.pace."+source, len(times), func(ctx context.Context, prefix string) {
					if source == "bare" {
						for i, due0 := 1, time.Now(); i < len(msgs); i++ {
							clock.SleepUntil(clock.Real, due0.Add(times[i].Sub(times[1])), ctx.Done())
							_ = nc.Publish(prefix+"."+subs[i], msgs[i])
						}
						return
					}
					reg := prometheus.NewRegistry()
					r, err := replay.New(js, nc, replay.Config{Prefix: prefix, Instruments: []replay.Instrument{{Venue: "binance", Symbol: "btcusdt"}},
						Start: times[1], End: times[len(times)-1].Add(time.Nanosecond), Speed: 1, Metrics: replay.NewMetrics(reg)}, nil, nil)
					if err != nil {
						b.Fatal(err)
					}
					go func() { _ = r.Run(ctx) }()
					<-r.Done()
					// The replayer's own pacing: lateness at publication
					// (the p99's histogram bucket, and the share over 1 ms).
					p99, over := histogramP99(b, reg, "paddock_replay_lateness_seconds", 1e-3)
					b.ReportMetric(p99*1e6, "publish-p99-late-us<=")
					b.ReportMetric(over*100, "publish-over-1ms-%")
				})
				q := func(q float64) time.Duration { return late[int(q*float64(len(late)-1))] }
				b.ReportMetric(float64(len(late)), "msgs")
				b.ReportMetric(float64(q(0.5).Microseconds()), "p50-late-us")
				b.ReportMetric(float64(q(0.99).Microseconds()), "p99-late-us")
				b.ReportMetric(float64(q(0.999).Microseconds()), "p99.9-late-us")
				b.ReportMetric(float64(late[len(late)-1].Microseconds()), "max-late-us")
			}
		})
	}
}

// marketTimes are span's worth of exchange times from t0: exponential gaps
// (mean 1 ms), every 20th message a burst of 5 at one instant.
func marketTimes(t0 time.Time, span time.Duration) []time.Time {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []time.Time
	for t := t0; t.Before(t0.Add(span)); {
		k := 1
		if len(out)%20 == 0 {
			k = 5
		}
		for range k {
			out = append(out, t)
		}
		t = t.Add(time.Duration(rng.ExpFloat64() * float64(time.Millisecond)))
	}
	return out
}

// arrivals subscribes to prefix's market data, runs publish, and returns
// each data message's lateness (sorted): its arrival offset from the
// first arrival minus its recorded offset from the first, less the
// smallest such value.
func arrivals(t testing.TB, nc *nats.Conn, prefix string, want int, publish func(ctx context.Context, prefix string)) []time.Duration {
	type arrival struct{ at, rec time.Time }
	var mu sync.Mutex
	arr := make([]arrival, 0, want)
	all := make(chan struct{})
	sub, err := nc.Subscribe(prefix+".market.data.>", func(m *nats.Msg) {
		now := time.Now()
		pm, err := proto.Decode(m.Data)
		if err != nil || pm.Seq() == 1 && pm.Type() == proto.TypeBookSnapshot {
			return // the replay's start snapshot: not a recorded message
		}
		mu.Lock()
		arr = append(arr, arrival{at: now, rec: record.Time(pm)})
		if len(arr) == want-1 {
			close(all)
		}
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	defer sub.Unsubscribe()
	_ = nc.Flush()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publish(ctx, prefix)
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		mu.Lock()
		t.Fatalf("%d of %d messages arrived", len(arr), want-1)
	}
	mu.Lock()
	defer mu.Unlock()
	late := make([]time.Duration, 0, len(arr))
	for _, a := range arr {
		late = append(late, a.at.Sub(arr[0].at)-a.rec.Sub(arr[0].rec))
	}
	slices.Sort(late)
	floor := late[0]
	for i := range late {
		late[i] -= floor
	}
	return late
}

// BenchmarkIngestAtFeedRate publishes at a fixed 100,000 messages/s (a
// busy venue's rate, several times Binance's BTCUSDT) for 2 s, with and
// without the recorder, and reports the rate achieved and what the
// recorder stored: at the rates a feed runs, recording costs it nothing.
func BenchmarkIngestAtFeedRate(b *testing.B) {
	const rate, secs = 100_000, 2
	subs, msgs := feedLike(rate*secs, time.Now(), time.Millisecond)
	for _, rec := range []bool{false, true} {
		b.Run(fmt.Sprintf("record=%v", rec), func(b *testing.B) {
			ns := natstest.Server(b, embednats.Options{StoreDir: b.TempDir()})
			nc := natstest.Connect(b, ns.ClientURL())
			var st jetstream.Stream
			if rec {
				js, _ := jetstream.New(nc)
				var err error
				if st, err = record.Ensure(context.Background(), js, "binance", record.Config{}); err != nil {
					b.Fatal(err)
				}
				r, _ := record.NewRecorder(natstest.Connect(b, ns.ClientURL()), js, "binance", nil, nil)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- r.Run(ctx) }()
				defer func() { cancel(); <-done }()
				time.Sleep(50 * time.Millisecond) // the recorder subscribes
			}
			var achieved float64
			for b.Loop() {
				start := time.Now()
				for i := range msgs {
					if i%100 == 0 { // 100 messages a millisecond
						if d := time.Until(start.Add(time.Duration(i/100) * time.Millisecond)); d > 0 {
							time.Sleep(d)
						}
					}
					_ = nc.Publish(subs[i], msgs[i])
				}
				_ = nc.Flush()
				achieved = float64(len(msgs)) / time.Since(start).Seconds()
			}
			b.ReportMetric(achieved, "msgs/s")
			if st != nil {
				time.Sleep(300 * time.Millisecond) // the last batch
				var stored int
				info, _ := st.Info(context.Background())
				for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
					m, err := st.GetMsg(context.Background(), seq)
					if err != nil {
						break
					}
					_ = record.Frames(m.Data, func(string, []byte) error { stored++; return nil })
				}
				b.ReportMetric(float64(stored)/float64(len(msgs)*b.N), "recorded-fraction")
			}
		})
	}
}

// histogramP99 reads a histogram from reg: the upper bound of the bucket
// holding its 99th percentile, and the share of observations above limit.
func histogramP99(t testing.TB, reg *prometheus.Registry, name string, limit float64) (p99, over float64) {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		n := float64(h.GetSampleCount())
		p99 = math.Inf(1)
		for _, bk := range h.GetBucket() {
			if float64(bk.GetCumulativeCount()) >= 0.99*n && math.IsInf(p99, 1) {
				p99 = bk.GetUpperBound()
			}
			if bk.GetUpperBound() == limit {
				over = 1 - float64(bk.GetCumulativeCount())/n
			}
		}
		return p99, over
	}
	t.Fatalf("no histogram %s", name)
	return 0, 0
}
