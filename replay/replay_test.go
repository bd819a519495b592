package replay_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paddockhq/paddock/book"
	"github.com/paddockhq/paddock/feed/daemon"
	"github.com/paddockhq/paddock/feed/sim"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/record"
	"github.com/paddockhq/paddock/replay"
	"github.com/paddockhq/paddock/sandbox/marketdata"
)

// recorded is one message as it sits in the recording.
type recorded struct {
	subj string
	raw  []byte
	t    time.Time
}

// session records a simulator session through the real feed into
// JetStream, with a gap (a skipped depth update: Reset and resync) and a
// connection rollover (the venue's serverShutdown) in it, and returns the
// recording of btcusdt in stored order.
func session(t *testing.T) (*nats.Conn, jetstream.JetStream, []recorded) {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	nc := natstest.Connect(t, ns.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New("127.0.0.1:0", sim.Config{Symbols: []sim.Symbol{{Name: "BTCUSDT", Price: 27123.45}}, Seed: 7, TradeEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.Step(20)
	cfg := &daemon.Config{NATS: daemon.NATSConfig{URLs: []string{ns.ClientURL()}}, MetricsListen: "127.0.0.1:0", StatusInterval: 100 * time.Millisecond,
		Record: &record.Config{CheckpointInterval: 150 * time.Millisecond},
		Venues: []daemon.VenueConfig{{Name: "binance", WSURL: s.SpotWS(), RESTURL: s.SpotREST(), Instruments: []string{"btcusdt"}, SilenceTimeout: time.Minute}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg, nil, nil) }()
	stopFeed := sync.OnceFunc(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("feed: %v", err)
		}
	})
	t.Cleanup(stopFeed)
	var st jetstream.Stream
	for st == nil {
		if st, err = js.Stream(t.Context(), record.StreamName("binance")); err != nil {
			time.Sleep(20 * time.Millisecond) // the feed creates it as it starts
			st = nil
		}
	}
	// About 1.5 s of traffic: steps every 10 ms, a gap, a rollover.
	for i := range 150 {
		switch i {
		case 50:
			s.SkipNextDepth(false, "BTCUSDT")
		case 100:
			s.AnnounceShutdown(50 * time.Millisecond)
		}
		s.Step(2)
		time.Sleep(10 * time.Millisecond) // the recording's clock is the wall clock: spread it
	}
	time.Sleep(300 * time.Millisecond) // the last frames reach the stream
	stopFeed()
	cons, err := js.OrderedConsumer(t.Context(), record.StreamName("binance"), jetstream.OrderedConsumerConfig{FilterSubjects: []string{"recording.binance"}})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(t.Context())
	var out []recorded
	var batches uint64
	for batches < info.State.Msgs {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			batches++
			err := record.Frames(m.Data(), func(subj string, data []byte) error {
				if !strings.HasPrefix(subj, "market.data.binance.btcusdt.") {
					return nil
				}
				pm, err := proto.Decode(data)
				if err != nil {
					return err
				}
				out = append(out, recorded{subj: subj, raw: bytes.Clone(data), t: record.Time(pm)})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if n == 0 {
			break
		}
	}
	types := map[proto.MsgType]int{}
	for _, r := range out {
		m, _ := proto.Decode(r.raw)
		types[m.Type()]++
	}
	if types[proto.TypeReset] < 2 || types[proto.TypeBookSnapshot] < 4 || types[proto.TypeTrade] == 0 || types[proto.TypeBookDelta] == 0 {
		t.Fatalf("the recording lacks what it must show (resets for the gap and rollover, checkpoints, trades, deltas): %v", types)
	}
	return nc, js, out
}

// run replays [start, end) at max speed into prefix and returns what was
// delivered, in order.
func run(t *testing.T, nc *nats.Conn, js jetstream.JetStream, prefix string, start, end time.Time) []recorded {
	var mu sync.Mutex
	var got []recorded
	sub, err := nc.Subscribe(prefix+".market.data.>", func(m *nats.Msg) {
		mu.Lock()
		got = append(got, recorded{subj: m.Subject[len(prefix)+1:], raw: bytes.Clone(m.Data)})
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = nc.Flush()
	// A lookback of 1ns: the start is found through the checkpoint
	// markers, not by reading back in time.
	r, err := replay.New(js, nc, replay.Config{Prefix: prefix, Instruments: []replay.Instrument{{Venue: "binance", Symbol: "btcusdt"}},
		Start: start, End: end, Lookback: time.Nanosecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	select {
	case <-r.Done():
	case err := <-errc:
		t.Fatalf("replay: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the replay did not finish")
	}
	_ = nc.Flush()
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if uint64(n) == r.Published() {
			break
		}
		time.Sleep(5 * time.Millisecond) // the subscriber's goroutine catches up with what was published
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

// TestReplayEqualsTheRecording: a replay delivers the recording of its
// range message for message (types, payloads, order), restamped with fresh
// per-subject sequence numbers and FlagReplay, after one BookSnapshot of
// the book fast-forwarded to the start; the final books are equal; and a
// replay that starts mid-range delivers the tail of the full one.
func TestReplayEqualsTheRecording(t *testing.T) {
	nc, js, rec := session(t)
	// A range inside the session, starting after the first checkpoint.
	var first time.Time
	for _, r := range rec {
		if m, _ := proto.Decode(r.raw); m.Type() == proto.TypeBookSnapshot {
			first = r.t
			break
		}
	}
	start, end := first.Add(200*time.Millisecond), rec[len(rec)-1].t.Add(-100*time.Millisecond)
	want := between(rec, start, end)
	got := run(t, nc, js, "replay.full", start, end)
	if len(got) != len(want)+1 {
		t.Fatalf("replayed %d messages, want the start snapshot and the %d recorded in range", len(got), len(want))
	}
	m0, err := proto.Decode(got[0].raw)
	if err != nil || m0.Type() != proto.TypeBookSnapshot || m0.Seq() != 1 || m0.Flags()&proto.FlagReplay == 0 {
		t.Fatalf("the first replayed message: %v %v", m0.Type(), err)
	}
	seqs := map[string]uint64{got[0].subj: 1}
	for i, w := range want {
		g := got[i+1]
		seqs[w.subj]++
		exp := bytes.Clone(w.raw)
		if err := proto.Restamp(exp, seqs[w.subj], proto.FlagReplay); err != nil {
			t.Fatal(err)
		}
		if g.subj != w.subj || !bytes.Equal(g.raw, exp) {
			t.Fatalf("message %d: replayed %s %x, recorded %s %x", i, g.subj, g.raw, w.subj, exp)
		}
	}
	// The book a subscriber builds from the replay equals the one built
	// from the recording up to the end.
	if a, b := bookOf(t, rec, end, true), bookOf(t, got, time.Time{}, false); !equalBooks(a, b) {
		t.Fatal("the replayed book differs from the recorded one at the end")
	}

	// From the middle: its start snapshot is the full replay's book at that
	// instant, and what follows is the full replay's tail.
	mid := start.Add(end.Sub(start) / 2)
	tail := run(t, nc, js, "replay.mid", mid, end)
	fullTail := between(want, mid, end)
	if len(tail) != len(fullTail)+1 {
		t.Fatalf("mid-range replay: %d messages, want %d", len(tail), len(fullTail)+1)
	}
	for i, w := range fullTail {
		a, _ := proto.Decode(tail[i+1].raw)
		b, _ := proto.Decode(w.raw)
		if tail[i+1].subj != w.subj || !bytes.Equal(a.Bytes()[proto.HeaderLen:], b.Bytes()[proto.HeaderLen:]) || a.Type() != b.Type() {
			t.Fatalf("mid-range message %d differs from the full replay's", i)
		}
	}
	if a, b := bookOf(t, rec, mid, true), bookOf(t, tail[:1], time.Time{}, false); !equalBooks(a, b) {
		t.Fatal("the mid-range start snapshot is not the book at that instant")
	}
}

// between is the recorded order from the first message at or after start
// to the first at or after end: a replay's range.
func between(rec []recorded, start, end time.Time) []recorded {
	var out []recorded
	in := false
	for _, r := range rec {
		if !in && r.t.Before(start) {
			continue
		}
		in = true
		if !r.t.Before(end) {
			break
		}
		out = append(out, r)
	}
	return out
}

// bookOf builds the btcusdt book from messages: recorded ones up to until
// (joining at the first snapshot), or replayed ones.
func bookOf(t *testing.T, ms []recorded, until time.Time, recordedMsgs bool) *book.Book {
	var b book.Book
	live := false
	for _, r := range ms {
		if recordedMsgs && !r.t.Before(until) {
			break
		}
		m, err := proto.Decode(r.raw)
		if err != nil || r.subj != "market.data.binance.btcusdt.orderbook" {
			continue
		}
		var bids, asks []proto.Level
		switch m.Type() {
		case proto.TypeBookSnapshot, proto.TypeBookDelta:
			v := proto.BookView{Message: m}
			for i := range v.NumBids() {
				bids = append(bids, v.Bid(i))
			}
			for i := range v.NumAsks() {
				asks = append(asks, v.Ask(i))
			}
			if m.Type() == proto.TypeBookSnapshot {
				live = b.Load(bids, asks) == nil
			} else if live {
				live = b.Apply(bids, asks) == nil
			}
		case proto.TypeReset:
			live = false
			b.Reset()
		}
	}
	if !live {
		t.Fatal("no live book")
	}
	return &b
}

func equalBooks(a, b *book.Book) bool {
	ab, aa := a.AppendBids(nil, 0), a.AppendAsks(nil, 0)
	bb, ba := b.AppendBids(nil, 0), b.AppendAsks(nil, 0)
	eq := func(x, y []proto.Level) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i].Price.Cmp(y[i].Price) != 0 || x[i].Qty.Cmp(y[i].Qty) != 0 {
				return false
			}
		}
		return true
	}
	return len(ab) > 0 && eq(ab, bb) && eq(aa, ba)
}

// TestANodeJoinsAReplay: the SDK's market data client, pointed at a
// replay namespace, joins the replayed book by the SPEC's procedure (the
// replayer answers snapshot requests) and follows it at 1x.
func TestANodeJoinsAReplay(t *testing.T) {
	nc, js, rec := session(t)
	start, end := rec[0].t.Add(300*time.Millisecond), rec[len(rec)-1].t
	var live atomic.Bool // the book is the Market goroutine's: its handler reports
	m, err := marketdata.NewMarketAt(nc, "replay.node", []marketdata.Instrument{{Venue: "binance", Symbol: "btcusdt"}}, marketdata.Handlers{
		Book: func(b *marketdata.Book, _, _ []proto.Level) { live.Store(b.Live()) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = m.Run(ctx) }()
	r, err := replay.New(js, nc, replay.Config{Prefix: "replay.node", Instruments: []replay.Instrument{{Venue: "binance", Symbol: "btcusdt"}},
		Start: start, End: end, Speed: 1, Lookback: time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.Run(ctx) }()
	select {
	case <-r.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the replay did not finish")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if live.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the client never had a live replayed book")
		}
		time.Sleep(10 * time.Millisecond) // the client runs on its own goroutine
	}
	if now := r.Now(); now.Before(start) || !now.Before(end) {
		t.Fatalf("replay clock %s outside [%s, %s)", now, start, end)
	}
	// The client's clock is the replay's, whatever else arrives: after a
	// heartbeat (stamped with the wall clock) it is still in the range.
	hb, err := nc.SubscribeSync("replay.node.market.health.>")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hb.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("no heartbeat: %v", err)
	}
	_ = nc.Flush()
	if now := m.Now(); now.Before(start) || !now.Before(end) {
		t.Fatalf("the client's market clock %s is outside the replayed [%s, %s)", now, start, end)
	}
}

// TestCheckpointIndexAndCoverage: the recorder indexes every batch that
// holds a checkpoint; Seek finds the last one at or before an instant by
// exchange time, and the batch it names holds that book; coverage is per
// instrument, from the first checkpoint to the last message.
func TestCheckpointIndexAndCoverage(t *testing.T) {
	_, js, rec := session(t)
	var snaps []time.Time
	for _, r := range rec {
		if m, _ := proto.Decode(r.raw); m.Type() == proto.TypeBookSnapshot && r.subj == "market.data.binance.btcusdt.orderbook" {
			snaps = append(snaps, r.t)
		}
	}
	st, err := js.Stream(t.Context(), record.StreamName("binance"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := record.Seek(t.Context(), st, "binance", "btcusdt", snaps[0].Add(-time.Nanosecond)); !errors.Is(err, record.ErrNotRecorded) {
		t.Fatalf("a seek before the first checkpoint: %v", err)
	}
	for _, at := range []time.Time{snaps[0], snaps[len(snaps)/3].Add(time.Millisecond), snaps[len(snaps)-1].Add(time.Hour)} {
		cp, err := record.Seek(t.Context(), st, "binance", "btcusdt", at)
		if err != nil {
			t.Fatalf("seek %s: %v", at, err)
		}
		// The latest checkpoint at or before at (a batch's marker is its
		// first checkpoint: checkpoints come 150 ms apart, batches 50 ms).
		var want time.Time
		for _, s := range snaps {
			if !s.After(at) {
				want = s
			}
		}
		if cp.Time.After(at) || want.Sub(cp.Time) > 100*time.Millisecond {
			t.Fatalf("seek %s: checkpoint at %s, the last one is at %s", at, cp.Time, want)
		}
		m, err := st.GetMsg(t.Context(), cp.Seq)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		_ = record.Frames(m.Data, func(subj string, data []byte) error {
			pm, err := proto.Decode(data)
			found = found || err == nil && subj == "market.data.binance.btcusdt.orderbook" && pm.Type() == proto.TypeBookSnapshot && record.Time(pm).Equal(cp.Time)
			return nil
		})
		if !found {
			t.Fatalf("seek %s: batch %d does not hold the checkpoint of %s", at, cp.Seq, cp.Time)
		}
	}

	rgs, err := record.Coverage(t.Context(), js, "binance", "btcusdt")
	if err != nil || len(rgs) != 1 || rgs[0].Imported || !rgs[0].First.Equal(snaps[0]) || !rgs[0].Last.Equal(rec[len(rec)-1].t) {
		t.Fatalf("coverage %v %v: want %s .. %s", rgs, err, snaps[0], rec[len(rec)-1].t)
	}
	if err := record.Check(t.Context(), js, "binance", "btcusdt", snaps[0], rec[len(rec)-1].t); err != nil {
		t.Fatalf("the whole session: %v", err)
	}
	var nc *record.NotCovered
	if err := record.Check(t.Context(), js, "binance", "btcusdt", snaps[0].Add(-time.Second), snaps[1]); !errors.As(err, &nc) || len(nc.Have) != 1 ||
		!strings.Contains(err.Error(), "is not covered: binance btcusdt recorded ") {
		t.Fatalf("a range starting before the first checkpoint: %v", err)
	}
	if err := record.Check(t.Context(), js, "binance", "ethusdt", snaps[0], snaps[1]); !errors.Is(err, record.ErrNotRecorded) || err.Error() != "nothing of binance ethusdt is recorded" {
		t.Fatalf("an instrument the feed did not record: %v", err)
	}
	if err := record.Check(t.Context(), js, "bybit", "btcusdt", snaps[0], snaps[1]); !errors.Is(err, record.ErrNotRecorded) {
		t.Fatalf("a venue not recorded: %v", err)
	}
	if ins, err := record.Instruments(t.Context(), js, "binance"); err != nil || len(ins) != 1 || ins[0] != "btcusdt" {
		t.Fatalf("instruments %v %v", ins, err)
	}
}
