package proto

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The vectors in testdata/ are the contract between this package, SPEC.md and
// decoders in other languages (proto/js checks itself against the same files).
// vectors/ holds messages the Go encoder produces: the test encodes the JSON
// fields and compares with the hex, and decodes the hex and compares with the
// JSON. decode-only/ holds inputs an encoder never produces (a newer producer's
// trailing fields, unknown types, damaged messages) with the expected result.

var update = flag.Bool("update", false, "rewrite testdata/vectors from the Go table")

func dec(m int64, e int8) Decimal { return Decimal{Mant: m, Exp: e} }

func lv(p, q string) Level {
	pd, err := ParseUDecimal(p)
	if err != nil {
		panic(err)
	}
	qd, err := ParseUDecimal(q)
	if err != nil {
		panic(err)
	}
	return Level{pd, qd}
}

var hdr = Header{Venue: VenueBinance, Seq: 42, EventTime: 1_700_000_000_123_000_000, RecvTime: 1_700_000_000_123_456_789}

// vectorTable is the source the golden files are written from with -update.
var vectorTable = []struct {
	name   string
	encode func(dst []byte) ([]byte, error)
}{
	{"trade_buy", func(d []byte) ([]byte, error) {
		return AppendTrade(d, &hdr, &Trade{Price: dec(2712345, -2), Qty: dec(100000, -8), TradeID: 3187632211, Side: SideBuy})
	}},
	{"trade_extremes", func(d []byte) ([]byte, error) {
		h := Header{Flags: FlagReplay, Venue: VenueBinancePerp, Seq: 1<<64 - 1, EventTime: -1, RecvTime: 1<<63 - 1}
		return AppendTrade(d, &h, &Trade{Price: dec(1<<63-1, -18), Qty: dec(-1<<63, 18), TradeID: 1<<64 - 1, Side: SideSell})
	}},
	{"book_delta_10", func(d []byte) ([]byte, error) {
		return AppendBookDelta(d, &hdr, &BookDelta{FirstUpdateID: 1001, LastUpdateID: 1010, VenueSeq: 66544703342,
			Bids: []Level{lv("27123.45", "1.5"), lv("27123.40", "0"), lv("27123.35", "0.25"), lv("27123.30", "3"), lv("27123.00", "10.125")},
			Asks: []Level{lv("27123.50", "0.001"), lv("27123.55", "2"), lv("27123.60", "0"), lv("27124.00", "7.5"), lv("27125.00", "100")},
		})
	}},
	{"book_delta_empty", func(d []byte) ([]byte, error) {
		return AppendBookDelta(d, &hdr, &BookDelta{FirstUpdateID: 7, LastUpdateID: 7})
	}},
	{"book_snapshot", func(d []byte) ([]byte, error) {
		h := hdr
		h.Flags = FlagSnapshotReply
		return AppendBookSnapshot(d, &h, &BookSnapshot{UpdateID: 1010,
			Bids: []Level{lv("0.00001234", "1000.00"), lv("0.00001233", "250.50")},
			Asks: []Level{lv("0.00001235", "99.99"), lv("0.00001240", "5000.00"), lv("0.00001300", "1.00")},
		})
	}},
	{"bbo", func(d []byte) ([]byte, error) {
		return AppendBBO(d, &hdr, &BBO{Bid: lv("27123.45", "1.50000000"), Ask: lv("27123.46", "0.00100000"), UpdateID: 1010})
	}},
	{"status", func(d []byte) ([]byte, error) {
		h := Header{Venue: VenueBinance, Seq: 9, RecvTime: 1_700_000_001_000_000_000}
		return AppendStatus(d, &h, &Status{State: StateConnected, Connections: 1, Instruments: 4, InSync: 3,
			LastData: 1_700_000_000_999_000_000, Messages: 123456, Gaps: 37, GapsPerMillion: 299})
	}},
	{"reset", func(d []byte) ([]byte, error) {
		return AppendReset(d, &hdr, &Reset{Reason: ResetGap, LastUpdateID: 1010})
	}},
}

// fieldsJSON renders a decoded message as the JSON the vectors hold. Every
// 64-bit integer is a string so that JavaScript's numbers lose nothing.
func fieldsJSON(m Message) map[string]any {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	d := func(x Decimal) map[string]any { return map[string]any{"mant": i(x.Mant), "exp": float64(x.Exp)} }
	l := func(x Level) map[string]any { return map[string]any{"price": d(x.Price), "qty": d(x.Qty)} }
	out := map[string]any{"header": map[string]any{
		"version": float64(m.Version()), "type": m.Type().String(), "flags": float64(m.Flags()),
		"venue": m.Venue().String(), "seq": u(m.Seq()), "event_time": i(m.EventTime()), "recv_time": i(m.RecvTime()),
	}}
	switch m.Type() {
	case TypeTrade:
		v, _ := m.AsTrade()
		out["trade"] = map[string]any{"price": d(v.Price()), "qty": d(v.Qty()), "trade_id": u(v.TradeID()), "side": v.Side().String()}
	case TypeBookDelta, TypeBookSnapshot:
		v := BookView{m}
		bids, asks := []any{}, []any{}
		for k := range v.NumBids() {
			bids = append(bids, l(v.Bid(k)))
		}
		for k := range v.NumAsks() {
			asks = append(asks, l(v.Ask(k)))
		}
		if m.Type() == TypeBookDelta {
			out["book_delta"] = map[string]any{"first_update_id": u(v.FirstUpdateID()), "last_update_id": u(v.LastUpdateID()), "bids": bids, "asks": asks, "venue_seq": u(v.VenueSeq())}
		} else {
			out["book_snapshot"] = map[string]any{"update_id": u(v.UpdateID()), "bids": bids, "asks": asks, "venue_seq": u(v.VenueSeq())}
		}
	case TypeBBO:
		v, _ := m.AsBBO()
		out["bbo"] = map[string]any{"bid": l(v.Bid()), "ask": l(v.Ask()), "update_id": u(v.UpdateID())}
	case TypeStatus:
		v, _ := m.AsStatus()
		out["status"] = map[string]any{"state": v.State().String(), "connections": float64(v.Connections()),
			"instruments": float64(v.Instruments()), "in_sync": float64(v.InSync()), "last_data": i(v.LastData()), "messages": u(v.Messages()),
			"gaps": u(v.Gaps()), "gaps_per_million": float64(v.GapsPerMillion())}
	case TypeReset:
		v, _ := m.AsReset()
		out["reset"] = map[string]any{"reason": v.Reason().String(), "last_update_id": u(v.LastUpdateID())}
	}
	return out
}

