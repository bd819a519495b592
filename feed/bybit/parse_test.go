package bybit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

// Frames as Bybit v5 sends them (shapes from the v5 documentation).
const (
	tradeOne  = `{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}`
	bookDelta = `{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30245.40","0.224"],["30242.30","0"]],"a":[["30248.70","0"],["30249.30","0.892"]],"u":177400507,"seq":66544703342},"cts":1687940967464}`
	bookSnap  = `{"topic":"orderbook.1.ETHUSDT","type":"snapshot","ts":1672304484978,"data":{"s":"ETHUSDT","b":[["1199.50","14.54"]],"a":[["1199.60","3.5"]],"u":1,"seq":7961638724},"cts":1672304484976}`
	subOK     = `{"success":true,"ret_msg":"subscribe","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b","req_id":"10001","op":"subscribe"}`
	subFailed = `{"success":false,"ret_msg":"error:handler not found,topic:orderbook.7.BTCUSDT","conn_id":"cfa2","req_id":"3","op":"subscribe"}`
	pongSpot  = `{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a","op":"ping"}`
	pongPerp  = `{"req_id":"100001","op":"pong","args":["1672916271846"],"conn_id":"cdfmcd1"}`
	kline     = `{"topic":"kline.5.BTCUSDT","data":[{"start":1672324800000,"end":1672325099999,"interval":"5","open":"16649.5","close":"16677","confirm":false,"timestamp":1672324988882}],"ts":1672324988882,"type":"snapshot"}`
)

func dec(s string) proto.Decimal {
	d, err := proto.ParseUDecimal([]byte(s))
	if err != nil {
		panic(err)
	}
	return d
}

