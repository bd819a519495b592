package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	return ws
}

func TestProtocolAndFraming(t *testing.T) {
	s, err := New("127.0.0.1:0", Config{Symbols: []Symbol{{Name: "BTCUSDT"}, {Name: "BTCUSDT", Futures: true}}, TradeEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws := dial(t, s.SpotWS()+"/stream")
	if err := ws.WriteJSON(map[string]any{"method": "SUBSCRIBE", "params": []string{"btcusdt@depth@100ms", "btcusdt@trade"}, "id": 7}); err != nil {
		t.Fatal(err)
	}
	_, msg, err := ws.ReadMessage()
	if err != nil || string(msg) != `{"result":null,"id":7}` {
		t.Fatalf("SUBSCRIBE reply %q, %v", msg, err)
	}
	if err := ws.WriteJSON(map[string]any{"method": "FROB", "id": 8}); err != nil {
		t.Fatal(err)
	}
	if _, msg, _ = ws.ReadMessage(); !strings.Contains(string(msg), `"error"`) {
		t.Fatalf("unknown method answered %q", msg)
	}

	s.Step(3)
	kinds := map[string]int{}
	for range 6 { // three steps, each with a trade and a depth update
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		// Maps, not structs: encoding/json would match "E" to a field tagged "e".
		var env struct{ Data map[string]json.RawMessage }
		if err := json.Unmarshal(msg, &env); err != nil {
			t.Fatalf("frame is not JSON: %v: %q", err, msg)
		}
		var kind string
		_ = json.Unmarshal(env.Data["e"], &kind)
		kinds[kind]++
	}
	if kinds["trade"] != 3 || kinds["depthUpdate"] != 3 {
		t.Fatalf("frames by type: %v", kinds)
	}

	// Frames of every WebSocket length encoding arrive intact.
	for _, n := range []int{10, 125, 126, 4000, 65535, 65536, 200_000} {
		payload := strings.Repeat("x", n)
		s.SendRaw(false, []byte(payload))
		_, msg, err := ws.ReadMessage()
		if err != nil || string(msg) != payload {
			t.Fatalf("%d-byte frame: got %d bytes, %v", n, len(msg), err)
		}
	}
}

func TestRESTDepthIsTheTrueBook(t *testing.T) {
	s, err := New("127.0.0.1:0", Config{Symbols: []Symbol{{Name: "ETHUSDT", Futures: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Step(25)
	resp, err := http.Get(s.PerpREST() + "/fapi/v1/depth?symbol=ETHUSDT&limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var snap struct {
		LastUpdateID uint64      `json:"lastUpdateId"`
		E            int64       `json:"E"`
		Bids         [][2]string `json:"bids"`
		Asks         [][2]string `json:"asks"`
	}
	if err := json.Unmarshal(body, &snap); err != nil {
		t.Fatal(err)
	}
	bids, _, id := s.Book(true, "ETHUSDT")
	if snap.LastUpdateID != id || snap.E == 0 || len(snap.Bids) != len(bids) || snap.Bids[0][0] != bids[0].Price.String() {
		t.Fatalf("snapshot %d with %d bids (best %v), true book %d with %d (best %v)", snap.LastUpdateID, len(snap.Bids), snap.Bids[0], id, len(bids), bids[0].Price)
	}
	resp, err = http.Get(s.PerpREST() + "/fapi/v1/depth?symbol=NOPE")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown symbol: status %d", resp.StatusCode)
	}
}

func TestAgeCapAndStall(t *testing.T) {
	s, err := New("127.0.0.1:0", Config{Symbols: []Symbol{{Name: "BTCUSDT"}}, MaxConnAge: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws := dial(t, s.SpotWS()+"/stream?streams=btcusdt@trade")
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Fatalf("connection ended with %v, want a normal close at the age cap", err)
		}
		break
	}
}