// hexLines formats b as 8 bytes per line: every field is 8-byte aligned, so a
// reader can follow SPEC.md's offset tables line by line.
func hexLines(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		n := min(8, len(b))
		sb.WriteString(hex.EncodeToString(b[:n]))
		sb.WriteByte('\n')
		b = b[n:]
	}
	return sb.String()
}

func readHex(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

func readJSON(t *testing.T, path string) any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// normalize round-trips v through encoding/json so that it compares with
// what readJSON returns.
func normalize(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVectors(t *testing.T) {
	dir := filepath.Join("testdata", "vectors")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range vectorTable {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := tc.encode(nil)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			m, err := Decode(enc)
			if err != nil {
				t.Fatalf("decode own encoding: %v", err)
			}
			if *update {
				js, _ := json.MarshalIndent(fieldsJSON(m), "", "  ")
				write(t, filepath.Join(dir, tc.name+".json"), append(js, '\n'))
				write(t, filepath.Join(dir, tc.name+".hex"), []byte(hexLines(enc)))
			}
			// Direction 1: the encoder produces exactly the committed bytes.
			want := readHex(t, filepath.Join(dir, tc.name+".hex"))
			if !bytes.Equal(enc, want) {
				t.Errorf("encoding differs from %s.hex:\n got %s\nwant %s", tc.name, hexLines(enc), hexLines(want))
			}
			// Direction 2: the committed bytes decode to exactly the committed fields.
			m, err = Decode(want)
			if err != nil {
				t.Fatalf("decode %s.hex: %v", tc.name, err)
			}
			if m.Len() != len(want) {
				t.Errorf("Len = %d, want %d", m.Len(), len(want))
			}
			got := normalize(t, fieldsJSON(m))
			wantJS := readJSON(t, filepath.Join(dir, tc.name+".json"))
			if !reflect.DeepEqual(got, wantJS) {
				t.Errorf("decoded fields differ from %s.json:\n got %v\nwant %v", tc.name, got, wantJS)
			}
			// AppendJSON, the renderer tools use, must produce the same document.
			var rendered any
			if err := json.Unmarshal(m.AppendJSON(nil), &rendered); err != nil {
				t.Fatalf("AppendJSON is not valid JSON: %v\n%s", err, m.AppendJSON(nil))
			}
			if !reflect.DeepEqual(rendered, wantJS) {
				t.Errorf("AppendJSON differs from %s.json:\n got %s", tc.name, m.AppendJSON(nil))
			}
		})
	}
	// Every committed vector must come from the table, so nothing stale lingers.
	files, _ := filepath.Glob(filepath.Join(dir, "*.hex"))
	if len(files) != len(vectorTable) {
		t.Errorf("%d .hex files in %s, %d vectors in the table", len(files), dir, len(vectorTable))
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// errorNames maps the decode-only vectors' "error" field to sentinels.
var errorNames = map[string]error{
	"truncated": ErrTruncated, "version": ErrVersion, "unknown_type": ErrUnknownType, "exponent": ErrExponent,
}

func TestDecodeOnlyVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "decode-only", "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no decode-only vectors: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hex")
		t.Run(name, func(t *testing.T) {
			b := readHex(t, f)
			want := readJSON(t, strings.TrimSuffix(f, ".hex")+".json").(map[string]any)
			m, err := Decode(b)
			if wantErr, ok := want["error"].(string); ok {
				sentinel, known := errorNames[wantErr]
				if !known {
					t.Fatalf("unknown error name %q", wantErr)
				}
				if !errors.Is(err, sentinel) {
					t.Fatalf("Decode error = %v, want %v", err, sentinel)
				}
				if l, ok := want["len"].(float64); ok && m.Len() != int(l) {
					t.Errorf("Len = %d, want %v (an unknown type must stay skippable)", m.Len(), l)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got := normalize(t, fieldsJSON(m))
			delete(want, "len")
			if !reflect.DeepEqual(got, normalize(t, want)) {
				t.Errorf("decoded fields:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func Example() {
	var buf [TradeSize]byte
	h := Header{Venue: VenueBinance, Seq: 1, EventTime: 1_700_000_000_000_000_000}
	price, _ := ParseUDecimal("27123.45")
	qty, _ := ParseUDecimal("0.00100000")
	msg, _ := AppendTrade(buf[:0], &h, &Trade{Price: price, Qty: qty, TradeID: 7, Side: SideBuy})

	tr, err := DecodeTrade(msg)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(msg), tr.Venue(), tr.Seq(), tr.Price(), tr.Qty(), tr.Side())
	// Output: 64 binance 1 27123.45 0.00100000 buy
}
