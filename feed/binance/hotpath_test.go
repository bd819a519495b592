package binance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/feed"
	"github.com/paddockhq/paddock/feed/session"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// hotPath is an adapter wired to a real embedded NATS server with one
// instrument whose book is in sync, and a connection value whose frames go
// to the slot's Frame under the slot's lock, as the session delivers them
// (the code after the WebSocket read).
type hotPath struct {
	a   *Adapter
	c   *session.Conn // a zero Conn: a primary outside any running slot
	st  *instState
	nc  *nats.Conn
	reg *prometheus.Registry
}

func newHotPath(tb testing.TB) *hotPath {
	tb.Helper()
	ns := natstest.Server(tb, embednats.Options{})
	nc := natstest.Connect(tb, ns.ClientURL())
	// No subscriber: the server runs in this process, and its routing work
	// would be counted as ours (allocations are counted process-wide).
	// Fan-out is measured end to end by bench/e2e.
	reg := prometheus.NewRegistry()
	out, err := feed.NewOutlet(proto.VenueBinance, []string{"btcusdt"}, feed.Events{Trades: true, Orderbook: true, BBO: true}, nc,
		feed.NewMetrics(reg), nil)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := New(Config{WSURL: "ws://127.0.0.1:1", RESTURL: "http://127.0.0.1:1"}, out)
	if err != nil {
		tb.Fatal(err)
	}
	st := a.states["BTCUSDT"]
	var bids, asks []proto.Level
	for i := range 500 {
		bids = append(bids, proto.Level{Price: proto.Decimal{Mant: 2712345000000 - int64(i)*1000000, Exp: -8}, Qty: proto.Decimal{Mant: 100000000, Exp: -8}})
		asks = append(asks, proto.Level{Price: proto.Decimal{Mant: 2712346000000 + int64(i)*1000000, Exp: -8}, Qty: proto.Decimal{Mant: 100000000, Exp: -8}})
	}
	if err := st.in.LoadSnapshot(feed.Times{}, 100, 0, bids, asks); err != nil {
		tb.Fatal(err)
	}
	st.synced, st.lastU = true, 100
	return &hotPath{a: a, c: &session.Conn{}, st: st, nc: nc, reg: reg}
}

// frame hands one frame to the slot as its session does: under the slot's
// lock (the one lock per frame on this path).
func (h *hotPath) frame(f []byte, recv int64) {
	h.st.slot.sess.Lock()
	h.st.slot.Frame(h.c, f, recv)
	h.st.slot.sess.Unlock()
}

// frames returns n frames of one kind with consecutive ids, built before
// measuring so that only the feed's own work is counted.
func frames(kind string, n int, from uint64) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		id := from + uint64(i)
		switch kind {
		case "trade":
			out[i] = fmt.Appendf(nil, `{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":%d,"p":"27123.45000000","q":"0.00100000","T":1672515782134,"m":true,"M":true}}`, id)
		case "depth10":
			u := 100 + 2*id
			out[i] = fmt.Appendf(nil, `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1672515782136,"s":"BTCUSDT","U":%d,"u":%d,`+
				`"b":[["27123.45000000","1.50000000"],["27123.44000000","0.00000000"],["27123.43000000","0.25000000"],["27123.42000000","3.00000000"],["27123.41000000","10.12500000"]],`+
				`"a":[["27123.46000000","0.00100000"],["27123.47000000","2.00000000"],["27123.48000000","0.00000000"],["27123.49000000","7.50000000"],["27123.50000000","100.00000000"]]}}`, u-1, u)
		case "bbo":
			out[i] = fmt.Appendf(nil, `{"stream":"btcusdt@bookTicker","data":{"u":%d,"s":"BTCUSDT","b":"27123.45000000","B":"1.50000000","a":"27123.46000000","A":"0.00100000"}}`, 100+id)
		}
	}
	return out
}

// TestFrameToNATSAllocs locks the zero-allocation claim for the per-message
// path: parse, de-duplicate, apply to the book, encode, publish on NATS.
func TestFrameToNATSAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race; make test runs this without it")
	}
	for _, kind := range []string{"trade", "depth10", "bbo"} {
		t.Run("event="+kind, func(t *testing.T) {
			h := newHotPath(t)
			const runs = 500
			fs := frames(kind, runs+10, 1)
			i := 0
			now := time.Now().UnixNano()
			// Warm up buffers before measuring.
			for range 5 {
				h.frame(fs[i], now)
				i++
			}
			allocs := testing.AllocsPerRun(runs, func() {
				h.frame(fs[i], now)
				i++
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per %s frame, want 0", allocs, kind)
			}
			// The frames really went through: nothing was dropped as bad or stale.
			if h.st.in.InSync() != true || (kind == "trade" && h.st.lastTrade != uint64(i)) || (kind == "depth10" && h.st.lastU != 100+2*uint64(i)) {
				t.Fatalf("frames were not applied: lastTrade %d lastU %d after %d frames", h.st.lastTrade, h.st.lastU, i)
			}
		})
	}
}

// BenchmarkFrameToNATS measures the whole per-message path after the
// WebSocket read, including the book update and the NATS publish.
func BenchmarkFrameToNATS(b *testing.B) {
	for _, kind := range []string{"trade", "depth10", "bbo"} {
		b.Run("event="+kind, func(b *testing.B) {
			h := newHotPath(b)
			fs := frames(kind, 1<<16, 1)
			now := time.Now().UnixNano()
			b.SetBytes(int64(len(fs[0])))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i > 0 && i%len(fs) == 0 {
					// Out of pre-built frames: build the next ids.
					b.StopTimer()
					fs = frames(kind, len(fs), uint64(i)+1)
					b.StartTimer()
				}
				h.frame(fs[i%len(fs)], now)
				i++
			}
		})
	}
}

// TestResyncBufferOverflowIsCounted: diffs buffered while a snapshot does not
// arrive are bounded; the first wave dropped the buffer silently when it
// filled. Now each overflow is counted (and logged, rate-limited).
func TestResyncBufferOverflowIsCounted(t *testing.T) {
	h := newHotPath(t)
	h.st.synced = false // waiting for a snapshot (no fetch runs: the adapter is not running)
	fs := frames("depth10", maxBuffered+1, 1)
	for _, f := range fs {
		h.frame(f, 1)
	}
	got, err := testutil.GatherAndCount(h.reg, "paddock_feed_queue_overflows_total")
	if err != nil || got == 0 {
		t.Fatalf("overflow series: %d %v", got, err)
	}
	want := `
# HELP paddock_feed_queue_overflows_total Bounded queues that filled: rollover_held (a rollover switched early; the old connection's lag became a gap) and resync_buffer (a book's buffered diffs were dropped and its sync started over).
# TYPE paddock_feed_queue_overflows_total counter
paddock_feed_queue_overflows_total{queue="resync_buffer",venue="binance"} 1
paddock_feed_queue_overflows_total{queue="rollover_held",venue="binance"} 0
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "paddock_feed_queue_overflows_total"); err != nil {
		t.Fatal(err)
	}
	if len(h.st.buf) != 1 {
		t.Fatalf("%d diffs buffered after the overflow, want the newest one", len(h.st.buf))
	}
}