func TestParseFrames(t *testing.T) {
	var p Parser
	ev, err := p.Parse([]byte(tradeOne))
	if err != nil {
		t.Fatal(err)
	}
	tr := ev.Trades[0]
	if ev.Kind != KindTrades || string(ev.Symbol) != "BTCUSDT" || len(ev.Trades) != 1 || tr.Time != 1672304486865_000_000 ||
		tr.Price != dec("16578.50") || tr.Qty != dec("0.001") || tr.Sell || string(tr.ID) != "20f43950-d8dd-5b31-9112-a178eb6023af" ||
		tr.Seq != 1783284617 || tr.Block || ev.Time != 1672304486868_000_000 {
		t.Fatalf("trade: %+v %+v", ev, tr)
	}

	ev, err = p.Parse([]byte(bookDelta))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != KindBook || ev.Snapshot || string(ev.Symbol) != "BTCUSDT" || ev.UpdateID != 177400507 || ev.Seq != 66544703342 ||
		ev.MatchTime != 1687940967464_000_000 || len(ev.Bids) != 3 || len(ev.Asks) != 2 || !ev.Bids[2].Qty.IsZero() ||
		ev.Asks[1].Price != dec("30249.30") {
		t.Fatalf("delta: %+v", ev)
	}

	ev, err = p.Parse([]byte(bookSnap))
	if err != nil || ev.Kind != KindBook || !ev.Snapshot || ev.UpdateID != 1 || string(ev.Symbol) != "ETHUSDT" {
		t.Fatalf("snapshot: %+v %v", ev, err)
	}

	for _, tc := range []struct {
		frame, op, msg string
		ok             bool
	}{
		{subOK, "subscribe", "subscribe", true},
		{subFailed, "subscribe", "error:handler not found,topic:orderbook.7.BTCUSDT", false},
		{pongSpot, "ping", "pong", true},
		{pongPerp, "pong", "", true},
	} {
		ev, err := p.Parse([]byte(tc.frame))
		if err != nil || ev.Kind != KindResponse || string(ev.Op) != tc.op || string(ev.RetMsg) != tc.msg || ev.Success != tc.ok {
			t.Fatalf("%s: %+v %v", tc.frame, ev, err)
		}
	}

	if ev, err := p.Parse([]byte(kline)); err != nil || ev.Kind != KindIgnored || string(ev.Topic) != "kline.5.BTCUSDT" {
		t.Fatalf("kline: %+v %v", ev, err)
	}

	// Key order is not relied on: a payload before its topic parses alike.
	reordered := `{"data":{"s":"BTCUSDT","b":[["1.5","2"]],"a":[],"u":9},"type":"delta","topic":"orderbook.50.BTCUSDT","ts":1}`
	if ev, err := p.Parse([]byte(reordered)); err != nil || ev.Kind != KindBook || ev.UpdateID != 9 || len(ev.Bids) != 1 {
		t.Fatalf("data before topic: %+v %v", ev, err)
	}

	// A batch: several trades in one push, in order, the seller-taker flag
	// per trade.
	ev, err = p.Parse(tradeBatch(3, 100))
	if err != nil || len(ev.Trades) != 3 || !ev.Trades[1].Sell || ev.Trades[0].Sell || string(ev.Trades[2].ID) != "102" {
		t.Fatalf("batch: %+v %v", ev, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, frame string
		want        error
	}{
		{"not json", `hello`, ErrSyntax},
		{"trailing", tradeOne + `x`, ErrTrailing},
		{"no topic or op", `{"data":[]}`, ErrUnknownEvent},
		{"trades without data", `{"topic":"publicTrade.BTCUSDT","ts":1}`, ErrField},
		{"empty trades", `{"topic":"publicTrade.BTCUSDT","ts":1,"data":[]}`, ErrField},
		{"trade without price", `{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"S":"Buy","v":"1","i":"a"}]}`, ErrField},
		{"trade side", `{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"S":"Short","v":"1","p":"1","i":"a"}]}`, ErrField},
		{"trade of another symbol", `{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"s":"ETHUSDT","S":"Buy","v":"1","p":"1","i":"a"}]}`, ErrField},
		{"negative price", `{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"S":"Buy","v":"1","p":"-1","i":"a"}]}`, proto.ErrDecimalSign},
		{"empty id", `{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"S":"Buy","v":"1","p":"1","i":""}]}`, ErrField},
		{"book without u", `{"topic":"orderbook.1.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[],"a":[]}}`, ErrField},
		{"book type", `{"topic":"orderbook.1.BTCUSDT","type":"partial","data":{"s":"BTCUSDT","b":[],"a":[],"u":1}}`, ErrField},
		{"book symbol not the topic's", `{"topic":"orderbook.1.BTCUSDT","type":"delta","data":{"s":"ETHUSDT","b":[],"a":[],"u":1}}`, ErrField},
		{"negative u", `{"topic":"orderbook.1.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[],"a":[],"u":-1}}`, ErrField},
		{"huge u", `{"topic":"orderbook.1.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[],"a":[],"u":99999999999999999999999}}`, ErrInteger},
		{"two payloads", `{"topic":"orderbook.1.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[],"a":[],"u":1},"data":{}}`, ErrField},
		{"bad level", `{"topic":"orderbook.1.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[["1"]],"a":[],"u":1}}`, ErrLevels},
		{"escaped topic", `{"topic":"publicTrade.BTC\u0055SDT","data":[]}`, ErrEscape},
		{"timestamp overflow", `{"topic":"publicTrade.BTCUSDT","data":[{"T":18446744073709551,"S":"Buy","v":"1","p":"1","i":"a"}]}`, ErrInteger},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Parser
			if _, err := p.Parse([]byte(tc.frame)); err != tc.want {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	var p Parser
	if _, err := p.Parse(tradeBatch(MaxTradesPerMessage+1, 1)); err != ErrTooManyTrade {
		t.Fatalf("1025 trades: %v", err)
	}
}

// tradeBatch is a publicTrade push of n trades with ids from, alternating
// buyer- and seller-taker.
func tradeBatch(n int, from int) []byte {
	var b strings.Builder
	b.WriteString(`{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		side := "Buy"
		if i%2 == 1 {
			side = "Sell"
		}
		fmt.Fprintf(&b, `{"T":1672304486865,"s":"BTCUSDT","S":"%s","v":"0.001","p":"16578.50","L":"PlusTick","i":"%d","BT":false,"seq":%d}`, side, from+i, 1783284617+i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// delta50 is an orderbook delta with 25 levels a side.
func delta50() []byte {
	var b strings.Builder
	b.WriteString(`{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT","b":[`)
	for i := range 25 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `["%d.%02d","%d.%03d"]`, 30247-i, i, i, i*7%1000)
	}
	b.WriteString(`],"a":[`)
	for i := range 25 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `["%d.%02d","%d.%03d"]`, 30248+i, i, i, i*3%1000)
	}
	b.WriteString(`],"u":177400507,"seq":66544703342},"cts":1687940967464}`)
	return []byte(b.String())
}

// TestParseAllocs locks the zero-allocation claim, batched trades included.
func TestParseAllocs(t *testing.T) {
	for name, frame := range map[string][]byte{"trades=1": []byte(tradeOne), "trades=50": tradeBatch(50, 1), "trades=1024": tradeBatch(1024, 1),
		"delta=50": delta50(), "pong": []byte(pongSpot)} {
		var p Parser
		if _, err := p.Parse(frame); err != nil {
			t.Fatal(name, err)
		}
		if n := testing.AllocsPerRun(200, func() { _, _ = p.Parse(frame) }); n != 0 {
			t.Errorf("%s: %v allocations per frame, want 0", name, n)
		}
	}
}

// refEvent is the same frame decoded by encoding/json: the independent
// reading the parser must agree with, and the benchmark's baseline.
type refEvent struct {
	Topic string `json:"topic"`
	Type  string `json:"type"`
	TS    int64  `json:"ts"`
	CTS   int64  `json:"cts"`
	Op    string `json:"op"`
	Data  json.RawMessage
}

type refTrade struct {
	T   int64  `json:"T"`
	S   string `json:"S"`
	V   string `json:"v"`
	P   string `json:"p"`
	I   string `json:"i"`
	Seq uint64 `json:"seq"`
}

type refBook struct {
	S   string      `json:"s"`
	B   [][2]string `json:"b"`
	A   [][2]string `json:"a"`
	U   uint64      `json:"u"`
	Seq uint64      `json:"seq"`
}

// refParse decodes with encoding/json into proto values.
func refParse(frame []byte, trades *[]proto.Trade, bids, asks *[]proto.Level) (refEvent, error) {
	var e refEvent
	if err := json.Unmarshal(frame, &e); err != nil {
		return e, err
	}
	*trades, *bids, *asks = (*trades)[:0], (*bids)[:0], (*asks)[:0]
	switch {
	case strings.HasPrefix(e.Topic, "publicTrade."):
		var ts []refTrade
		if err := json.Unmarshal(e.Data, &ts); err != nil {
			return e, err
		}
		for _, x := range ts {
			p, err := proto.ParseUDecimal([]byte(x.P))
			if err != nil {
				return e, err
			}
			q, err := proto.ParseUDecimal([]byte(x.V))
			if err != nil {
				return e, err
			}
			side := proto.SideBuy
			if x.S == "Sell" {
				side = proto.SideSell
			}
			*trades = append(*trades, proto.Trade{Price: p, Qty: q, Side: side})
		}
	case strings.HasPrefix(e.Topic, "orderbook."):
		var b refBook
		if err := json.Unmarshal(e.Data, &b); err != nil {
			return e, err
		}
		for _, side := range []struct {
			in  [][2]string
			out *[]proto.Level
		}{{b.B, bids}, {b.A, asks}} {
			for _, l := range side.in {
				p, err := proto.ParseUDecimal([]byte(l[0]))
				if err != nil {
					return e, err
				}
				q, err := proto.ParseUDecimal([]byte(l[1]))
				if err != nil {
					return e, err
				}
				*side.out = append(*side.out, proto.Level{Price: p, Qty: q})
			}
		}
	}
	return e, nil
}

// TestParseAgreesWithJSON: on every documented shape, a batch and the real
// capture (when ../shared is present), the parser reads what encoding/json
// reads.
func TestParseAgreesWithJSON(t *testing.T) {
	frames := [][]byte{[]byte(tradeOne), []byte(bookDelta), []byte(bookSnap), tradeBatch(50, 7), delta50()}
	capture := filepath.Join("..", "..", "..", "shared", "reference", "captures", "bybit-linear-xrpusdt-ob500-2024-12-01.jsonl")
	if f, err := os.Open(capture); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			frames = append(frames, append([]byte(nil), sc.Bytes()...))
		}
		f.Close()
	} else {
		t.Logf("no Bybit capture at %s (../shared absent): checking the documented shapes only", capture)
	}
	var p Parser
	var trades []proto.Trade
	var bids, asks []proto.Level
	for i, frame := range frames {
		ev, err := p.Parse(frame)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		ref, err := refParse(frame, &trades, &bids, &asks)
		if err != nil {
			t.Fatalf("frame %d: encoding/json: %v", i, err)
		}
		if string(ev.Topic) != ref.Topic || ev.Time != ref.TS*1_000_000 || ev.MatchTime != ref.CTS*1_000_000 {
			t.Fatalf("frame %d: header differs: %q %d %d vs %+v", i, ev.Topic, ev.Time, ev.MatchTime, ref)
		}
		if len(ev.Trades) != len(trades) || len(ev.Bids) != len(bids) || len(ev.Asks) != len(asks) {
			t.Fatalf("frame %d: counts differ", i)
		}
		for j, tr := range trades {
			got := ev.Trades[j]
			if got.Price != tr.Price || got.Qty != tr.Qty || got.Sell != (tr.Side == proto.SideSell) {
				t.Fatalf("frame %d trade %d: %+v vs %+v", i, j, got, tr)
			}
		}
		for j := range bids {
			if ev.Bids[j] != bids[j] {
				t.Fatalf("frame %d bid %d differs", i, j)
			}
		}
		for j := range asks {
			if ev.Asks[j] != asks[j] {
				t.Fatalf("frame %d ask %d differs", i, j)
			}
		}
	}
}

