package binance

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/paddockhq/paddock/proto"
)

var update = flag.Bool("update", false, "rewrite the committed fuzz seed corpus")

// Frames as Binance sends them (spot and USD-M), from its documentation and
// the public capture in shared/.
var (
	spotTrade   = `{"stream":"btcusdt@trade","data":{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":3187632211,"p":"27123.45000000","q":"0.00100000","T":1672515782134,"m":true,"M":true}}`
	aggTrade    = `{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1672515782136,"s":"BTCUSDT","a":164235,"p":"27123.45","q":"0.003","f":100,"l":105,"T":1672515782134,"m":false}}`
	spotDepth10 = `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1672515782136,"s":"BTCUSDT","U":157,"u":160,` +
		`"b":[["27123.45000000","1.50000000"],["27123.40000000","0.00000000"],["27123.35000000","0.25000000"],["27123.30000000","3.00000000"],["27123.00000000","10.12500000"]],` +
		`"a":[["27123.50000000","0.00100000"],["27123.55000000","2.00000000"],["27123.60000000","0.00000000"],["27124.00000000","7.50000000"],["27125.00000000","100.00000000"]]}}`
	perpDepth      = `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1672515782136,"T":1672515782130,"s":"BTCUSDT","U":157,"u":160,"pu":149,"b":[["27123.4","1.5"]],"a":[]}}`
	spotBookTicker = `{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}`
	perpBookTicker = `{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BTCUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}`
	shutdownBare   = `{"e":"serverShutdown","E":1729650000000}`
	shutdownInData = `{"stream":"","data":{"e":"serverShutdown","E":1729650000000}}`
	subscribeOK    = `{"result":null,"id":7}`
	errorResp      = `{"error":{"code":2,"msg":"Invalid request"},"id":null}`
	restSnapshot   = `{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}`
	perpSnapshot   = `{"lastUpdateId":1027024,"E":1589436922972,"T":1589436922959,"bids":[["4.0","431"]],"asks":[["4.1","12"]]}`
	kline          = `{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":1,"o":"1.0","x":false,"v":[1,{"z":null}]}}}`
)

func dec(m int64, e int8) proto.Decimal { return proto.Decimal{Mant: m, Exp: e} }

