package bybit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/feed"
	"github.com/paddockhq/paddock/feed/session"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
	"github.com/prometheus/client_golang/prometheus"
)

// hotPath is an adapter on a real embedded NATS server with one instrument
// whose book is in sync; frames go to Frame under the slot's lock, as the
// session delivers them.
type hotPath struct {
	a   *Adapter
	st  *instState
	c   *session.Conn
	reg *prometheus.Registry
	pub *copyPublisher // nil on real NATS
}

// copyPublisher copies every message, as nats.go's Publish does, and
// keeps nothing. The allocation lock publishes through it because the
// embedded NATS server, in this process, allocates per inbound batch (its
// subject cache) and those would count as the feed's; nats.go's own publish
// path is allocation-free (feed/binance's lock runs on it), and the wire
// end to end is bench/e2e's.
type copyPublisher struct{ buf []byte }

func (p *copyPublisher) Publish(_ string, data []byte) error {
	p.buf = append(p.buf[:0], data...)
	return nil
}

func newHotPath(tb testing.TB, realNATS bool) *hotPath {
	tb.Helper()
	cp := &copyPublisher{}
	var pub feed.Publisher = cp
	if realNATS {
		ns := natstest.Server(tb, embednats.Options{})
		pub, cp = natstest.Connect(tb, ns.ClientURL()), nil
	}
	reg := prometheus.NewRegistry()
	out, err := feed.NewOutlet(proto.VenueBybitPerp, []string{"btcusdt"}, feed.Events{Trades: true, Orderbook: true, BBO: true}, pub,
		feed.NewMetrics(reg), nil)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := New(Config{WSURL: "ws://127.0.0.1:1"}, out)
	if err != nil {
		tb.Fatal(err)
	}
	st := a.states["BTCUSDT"]
	var bids, asks []proto.Level
	for i := range 500 {
		bids = append(bids, proto.Level{Price: proto.Decimal{Mant: 3024700 - int64(i)*10, Exp: -2}, Qty: proto.Decimal{Mant: 1000, Exp: -3}})
		asks = append(asks, proto.Level{Price: proto.Decimal{Mant: 3024800 + int64(i)*10, Exp: -2}, Qty: proto.Decimal{Mant: 1000, Exp: -3}})
	}
	if err := st.in.LoadSnapshot(feed.Times{}, 100, 0, bids, asks); err != nil {
		tb.Fatal(err)
	}
	st.synced, st.lastU = true, 100
	return &hotPath{a: a, st: st, c: &session.Conn{}, reg: reg, pub: cp}
}

func (h *hotPath) frame(f []byte) {
	h.a.sess.Lock()
	h.a.Frame(h.c, f, 1)
	h.a.sess.Unlock()
}

// frames builds n frames of one kind with consecutive update ids or trade
// sequences, before measuring.
func frames(kind string, n int, from uint64) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		id := from + uint64(i)
		switch kind {
		case "delta50":
			var b strings.Builder
			fmt.Fprintf(&b, `{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT","b":[`)
			for j := range 25 {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `["%d.%02d","%d.%03d"]`, 30247-j, 0, j%3, (j*7+int(id))%1000)
			}
			b.WriteString(`],"a":[`)
			for j := range 25 {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `["%d.%02d","%d.%03d"]`, 30248+j, 0, j%3, (j*3+int(id))%1000)
			}
			fmt.Fprintf(&b, `],"u":%d,"seq":%d},"cts":1687940967464}`, 100+id, id)
			out[i] = []byte(b.String())
		case "trades50":
			var b strings.Builder
			b.WriteString(`{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[`)
			for j := range 50 {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"%08x-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":%d}`, id*50+uint64(j), id*50+uint64(j))
			}
			b.WriteString(`]}`)
			out[i] = []byte(b.String())
		}
	}
	return out
}

// TestFrameToNATSAllocs locks zero allocations per message, batched trades
// included: parse, de-duplicate, book, encode, publish on NATS.
func TestFrameToNATSAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race; make test runs this without it")
	}
	for _, kind := range []string{"delta50", "trades50"} {
		t.Run("event="+kind, func(t *testing.T) {
			h := newHotPath(t, false)
			fs := frames(kind, 520, 1)
			i := 0
			for range 10 {
				h.frame(fs[i])
				i++
			}
			if n := testing.AllocsPerRun(500, func() { h.frame(fs[i]); i++ }); n != 0 {
				t.Fatalf("%v allocations per %s frame", n, kind)
			}
			if kind == "delta50" && (!h.st.synced || h.st.lastU != 100+uint64(i)) {
				t.Fatalf("deltas not applied: synced %v lastU %d after %d", h.st.synced, h.st.lastU, i)
			}
			if kind == "trades50" && h.st.tradeCnt != uint64(i)*50 {
				t.Fatalf("%d trades published after %d frames", h.st.tradeCnt, i)
			}
		})
	}
}

// BenchmarkFrameToNATS is the whole per-message path after the WebSocket
// read, on a real NATS connection; trades are per push of 50. Its allocs/op
// include the in-process server's (see copyPublisher); the lock above holds
// the feed's own at zero.
func BenchmarkFrameToNATS(b *testing.B) {
	for _, kind := range []string{"delta50", "trades50"} {
		b.Run("event="+kind, func(b *testing.B) {
			h := newHotPath(b, true)
			fs := frames(kind, 1<<10, 1)
			b.SetBytes(int64(len(fs[0])))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(fs) {
					// Out of frames: start the ids over rather than build
					// more (allocations here would be counted as ours).
					i = 0
					h.st.haveSeq, h.st.lastU = false, 100
				}
				h.frame(fs[i])
				i++
			}
		})
	}
}

// TestCrossedBookResyncs: a delta with valid sequence numbers that would
// cross the book (a bid above the best ask) is corruption: the instrument
// is Reset and resynced, and it is counted, never published.
func TestCrossedBookResyncs(t *testing.T) {
	h := newHotPath(t, false)
	h.frame([]byte(`{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["30300.00","1"]],"a":[],"u":101,"seq":1},"cts":1}`))
	if h.st.synced || h.st.in.InSync() {
		t.Fatal("a crossed book stayed in sync")
	}
	for name, want := range map[string]float64{"paddock_feed_book_crossed_total": 1, "paddock_feed_book_gaps_total": 1, "paddock_feed_parse_errors_total": 0} {
		var got float64
		mfs, _ := h.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					got += m.GetCounter().GetValue()
				}
			}
		}
		if got != want {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestVenueSeqIsCarried: Bybit's cross sequence "seq" of a book update
// travels in the published BookDelta (venue_seq), and the matching engine's
// time "cts" is its event time.
func TestVenueSeqIsCarried(t *testing.T) {
	h := newHotPath(t, false)
	h.frame([]byte(`{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT","b":[["30246.00","2"]],"a":[],"u":101,"seq":66544703342},"cts":1687940967464}`))
	cp := h.pub
	m, err := proto.Decode(cp.buf)
	if err != nil {
		t.Fatal(err)
	}
	v, err := m.AsBookDelta()
	if err != nil || v.VenueSeq() != 66544703342 || v.LastUpdateID() != 101 || m.EventTime() != 1687940967464_000_000 {
		t.Fatalf("published %v: venue_seq %d, u %d, event time %d", m.Type(), v.VenueSeq(), v.LastUpdateID(), m.EventTime())
	}
}
