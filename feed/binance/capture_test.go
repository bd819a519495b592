package binance_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/feed"
	"github.com/paddockhq/paddock/feed/binance"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/proto"
	"github.com/prometheus/client_golang/prometheus"
)

// capturesDir finds shared/reference/captures beside the repository.
func capturesDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test")
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "reference", "captures")
	if _, err := os.Stat(filepath.Join(c, "binance-spot-2021-10-12.ws")); err != nil {
		t.Skipf("real Binance capture not present (%s): this conformance test needs ../shared/reference/captures beside the repository", c)
	}
	return c
}

// readCapture returns the recorded frames and the REST snapshots by symbol.
func readCapture(t *testing.T, dir string) (frames [][]byte, snapshots map[string][]byte) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "binance-spot-2021-10-12.ws"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for first := true; sc.Scan(); first = false {
		if first || strings.TrimSpace(sc.Text()) == "" {
			continue // the connection URL, blank lines
		}
		_, frame, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			t.Fatalf("capture line without a frame: %.80q", sc.Text())
		}
		frames = append(frames, []byte(frame))
	}
	raw, err := os.ReadFile(filepath.Join(dir, "binance-spot-2021-10-12.http"))
	if err != nil {
		t.Fatal(err)
	}
	snapshots = map[string][]byte{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		req, rest, ok := strings.Cut(line, " -> ")
		if !ok {
			t.Fatalf("http line: %.80q", line)
		}
		_, body, ok := strings.Cut(rest, ": ")
		if !ok {
			t.Fatalf("http line: %.80q", line)
		}
		u, err := url.Parse(req)
		if err != nil {
			t.Fatal(err)
		}
		snapshots[u.Query().Get("symbol")] = []byte(body)
	}
	return frames, snapshots
}