func TestParseFrames(t *testing.T) {
	var p Parser
	ev, err := p.Parse([]byte(spotTrade))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != KindTrade || string(ev.Symbol) != "BTCUSDT" || ev.TradeID != 3187632211 || ev.Price != dec(2712345000000, -8) ||
		ev.Qty != dec(100000, -8) || !ev.BuyerMaker || ev.EventTime != 1672515782136_000_000 || ev.TradeTime != 1672515782134_000_000 ||
		string(ev.Stream) != "btcusdt@trade" {
		t.Errorf("trade: %+v", ev)
	}
	ev, err = p.Parse([]byte(aggTrade))
	if err != nil || ev.Kind != KindAggTrade || ev.TradeID != 164235 || ev.BuyerMaker || ev.Qty != dec(3, -3) {
		t.Errorf("aggTrade: %+v, %v", ev, err)
	}
	ev, err = p.Parse([]byte(spotDepth10))
	if err != nil || ev.Kind != KindDepth || ev.FirstID != 157 || ev.LastID != 160 || ev.HasPrev || len(ev.Bids) != 5 || len(ev.Asks) != 5 ||
		ev.Bids[1] != (proto.Level{Price: dec(2712340000000, -8), Qty: dec(0, -8)}) || ev.Asks[4].Qty != dec(10000000000, -8) {
		t.Errorf("depth: %+v, %v", ev, err)
	}
	ev, err = p.Parse([]byte(perpDepth))
	if err != nil || ev.Kind != KindDepth || !ev.HasPrev || ev.PrevID != 149 || len(ev.Bids) != 1 || len(ev.Asks) != 0 {
		t.Errorf("perp depth: %+v, %v", ev, err)
	}
	for _, f := range []string{spotBookTicker, perpBookTicker} {
		ev, err = p.Parse([]byte(f))
		if err != nil || ev.Kind != KindBookTicker || ev.UpdateID == 0 || ev.Bid.Price.Mant == 0 || ev.Ask.Qty.Mant == 0 {
			t.Errorf("bookTicker %s: %+v, %v", f, ev, err)
		}
	}
	for _, f := range []string{shutdownBare, shutdownInData} {
		if ev, err = p.Parse([]byte(f)); err != nil || ev.Kind != KindShutdown {
			t.Errorf("shutdown %s: %+v, %v", f, ev, err)
		}
	}
	if ev, err = p.Parse([]byte(subscribeOK)); err != nil || ev.Kind != KindResponse || ev.ID != 7 {
		t.Errorf("response: %+v, %v", ev, err)
	}
	if ev, err = p.Parse([]byte(errorResp)); err != nil || ev.Kind != KindError || string(ev.ErrorRaw) != `{"code":2,"msg":"Invalid request"}` {
		t.Errorf("error: %+v, %v", ev, err)
	}
	for _, f := range []string{restSnapshot, perpSnapshot} {
		if ev, err = p.Parse([]byte(f)); err != nil || ev.Kind != KindSnapshot || ev.LastID != 1027024 || len(ev.Bids) != 1 || len(ev.Asks) != 1 {
			t.Errorf("snapshot %s: %+v, %v", f, ev, err)
		}
	}
	if ev, err = p.Parse([]byte(kline)); err != nil || ev.Kind != KindIgnored {
		t.Errorf("kline: %+v %v, want ignored", ev, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, frame string
		err         error
	}{
		{"empty", ``, ErrSyntax},
		{"not an object", `[1,2]`, ErrSyntax},
		{"truncated", spotTrade[:len(spotTrade)-10], ErrSyntax},
		{"trailing garbage", spotTrade + `x`, ErrTrailing},
		{"two values", spotTrade + spotTrade, ErrTrailing},
		{"unterminated string", `{"e":"trade`, ErrSyntax},
		{"bad escape", `{"e":"tr\qade"}`, ErrSyntax},
		{"escaped event", `{"e":"tr\u0061de","s":"X","t":1,"p":"1","q":"1","m":true}`, ErrEscape},
		{"control char", "{\"e\":\"a\x01\"}", ErrSyntax},
		{"missing price", `{"e":"trade","s":"BTCUSDT","t":1,"q":"1","m":true}`, ErrField},
		{"price as number", `{"e":"trade","s":"BTCUSDT","t":1,"p":1.5,"q":"1","m":true}`, ErrField},
		{"negative price", `{"e":"trade","s":"BTCUSDT","t":1,"p":"-1.5","q":"1","m":true}`, proto.ErrDecimalSign},
		{"exponent price", `{"e":"trade","s":"BTCUSDT","t":1,"p":"1e-8","q":"1","m":true}`, proto.ErrDecimalSyntax},
		{"overflowing qty", `{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"99999999999999999999","m":true}`, proto.ErrDecimalOverflow},
		{"overflowing id", `{"e":"trade","s":"BTCUSDT","t":18446744073709551616,"p":"1","q":"1","m":true}`, ErrInteger},
		{"negative id", `{"e":"trade","s":"BTCUSDT","t":-1,"p":"1","q":"1","m":true}`, ErrInteger},
		{"fractional id", `{"e":"trade","s":"BTCUSDT","t":1.5,"p":"1","q":"1","m":true}`, ErrInteger},
		{"m not bool", `{"e":"trade","s":"BTCUSDT","t":1,"p":"1","q":"1","m":"yes"}`, ErrField},
		{"huge time", `{"e":"trade","E":99999999999999999,"s":"BTCUSDT","t":1,"p":"1","q":"1","m":true}`, ErrInteger},
		{"depth without asks", `{"e":"depthUpdate","s":"BTCUSDT","U":1,"u":2,"b":[]}`, ErrField},
		{"depth U after u", `{"e":"depthUpdate","s":"BTCUSDT","U":3,"u":2,"b":[],"a":[]}`, ErrField},
		{"level of three", `{"e":"depthUpdate","s":"X","U":1,"u":2,"b":[["1","2","3"]],"a":[]}`, ErrLevels},
		{"level of numbers", `{"e":"depthUpdate","s":"X","U":1,"u":2,"b":[[1,2]],"a":[]}`, ErrSyntax},
		{"duplicate bids", `{"e":"depthUpdate","s":"X","U":1,"u":2,"b":[],"b":[],"a":[]}`, ErrField},
		{"no event", `{"x":1}`, ErrUnknownEvent},
		{"deep nesting", `{"k":` + repeat("[", 40) + repeat("]", 40) + `}`, ErrNesting},
		{"bad literal", `{"k":tru}`, ErrSyntax},
		{"bad number", `{"k":01}`, ErrSyntax},
		{"data not object", `{"stream":"x","data":[]}`, ErrField},
		{"two payloads", `{"data":{"e":"x"},"data":{"e":"y"}}`, ErrField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Parser
			ev, err := p.Parse([]byte(tc.frame))
			if !errors.Is(err, tc.err) {
				t.Fatalf("Parse = %+v, %v; want %v", ev, err, tc.err)
			}
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func TestParseAllocs(t *testing.T) {
	var p Parser
	for _, f := range []string{spotTrade, aggTrade, spotDepth10, perpDepth, spotBookTicker, perpBookTicker} {
		frame := []byte(f)
		if _, err := p.Parse(frame); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(500, func() { _, _ = p.Parse(frame) }); n != 0 {
			t.Errorf("%.40s...: %v allocs per Parse", f, n)
		}
	}
	bad := []byte(`{"e":"trade","s":"BTCUSDT","t":1,"p":"1e-8","q":"1","m":true}`)
	if n := testing.AllocsPerRun(500, func() { _, _ = p.Parse(bad) }); n != 0 {
		t.Errorf("a rejected frame costs %v allocs", n)
	}
}

// refParse is an independent decode with encoding/json into the same Event
// fields, for trade, aggTrade and depthUpdate frames. It decodes into maps
// because encoding/json matches struct fields case-insensitively, and Binance
// uses "t" and "T", "u" and "U" for different things. It checks the scanner
// (TestParseAgreesWithJSON, FuzzParse) and is the benchmark baseline.
func refParse(frame []byte, ev *Event) error {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(frame, &env); err != nil {
		return err
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(env["data"], &d); err != nil {
		return err
	}
	var kind, sym string
	var et int64
	if err := json.Unmarshal(d["e"], &kind); err != nil {
		return err
	}
	if err := json.Unmarshal(d["s"], &sym); err != nil {
		return err
	}
	if err := json.Unmarshal(d["E"], &et); err != nil {
		return err
	}
	*ev = Event{Symbol: []byte(sym), EventTime: et * 1_000_000, Bids: ev.Bids[:0], Asks: ev.Asks[:0]}
	dec := func(key string) (proto.Decimal, error) {
		var s string
		if err := json.Unmarshal(d[key], &s); err != nil {
			return proto.Decimal{}, err
		}
		return proto.ParseUDecimal(s)
	}
	var err error
	switch kind {
	case "trade", "aggTrade":
		ev.Kind = KindTrade
		idKey := "t"
		if kind == "aggTrade" {
			ev.Kind, idKey = KindAggTrade, "a"
		}
		if err := json.Unmarshal(d[idKey], &ev.TradeID); err != nil {
			return err
		}
		if err := json.Unmarshal(d["m"], &ev.BuyerMaker); err != nil {
			return err
		}
		if ev.Price, err = dec("p"); err != nil {
			return err
		}
		ev.Qty, err = dec("q")
		return err
	case "depthUpdate":
		ev.Kind = KindDepth
		if err := json.Unmarshal(d["U"], &ev.FirstID); err != nil {
			return err
		}
		if err := json.Unmarshal(d["u"], &ev.LastID); err != nil {
			return err
		}
		var bids, asks [][2]string
		if err := json.Unmarshal(d["b"], &bids); err != nil {
			return err
		}
		if err := json.Unmarshal(d["a"], &asks); err != nil {
			return err
		}
		for _, side := range []struct {
			in  [][2]string
			out *[]proto.Level
		}{{bids, &ev.Bids}, {asks, &ev.Asks}} {
			for _, l := range side.in {
				p, err := proto.ParseUDecimal(l[0])
				if err != nil {
					return err
				}
				q, err := proto.ParseUDecimal(l[1])
				if err != nil {
					return err
				}
				*side.out = append(*side.out, proto.Level{Price: p, Qty: q})
			}
		}
		return nil
	}
	return fmt.Errorf("unsupported event %q", kind)
}

func TestParseAgreesWithJSON(t *testing.T) {
	var p Parser
	var ref Event
	for _, f := range []string{spotTrade, aggTrade, spotDepth10, perpDepth} {
		got, err := p.Parse([]byte(f))
		if err != nil {
			t.Fatal(err)
		}
		if err := refParse([]byte(f), &ref); err != nil {
			t.Fatal(err)
		}
		if !sameEvent(got, &ref) {
			t.Errorf("scanner and encoding/json disagree on %.50s:\n%+v\n%+v", f, got, &ref)
		}
	}
}

func sameEvent(a, b *Event) bool {
	if a.Kind != b.Kind || string(a.Symbol) != string(b.Symbol) || a.EventTime != b.EventTime || a.TradeID != b.TradeID ||
		a.Price != b.Price || a.Qty != b.Qty || a.BuyerMaker != b.BuyerMaker || a.FirstID != b.FirstID || a.LastID != b.LastID ||
		len(a.Bids) != len(b.Bids) || len(a.Asks) != len(b.Asks) {
		return false
	}
	for i := range a.Bids {
		if a.Bids[i] != b.Bids[i] {
			return false
		}
	}
	for i := range a.Asks {
		if a.Asks[i] != b.Asks[i] {
			return false
		}
	}
	return true
}

var seedFrames = []string{spotTrade, aggTrade, spotDepth10, perpDepth, spotBookTicker, perpBookTicker, shutdownBare, shutdownInData,
	subscribeOK, errorResp, restSnapshot, perpSnapshot, kline}

// FuzzParse: the parser never panics, never accepts invalid JSON, and
// whenever both it and encoding/json accept a trade or depth frame they
// agree on every field.
func FuzzParse(f *testing.F) {
	for _, s := range seedFrames {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var p Parser
		ev, err := p.Parse(frame)
		if err != nil {
			return
		}
		if ev.Kind != KindTrade && ev.Kind != KindAggTrade && ev.Kind != KindDepth {
			return
		}
		if !json.Valid(frame) {
			t.Fatalf("the scanner accepted invalid JSON %q", frame)
		}
		if !utf8.Valid(frame) {
			// encoding/json replaces invalid UTF-8 with U+FFFD; the scanner
			// keeps the bytes, and such a symbol never matches an instrument.
			return
		}
		var ref Event
		if refParse(frame, &ref) != nil {
			// encoding/json rejects some frames the scanner takes, e.g. a
			// level array of three strings fails [2]string... and accepts
			// escapes the scanner refuses. Agreement is checked where both accept.
			return
		}
		if !sameEvent(ev, &ref) {
			t.Fatalf("scanner and encoding/json disagree on %q:\n%+v\n%+v", frame, ev, &ref)
		}
	})
}

// TestWriteFuzzCorpus writes testdata/fuzz/FuzzParse from seedFrames (-update).
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("writes testdata/fuzz only with -update")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seedFrames {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(s) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
