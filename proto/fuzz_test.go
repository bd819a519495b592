package proto

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// The decoder fuzz targets share one property, checked for each message type:
// Decode never panics, every accessor of an accepted message stays in bounds,
// and re-encoding the decoded fields yields a message that decodes to the same
// fields. The committed seed corpus lives in testdata/fuzz/<target>/ and is
// written from the golden vectors by `go test -run TestWriteFuzzCorpus -update`.

func fuzzDecoder(f *testing.F, t MsgType, seeds ...string) {
	for _, s := range seeds {
		b, err := os.ReadFile(filepath.Join("testdata", "vectors", s+".hex"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(mustHex(string(b)))
	}
	f.Fuzz(func(tt *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if errors.Is(err, ErrUnknownType) && m.Len() > len(b) {
				tt.Fatalf("unknown type with Len %d beyond input %d", m.Len(), len(b))
			}
			return
		}
		if m.Type() != t {
			// Other types are covered by their own targets; still read them all.
			_ = fieldsJSON(m)
			return
		}
		fields := fieldsJSON(m)
		again, err := reencode(m)
		if err != nil {
			tt.Fatalf("re-encoding a decoded %v: %v", t, err)
		}
		m2, err := Decode(again)
		if err != nil {
			tt.Fatalf("decoding a re-encoded %v: %v", t, err)
		}
		if got := fieldsJSON(m2); !reflect.DeepEqual(got, fields) {
			tt.Fatalf("round trip changed fields:\n got %v\nwant %v", got, fields)
		}
	})
}

func reencode(m Message) ([]byte, error) {
	h := m.Header()
	switch m.Type() {
	case TypeTrade:
		v, _ := m.AsTrade()
		return AppendTrade(nil, &h, &Trade{Price: v.Price(), Qty: v.Qty(), TradeID: v.TradeID(), Side: v.Side()})
	case TypeBookDelta, TypeBookSnapshot:
		v := BookView{m}
		bids, asks := make([]Level, v.NumBids()), make([]Level, v.NumAsks())
		for i := range bids {
			bids[i] = v.Bid(i)
		}
		for i := range asks {
			asks[i] = v.Ask(i)
		}
		if m.Type() == TypeBookDelta {
			return AppendBookDelta(nil, &h, &BookDelta{FirstUpdateID: v.FirstUpdateID(), LastUpdateID: v.LastUpdateID(), Bids: bids, Asks: asks, VenueSeq: v.VenueSeq()})
		}
		return AppendBookSnapshot(nil, &h, &BookSnapshot{UpdateID: v.UpdateID(), Bids: bids, Asks: asks, VenueSeq: v.VenueSeq()})
	case TypeBBO:
		v, _ := m.AsBBO()
		return AppendBBO(nil, &h, &BBO{Bid: v.Bid(), Ask: v.Ask(), UpdateID: v.UpdateID()})
	case TypeStatus:
		v, _ := m.AsStatus()
		return AppendStatus(nil, &h, &Status{State: v.State(), Connections: v.Connections(), Instruments: v.Instruments(),
			InSync: v.InSync(), LastData: v.LastData(), Messages: v.Messages(), Gaps: v.Gaps(), GapsPerMillion: v.GapsPerMillion()})
	case TypeReset:
		v, _ := m.AsReset()
		return AppendReset(nil, &h, &Reset{Reason: v.Reason(), LastUpdateID: v.LastUpdateID()})
	}
	return nil, fmt.Errorf("type %v", m.Type())
}

func FuzzDecodeTrade(f *testing.F) { fuzzDecoder(f, TypeTrade, "trade_buy", "trade_extremes") }
func FuzzDecodeBookDelta(f *testing.F) {
	fuzzDecoder(f, TypeBookDelta, "book_delta_10", "book_delta_empty")
}
func FuzzDecodeBookSnapshot(f *testing.F) { fuzzDecoder(f, TypeBookSnapshot, "book_snapshot") }
func FuzzDecodeBBO(f *testing.F)          { fuzzDecoder(f, TypeBBO, "bbo") }
func FuzzDecodeStatus(f *testing.F)       { fuzzDecoder(f, TypeStatus, "status") }
func FuzzDecodeReset(f *testing.F)        { fuzzDecoder(f, TypeReset, "reset") }

func mustHex(s string) []byte {
	var out []byte
	var hi byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		default:
			continue
		}
		if n%2 == 0 {
			hi = v
		} else {
			out = append(out, hi<<4|v)
		}
		n++
	}
	return out
}

// TestWriteFuzzCorpus writes the committed seed corpus (with -update): each
// target gets every golden vector and every decode-only input, so that the
// fuzzer starts from valid messages of all types and from known-bad ones.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("writes testdata/fuzz only with -update")
	}
	var inputs [][]byte
	for _, dir := range []string{"vectors", "decode-only"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.hex"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, mustHex(string(b)))
		}
	}
	for _, target := range []string{"FuzzDecodeTrade", "FuzzDecodeBookDelta", "FuzzDecodeBookSnapshot", "FuzzDecodeBBO", "FuzzDecodeStatus", "FuzzDecodeReset"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, in := range inputs {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(in)) + ")\n"
			write(t, filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body))
		}
	}
}