// FuzzParse: no input panics, and whatever parses is internally consistent.
func FuzzParse(f *testing.F) {
	for _, s := range []string{tradeOne, bookDelta, bookSnap, subOK, subFailed, pongSpot, pongPerp, kline} {
		f.Add([]byte(s))
	}
	f.Add(tradeBatch(3, 1))
	f.Add([]byte(`{"topic":"publicTrade.BTCUSDT","data":[{"T":0123,"s":"BTCUSDT","S":"Buy","v":"1","p":"1","L":"x","i":"a","BT":false}]}`))
	f.Add([]byte(`{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"s":"BTCUSDT","S":"Sell","v":"1","p":"1","L":"x","i":"a","BT":true,"seq":18446744073709551615}]}`))
	f.Add([]byte(`{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"1","p":"1","L":"x","i":"a\u0041","BT":false}]}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var p Parser
		ev, err := p.Parse(frame)
		// The template path for compact trades must read exactly what the
		// general path reads, and accept nothing it refuses.
		g := Parser{general: true}
		gev, gerr := g.Parse(frame)
		if (err == nil) != (gerr == nil) {
			t.Fatalf("template and general paths disagree: %v vs %v on %q", err, gerr, frame)
		}
		if err == nil && ev.Kind == KindTrades {
			if len(ev.Trades) != len(gev.Trades) {
				t.Fatalf("%d trades vs %d", len(ev.Trades), len(gev.Trades))
			}
			for i := range ev.Trades {
				a, b := ev.Trades[i], gev.Trades[i]
				if a.Time != b.Time || a.Price != b.Price || a.Qty != b.Qty || a.Sell != b.Sell || string(a.ID) != string(b.ID) ||
					a.Seq != b.Seq || a.Block != b.Block || string(a.symbol(frame)) != string(b.symbol(frame)) {
					t.Fatalf("trade %d: %+v vs %+v", i, a, b)
				}
			}
		}
		if err != nil {
			return
		}
		switch ev.Kind {
		case KindTrades:
			if len(ev.Trades) == 0 || len(ev.Trades) > MaxTradesPerMessage || len(ev.Symbol) == 0 {
				t.Fatalf("trades event: %+v", ev)
			}
		case KindBook:
			if len(ev.Symbol) == 0 {
				t.Fatalf("book event without a symbol: %+v", ev)
			}
		case KindUnknown:
			t.Fatal("a parsed frame of unknown kind")
		}
	})
}

// BenchmarkJSONToProto is the per-message target: a Bybit frame in,
// proto messages out (parse, then encode each trade or the delta), for this
// parser and, in the same run, for an encoding/json decode of the same
// frame. `make bench` prints the ratio.
func BenchmarkJSONToProto(b *testing.B) {
	for _, tc := range []struct {
		name  string
		frame []byte
	}{{"trades=1", []byte(tradeOne)}, {"trades=50", tradeBatch(50, 1)}, {"delta=50", delta50()}} {
		h := proto.Header{Venue: proto.VenueBybitPerp, Seq: 1}
		encode := func(trades []proto.Trade, bids, asks []proto.Level, buf []byte) []byte {
			if len(trades) == 0 {
				buf, _ = proto.AppendBookDelta(buf[:0], &h, &proto.BookDelta{FirstUpdateID: 1, LastUpdateID: 1, Bids: bids, Asks: asks})
				return buf
			}
			for i := range trades {
				buf, _ = proto.AppendTrade(buf[:0], &h, &trades[i])
			}
			return buf
		}
		b.Run("event="+tc.name+"/codec=paddock", func(b *testing.B) {
			var p Parser
			buf := make([]byte, 0, 4096)
			var trades []proto.Trade
			b.SetBytes(int64(len(tc.frame)))
			b.ReportAllocs()
			for b.Loop() {
				ev, err := p.Parse(tc.frame)
				if err != nil {
					b.Fatal(err)
				}
				trades = trades[:0]
				for i := range ev.Trades {
					side := proto.SideBuy
					if ev.Trades[i].Sell {
						side = proto.SideSell
					}
					trades = append(trades, proto.Trade{Price: ev.Trades[i].Price, Qty: ev.Trades[i].Qty, Side: side})
				}
				buf = encode(trades, ev.Bids, ev.Asks, buf)
			}
		})
		b.Run("event="+tc.name+"/codec=encoding_json", func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			var trades []proto.Trade
			var bids, asks []proto.Level
			b.SetBytes(int64(len(tc.frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := refParse(tc.frame, &trades, &bids, &asks); err != nil {
					b.Fatal(err)
				}
				buf = encode(trades, bids, asks, buf)
			}
		})
	}
}
