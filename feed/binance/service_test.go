package binance_test

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/book"
	"github.com/paddockhq/paddock/proto"
)

// TestLateJoinerSplicesSnapshotWithStream follows the joining procedure in
// proto/SPEC.md section 6 while the market moves: subscribe, buffer, request
// a snapshot, drop what it covers, apply the rest in sequence.
func TestLateJoinerSplicesSnapshotWithStream(t *testing.T) {
	h := newHarness(t, harnessOpts{symbols: []string{"btcusdt"}})
	h.start()
	h.stepUntil("in sync", 10*time.Second, func() bool { ok, _ := h.svc.Ready(); return ok })
	h.sim.Step(50)

	var mu sync.Mutex
	var buffered [][]byte
	subj, _ := proto.DataSubject("binance", "btcusdt", proto.EventOrderbook)
	sub, err := h.sub.Subscribe(subj, func(m *nats.Msg) {
		mu.Lock()
		buffered = append(buffered, m.Data)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = h.sub.Flush()
	h.sim.Step(10) // deltas arrive before the snapshot request is answered

	reqSubj, _ := proto.SnapshotSubject("binance", "btcusdt")
	reply, err := h.sub.Request(reqSubj, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m, err := proto.Decode(reply.Data)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := m.AsBookSnapshot()
	if err != nil {
		t.Fatalf("reply is a %v", m.Type())
	}
	if m.Flags()&proto.FlagSnapshotReply == 0 {
		t.Fatal("snapshot reply lacks the snapshot_reply flag")
	}
	var b book.Book
	bids, asks := levelsOf(snap)
	if err := b.Load(bids, asks); err != nil {
		t.Fatal(err)
	}
	seq, lastID := m.Seq(), snap.UpdateID()

	h.sim.Step(30)
	_, _, want := h.sim.Book(false, "BTCUSDT")
	apply := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, raw := range buffered {
			msg, err := proto.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if msg.Seq() <= seq {
				continue // covered by the snapshot
			}
			if msg.Seq() != seq+1 {
				t.Fatalf("sequence %d after %d: the reply does not splice", msg.Seq(), seq)
			}
			seq = msg.Seq()
			d, err := msg.AsBookDelta()
			if err != nil {
				t.Fatalf("unexpected %v on the stream", msg.Type())
			}
			bb, aa := levelsOf(d)
			if err := b.Apply(bb, aa); err != nil {
				t.Fatal(err)
			}
			lastID = d.LastUpdateID()
		}
		buffered = buffered[:0]
	}
	waitUntil(t, "the joined book to reach the simulator", 5*time.Second, func() bool {
		apply()
		return lastID == want
	})
	tb, ta, _ := h.sim.Book(false, "BTCUSDT")
	if err := sameLevels(b.AppendBids(nil, 0), tb); err != nil {
		t.Fatal(err)
	}
	if err := sameLevels(b.AppendAsks(nil, 0), ta); err != nil {
		t.Fatal(err)
	}

	// An instrument the feed does not carry has no responder.
	other, _ := proto.SnapshotSubject("binance", "dogeusdt")
	if _, err := h.sub.Request(other, nil, 200*time.Millisecond); err != nats.ErrNoResponders {
		t.Fatalf("request for an unknown instrument: %v", err)
	}
}

func TestSnapshotReplyBeforeSyncIsReset(t *testing.T) {
	h := newHarness(t, harnessOpts{symbols: []string{"btcusdt"}})
	h.start() // no steps: the book cannot sync without depth events
	reqSubj, _ := proto.SnapshotSubject("binance", "btcusdt")
	var reply *nats.Msg
	waitUntil(t, "the snapshot service to answer", 5*time.Second, func() bool {
		var err error
		reply, err = h.sub.Request(reqSubj, nil, time.Second)
		if err != nil && err != nats.ErrNoResponders {
			t.Fatal(err)
		}
		return err == nil
	})
	m, err := proto.Decode(reply.Data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AsReset(); err != nil || m.Flags()&proto.FlagSnapshotReply == 0 {
		t.Fatalf("reply before sync: %v flags %b", m.Type(), m.Flags())
	}
}

func TestHealthSubjectAndEndpoints(t *testing.T) {
	h := newHarness(t, harnessOpts{symbols: []string{"btcusdt", "ethusdt"}})
	health, _ := proto.HealthSubject("binance")
	statuses, err := h.sub.SubscribeSync(health)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.svc.Handler(h.reg))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Fatalf("/readyz before start: %d", code)
	}
	h.start()
	h.stepUntil("in sync", 10*time.Second, func() bool { ok, _ := h.svc.Ready(); return ok })
	h.sim.Step(10)
	var lastSeq uint64
	waitUntil(t, "a connected status with both books in sync", 5*time.Second, func() bool {
		msg, err := statuses.NextMsg(time.Second)
		if err != nil {
			return false
		}
		m, err := proto.Decode(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		st, err := m.AsStatus()
		if err != nil {
			t.Fatal(err)
		}
		if lastSeq != 0 && m.Seq() != lastSeq+1 {
			t.Fatalf("health sequence %d after %d", m.Seq(), lastSeq)
		}
		lastSeq = m.Seq()
		return st.State() == proto.StateConnected && st.InSync() == 2 && st.Instruments() == 2 && st.Connections() == 1 && st.Messages() > 0 && st.LastData() > 0
	})
	code, body := get("/readyz")
	var ready struct{ Ready bool }
	if code != 200 || json.Unmarshal([]byte(body), &ready) != nil || !ready.Ready {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`paddock_feed_messages_published_total{instrument="btcusdt",type="book_delta",venue="binance"}`,
		`paddock_feed_connection_state{venue="binance"} 2`,
		`paddock_feed_books_in_sync{venue="binance"} 2`,
		`paddock_feed_publish_latency_seconds_bucket`,
		`paddock_feed_frames_total{venue="binance"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