// replayServer speaks just enough of Binance to replay the capture: it
// acknowledges SUBSCRIBE, then sends every recorded frame in order, and
// serves the recorded REST snapshots.
func replayServer(t *testing.T, frames [][]byte, snapshots map[string][]byte) *httptest.Server {
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		var req struct{ ID int }
		if err := ws.ReadJSON(&req); err != nil {
			return
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"result":null,"id":`+strconv.Itoa(req.ID)+`}`))
		for _, f := range frames {
			if err := ws.WriteMessage(websocket.TextMessage, f); err != nil {
				return
			}
		}
		// Keep the connection open, like the exchange, until the test ends.
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/api/v3/depth", func(w http.ResponseWriter, r *http.Request) {
		body, ok := snapshots[r.URL.Query().Get("symbol")]
		if !ok {
			http.Error(w, `{"code":-1121,"msg":"Invalid symbol."}`, http.StatusBadRequest)
			return
		}
		_, _ = w.Write(body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestReplayBinanceCapture runs the real 2021-10-12 Binance spot session
// through the adapter and checks what is published against shared/'s
// README and an independent computation of each final book.
func TestReplayBinanceCapture(t *testing.T) {
	dir := capturesDir(t)
	frames, snapshots := readCapture(t, dir)
	srv := replayServer(t, frames, snapshots)
	symbols := []string{"nknusdt", "blzeth", "lrcbtc", "runeeur"}

	ns, err := embednats.Start(embednats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	pubConn, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pubConn.Close()
	subConn, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer subConn.Close()

	var mu sync.Mutex
	counts := map[proto.MsgType]int{}
	books := map[string]*bookWatcher{}
	for _, s := range symbols {
		books[s] = &bookWatcher{}
	}
	if _, err := subConn.Subscribe("market.data.binance.>", func(m *nats.Msg) {
		msg, err := proto.Decode(m.Data)
		if err != nil {
			t.Errorf("undecodable message on %s: %v", m.Subject, err)
			return
		}
		mu.Lock()
		counts[msg.Type()]++
		mu.Unlock()
		if sub, _ := proto.ParseSubject(m.Subject); sub.Event == proto.EventOrderbook {
			applyToWatcher(books[sub.Instrument], msg)
		}
	}); err != nil {
		t.Fatal(err)
	}
	_ = subConn.Flush()

	reg := prometheus.NewRegistry()
	out, err := feed.NewOutlet(proto.VenueBinance, symbols, feed.Events{Trades: true, Orderbook: true, BBO: true}, pubConn, feed.NewMetrics(reg), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := binance.New(binance.Config{WSURL: "ws" + strings.TrimPrefix(srv.URL, "http"), RESTURL: srv.URL, TradeStream: "aggTrade"}, out)
	if err != nil {
		t.Fatal(err)
	}
	svc := feed.NewService(pubConn, []feed.VenueEntry{{Outlet: out, Venue: a}}, feed.ServiceOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	want := map[proto.MsgType]int{proto.TypeBookSnapshot: 4, proto.TypeBookDelta: 172, proto.TypeBBO: 84, proto.TypeTrade: 2}
	waitUntil(t, "every recorded frame to be processed and published", 10*time.Second, func() bool {
		_ = pubConn.Flush()
		_ = subConn.Flush()
		mu.Lock()
		defer mu.Unlock()
		for k, n := range want {
			if counts[k] < n {
				return false
			}
		}
		return gather(t, reg, "paddock_feed_frames_total") == float64(len(frames)+1) // +1: the SUBSCRIBE reply
	})
	mu.Lock()
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%d %v messages published, want %d", counts[k], k, n)
		}
	}
	if counts[proto.TypeReset] != 0 {
		t.Errorf("%d Resets on a capture with no gaps", counts[proto.TypeReset])
	}
	mu.Unlock()
	if n := gather(t, reg, "paddock_feed_parse_errors_total"); n != 0 {
		t.Errorf("%v frames dropped as unparsable in a clean capture", n)
	}
	if n := gather(t, reg, "paddock_feed_ignored_frames_total"); n != 2 {
		t.Errorf("%v frames ignored, want the 2 klines (a stream the feed does not carry, not damage)", n)
	}

	// Independently: each symbol's snapshot plus its diffs with u beyond it.
	for _, s := range symbols {
		bids, asks := expectedBook(t, snapshots[strings.ToUpper(s)], frames, strings.ToUpper(s))
		w := books[s]
		w.mu.Lock()
		if err := sameLevels(w.book.AppendBids(nil, 0), bids); err != nil {
			t.Errorf("%s bids: %v", s, err)
		}
		if err := sameLevels(w.book.AppendAsks(nil, 0), asks); err != nil {
			t.Errorf("%s asks: %v", s, err)
		}
		if !w.valid || w.seqErrors != 0 || len(w.errs) != 0 {
			t.Errorf("%s: valid %v, %d sequence breaks, errors %v", s, w.valid, w.seqErrors, w.errs)
		}
		w.mu.Unlock()
	}
}

func applyToWatcher(w *bookWatcher, msg proto.Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if msg.Seq() != w.lastSeq+1 {
		w.seqErrors++
	}
	w.lastSeq = msg.Seq()
	switch msg.Type() {
	case proto.TypeBookSnapshot:
		v, _ := msg.AsBookSnapshot()
		b, a := levelsOf(v)
		if err := w.book.Load(b, a); err != nil {
			w.errs = append(w.errs, err.Error())
		}
		w.valid = true
	case proto.TypeBookDelta:
		v, _ := msg.AsBookDelta()
		b, a := levelsOf(v)
		if err := w.book.Apply(b, a); err != nil {
			w.errs = append(w.errs, err.Error())
		}
	case proto.TypeReset:
		w.valid = false
	}
}

// expectedBook computes a symbol's final book with encoding/json and maps:
// the REST snapshot, then every diff whose u is beyond its lastUpdateId, in
// order, checking that they are continuous.
func expectedBook(t *testing.T, snapshot []byte, frames [][]byte, symbol string) (bids, asks []proto.Level) {
	t.Helper()
	var snap struct {
		LastUpdateID uint64      `json:"lastUpdateId"`
		Bids, Asks   [][2]string `json:"-"`
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(snapshot, &raw); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(raw["lastUpdateId"], &snap.LastUpdateID)
	_ = json.Unmarshal(raw["bids"], &snap.Bids)
	_ = json.Unmarshal(raw["asks"], &snap.Asks)
	b, a := map[string]string{}, map[string]string{}
	set := func(m map[string]string, ls [][2]string) {
		for _, l := range ls {
			if isZero(l[1]) {
				delete(m, l[0])
			} else {
				m[l[0]] = l[1]
			}
		}
	}
	set(b, snap.Bids)
	set(a, snap.Asks)
	last := snap.LastUpdateID
	for _, f := range frames {
		var env struct {
			Data map[string]json.RawMessage `json:"data"`
		}
		if json.Unmarshal(f, &env) != nil {
			continue
		}
		var e, s string
		_ = json.Unmarshal(env.Data["e"], &e)
		_ = json.Unmarshal(env.Data["s"], &s)
		if e != "depthUpdate" || s != symbol {
			continue
		}
		var first, u uint64
		var db, da [][2]string
		_ = json.Unmarshal(env.Data["U"], &first)
		_ = json.Unmarshal(env.Data["u"], &u)
		_ = json.Unmarshal(env.Data["b"], &db)
		_ = json.Unmarshal(env.Data["a"], &da)
		if u <= last {
			continue
		}
		if first > last+1 {
			t.Fatalf("%s: the capture itself has a gap at %d", symbol, first)
		}
		set(b, db)
		set(a, da)
		last = u
	}
	return sorted(t, b, true), sorted(t, a, false)
}

func isZero(s string) bool { return strings.Trim(s, "0.") == "" }

func sorted(t *testing.T, m map[string]string, desc bool) []proto.Level {
	var out []proto.Level
	for p, q := range m {
		pd, err := proto.ParseUDecimal(p)
		if err != nil {
			t.Fatal(err)
		}
		qd, err := proto.ParseUDecimal(q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, proto.Level{Price: pd, Qty: qd})
	}
	sort.Slice(out, func(i, j int) bool {
		c := out[i].Price.Cmp(out[j].Price)
		if desc {
			return c > 0
		}
		return c < 0
	})
	return out
}

func gather(t *testing.T, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
