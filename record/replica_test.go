package record

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
)

// TestReplicasRecordOnceAndFailOver: two feeds' recorders of one venue on
// one server. One records, the other stands by; when the recorder dies
// without a word (its connection cut mid-stream), the standby takes over
// when the lease expires and stores what followed the last stored batch
// from its ring. The recording holds every published message exactly
// once, in order.
func TestReplicasRecordOnceAndFailOver(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	pub := natstest.Connect(t, ns.ClientURL())
	js, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(t.Context(), js, "binance", Config{}); err != nil {
		t.Fatal(err)
	}
	type replica struct {
		rec  *Recorder
		stop context.CancelFunc
		done chan error
	}
	start := func(name string) (*replica, func()) {
		nc := natstest.Connect(t, ns.ClientURL())
		rjs, _ := jetstream.New(nc)
		rec, err := NewRecorder(nc, rjs, "binance", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		rec.Lease, rec.ID = time.Second, name
		ctx, cancel := context.WithCancel(t.Context())
		rp := &replica{rec: rec, stop: cancel, done: make(chan error, 1)}
		go func() { rp.done <- rec.Run(ctx) }()
		<-rec.Subscribed()
		return rp, nc.Close
	}
	a, cutA := start("a")
	waitFor(t, "a to lead", a.rec.Leader)
	b, _ := start("b")

	var sent [][]byte
	publish := func(n int) {
		for range n {
			h := proto.Header{Venue: proto.VenueBinance, Seq: uint64(len(sent) + 1), EventTime: time.Now().UnixNano(), RecvTime: time.Now().UnixNano()}
			raw, _ := proto.AppendTrade(nil, &h, &proto.Trade{Price: proto.Decimal{Mant: 1, Exp: 0}, Qty: proto.Decimal{Mant: 1, Exp: 0}, TradeID: uint64(len(sent) + 1)})
			if err := pub.Publish("market.data.binance.btcusdt.trades", raw); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, raw)
			time.Sleep(time.Millisecond) // a feed's pace: the failover happens mid-stream
		}
		_ = pub.Flush()
	}
	publish(500)
	if b.rec.Leader() {
		t.Fatal("two leaders")
	}
	cutA() // a dies: no drain, no lease handover
	publish(500)
	waitFor(t, "b to take over", b.rec.Leader)
	publish(500)
	b.stop()
	if err := <-b.done; err != nil {
		t.Fatal(err)
	}
	a.stop()
	<-a.done

	// The recording, batch by batch, in stored order.
	st, _ := js.Stream(t.Context(), StreamName("binance"))
	info, _ := st.Info(t.Context())
	var got [][]byte
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil || m.Subject != "recording.binance" {
			continue
		}
		_ = Frames(m.Data, func(_ string, d []byte) error { got = append(got, d); return nil })
	}
	if len(got) != len(sent) {
		t.Fatalf("recorded %d messages, %d were published (a recorded %d, b %d)", len(got), len(sent), a.rec.Recorded(), b.rec.Recorded())
	}
	for i := range sent {
		if !bytes.Equal(got[i], sent[i]) {
			m, _ := proto.Decode(got[i])
			t.Fatalf("message %d: recorded seq %d, published seq %d", i, m.Seq(), i+1)
		}
	}
	if a.rec.Recorded() == 0 || b.rec.Recorded() == 0 {
		t.Fatalf("a recorded %d, b %d: both should have recorded a part", a.rec.Recorded(), b.rec.Recorded())
	}
}

// TestAReplicaHandsOverAtShutdown: a recorder stopping hands its lease
// over at once, and the standby resumes exactly after it.
func TestAReplicaHandsOverAtShutdown(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	pub := natstest.Connect(t, ns.ClientURL())
	js, _ := jetstream.New(pub)
	if _, err := Ensure(t.Context(), js, "bybit", Config{}); err != nil {
		t.Fatal(err)
	}
	recs := make([]*Recorder, 2)
	stops := make([]context.CancelFunc, 2)
	dones := make([]chan error, 2)
	for i := range recs {
		nc := natstest.Connect(t, ns.ClientURL())
		rjs, _ := jetstream.New(nc)
		recs[i], _ = NewRecorder(nc, rjs, "bybit", nil, nil)
		recs[i].Lease, recs[i].ID = time.Minute, fmt.Sprint("r", i)
		var ctx context.Context
		ctx, stops[i] = context.WithCancel(t.Context())
		dones[i] = make(chan error, 1)
		go func() { dones[i] <- recs[i].Run(ctx) }()
		<-recs[i].Subscribed()
		if i == 0 {
			waitFor(t, "r0 to lead", recs[0].Leader)
		}
	}
	var sent int
	publish := func(n int) {
		for range n {
			sent++
			h := proto.Header{Venue: proto.VenueBybit, Seq: uint64(sent), EventTime: 1, RecvTime: 1}
			raw, _ := proto.AppendTrade(nil, &h, &proto.Trade{Price: proto.Decimal{Mant: 1}, Qty: proto.Decimal{Mant: 1}, TradeID: uint64(sent)})
			_ = pub.Publish("market.data.bybit.btcusdt.trades", raw)
		}
		_ = pub.Flush()
	}
	publish(300)
	stops[0]()
	if err := <-dones[0]; err != nil {
		t.Fatal(err)
	}
	// A lease of a minute: only the handover lets r1 take over this soon.
	waitFor(t, "r1 to take over", recs[1].Leader)
	publish(300)
	stops[1]()
	<-dones[1]
	if n := recs[0].Recorded() + recs[1].Recorded(); n != uint64(sent) || recs[0].Recorded() != 300 {
		t.Fatalf("r0 recorded %d, r1 %d; %d were published", recs[0].Recorded(), recs[1].Recorded(), sent)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // the replicas run on their own goroutines
	}
}
