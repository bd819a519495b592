package bybit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/paddockhq/paddock/feed"
	"github.com/paddockhq/paddock/feed/bybit"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
	"github.com/prometheus/client_golang/prometheus"
)

// TestReplayBybitCapture replays a real Bybit v5 linear session (one
// orderbook.500 snapshot, then 49 deltas) through the adapter on a loopback
// WebSocket, and compares the feed's final book, level for level, with an
// independent computation from the same file (encoding/json, a map per side).
func TestReplayBybitCapture(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "reference", "captures", "bybit-linear-xrpusdt-ob500-2024-12-01.jsonl")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no Bybit capture at %s (../shared is absent here): skipping the replay", path)
	}
	var lines [][]byte
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}

	// The independent book.
	type push struct {
		Type string `json:"type"`
		Data struct {
			B [][2]string `json:"b"`
			A [][2]string `json:"a"`
			U uint64      `json:"u"`
		} `json:"data"`
	}
	bids, asks := map[string]string{}, map[string]string{}
	var lastU uint64
	for i, l := range lines {
		var p push
		if err := json.Unmarshal(l, &p); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if p.Type == "snapshot" {
			bids, asks = map[string]string{}, map[string]string{}
		}
		for _, side := range []struct {
			levels [][2]string
			book   map[string]string
		}{{p.Data.B, bids}, {p.Data.A, asks}} {
			for _, lv := range side.levels {
				if q, _ := proto.ParseUDecimal([]byte(lv[1])); q.IsZero() {
					delete(side.book, lv[0])
				} else {
					side.book[lv[0]] = lv[1]
				}
			}
		}
		lastU = p.Data.U
	}
	sorted := func(m map[string]string, desc bool) []proto.Level {
		var out []proto.Level
		for p, q := range m {
			pd, _ := proto.ParseUDecimal([]byte(p))
			qd, _ := proto.ParseUDecimal([]byte(q))
			out = append(out, proto.Level{Price: pd, Qty: qd})
		}
		sort.Slice(out, func(i, j int) bool {
			c := out[i].Price.Cmp(out[j].Price)
			return desc && c > 0 || !desc && c < 0
		})
		return out
	}
	wantBids, wantAsks := sorted(bids, true), sorted(asks, false)

	// The venue: acknowledge the subscription, then play the capture.
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		var req struct {
			Op    string `json:"op"`
			ReqID string `json:"req_id"`
		}
		if ws.ReadJSON(&req) != nil || req.Op != "subscribe" {
			return
		}
		ack, _ := json.Marshal(map[string]any{"success": true, "ret_msg": "", "conn_id": "replay", "req_id": req.ReqID, "op": "subscribe"})
		if ws.WriteMessage(websocket.TextMessage, ack) != nil {
			return
		}
		for _, l := range lines {
			if ws.WriteMessage(websocket.TextMessage, l) != nil {
				return
			}
		}
		for { // stay open (pings are answered by reading)
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	ns := natstest.Server(t, embednats.Options{})
	nc := natstest.Connect(t, ns.ClientURL())
	out, err := feed.NewOutlet(proto.VenueBybitPerp, []string{"xrpusdt"}, feed.Events{Orderbook: true}, nc, feed.NewMetrics(prometheus.NewRegistry()), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := bybit.New(bybit.Config{WSURL: "ws" + strings.TrimPrefix(srv.URL, "http"), Depth: 500}, out)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	in := out.Instrument("xrpusdt")
	deadline := time.Now().Add(10 * time.Second)
	for { // polls: the replay arrives in another goroutine
		if _, _, u, ok := in.Book(); ok && u == lastU {
			break
		}
		if time.Now().After(deadline) {
			_, _, u, ok := in.Book()
			t.Fatalf("the book reached u=%d (in sync %v), want %d", u, ok, lastU)
		}
		time.Sleep(5 * time.Millisecond)
	}
	gotBids, gotAsks, _, _ := in.Book()
	for _, side := range []struct {
		name      string
		got, want []proto.Level
	}{{"bids", gotBids, wantBids}, {"asks", gotAsks, wantAsks}} {
		if len(side.got) != len(side.want) {
			t.Fatalf("%s: %d levels, want %d", side.name, len(side.got), len(side.want))
		}
		for i := range side.want {
			if side.got[i].Price.Cmp(side.want[i].Price) != 0 || side.got[i].Qty.Cmp(side.want[i].Qty) != 0 {
				t.Fatalf("%s level %d: %v, want %v", side.name, i, side.got[i], side.want[i])
			}
		}
	}
	t.Logf("replayed %d pushes: %d bids, %d asks match the independent book at u=%d", len(lines), len(wantBids), len(wantAsks), lastU)
}
