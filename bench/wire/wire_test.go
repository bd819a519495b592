package wire

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/paddockhq/paddock/bench/wire/wirepb"
	"github.com/paddockhq/paddock/proto"
	pb "google.golang.org/protobuf/proto"
)

// The fixtures below carry the same values in all three codecs. Each decode
// benchmark reads every field, so the three do the same work.

var (
	hdr   = proto.Header{Venue: proto.VenueBinance, Seq: 42, EventTime: 1_700_000_000_123_000_000, RecvTime: 1_700_000_000_123_456_789}
	trade = proto.Trade{Price: proto.Decimal{Mant: 2712345, Exp: -2}, Qty: proto.Decimal{Mant: 100000, Exp: -8}, TradeID: 3187632211, Side: proto.SideBuy}
	delta = proto.BookDelta{FirstUpdateID: 1001, LastUpdateID: 1010, Bids: levels(5, 2712345, -1), Asks: levels(5, 2712346, 1)}
)

func levels(n int, p0, step int64) []proto.Level {
	ls := make([]proto.Level, n)
	for i := range ls {
		ls[i] = proto.Level{Price: proto.Decimal{Mant: p0 + step*int64(i), Exp: -2}, Qty: proto.Decimal{Mant: int64(i+1) * 100000, Exp: -8}}
	}
	return ls
}

// ---- protobuf fixtures ----

func pbHeader(t proto.MsgType) *wirepb.Header {
	return &wirepb.Header{Version: proto.Version, Type: uint32(t), Venue: uint32(hdr.Venue), Seq: hdr.Seq, EventTime: hdr.EventTime, RecvTime: hdr.RecvTime}
}

func pbDec(d proto.Decimal) *wirepb.Decimal { return &wirepb.Decimal{Mant: d.Mant, Exp: int32(d.Exp)} }

func pbTrade() *wirepb.Trade {
	return &wirepb.Trade{Header: pbHeader(proto.TypeTrade), Price: pbDec(trade.Price), Qty: pbDec(trade.Qty), TradeId: trade.TradeID, Side: uint32(trade.Side)}
}

func pbDelta() *wirepb.BookDelta {
	m := &wirepb.BookDelta{Header: pbHeader(proto.TypeBookDelta), FirstUpdateId: delta.FirstUpdateID, LastUpdateId: delta.LastUpdateID}
	for _, l := range delta.Bids {
		m.Bids = append(m.Bids, &wirepb.Level{Price: pbDec(l.Price), Qty: pbDec(l.Qty)})
	}
	for _, l := range delta.Asks {
		m.Asks = append(m.Asks, &wirepb.Level{Price: pbDec(l.Price), Qty: pbDec(l.Qty)})
	}
	return m
}

func pbReadHeader(h *wirepb.Header) int64 {
	return int64(h.GetVersion()+h.GetType()+h.GetFlags()+h.GetVenue()) + int64(h.GetSeq()) + h.GetEventTime() + h.GetRecvTime()
}

// ---- encoding/json fixtures ----

type jHeader struct {
	Version   uint8  `json:"version"`
	Type      uint8  `json:"type"`
	Flags     uint16 `json:"flags"`
	Venue     uint16 `json:"venue"`
	Seq       uint64 `json:"seq"`
	EventTime int64  `json:"event_time"`
	RecvTime  int64  `json:"recv_time"`
}

type jDec struct {
	Mant int64 `json:"mant"`
	Exp  int8  `json:"exp"`
}

type jTrade struct {
	Header  jHeader `json:"header"`
	Price   jDec    `json:"price"`
	Qty     jDec    `json:"qty"`
	TradeID uint64  `json:"trade_id"`
	Side    uint8   `json:"side"`
}

type jLevel struct {
	Price jDec `json:"price"`
	Qty   jDec `json:"qty"`
}

type jDelta struct {
	Header        jHeader  `json:"header"`
	FirstUpdateID uint64   `json:"first_update_id"`
	LastUpdateID  uint64   `json:"last_update_id"`
	Bids          []jLevel `json:"bids"`
	Asks          []jLevel `json:"asks"`
}

func jH(t proto.MsgType) jHeader {
	return jHeader{Version: proto.Version, Type: uint8(t), Venue: uint16(hdr.Venue), Seq: hdr.Seq, EventTime: hdr.EventTime, RecvTime: hdr.RecvTime}
}

func jD(d proto.Decimal) jDec { return jDec{d.Mant, d.Exp} }

func jsonTrade() *jTrade {
	return &jTrade{Header: jH(proto.TypeTrade), Price: jD(trade.Price), Qty: jD(trade.Qty), TradeID: trade.TradeID, Side: uint8(trade.Side)}
}

func jsonDelta() *jDelta {
	m := &jDelta{Header: jH(proto.TypeBookDelta), FirstUpdateID: delta.FirstUpdateID, LastUpdateID: delta.LastUpdateID}
	for _, l := range delta.Bids {
		m.Bids = append(m.Bids, jLevel{jD(l.Price), jD(l.Qty)})
	}
	for _, l := range delta.Asks {
		m.Asks = append(m.Asks, jLevel{jD(l.Price), jD(l.Qty)})
	}
	return m
}

func jReadHeader(h *jHeader) int64 {
	return int64(h.Version) + int64(h.Type) + int64(h.Flags) + int64(h.Venue) + int64(h.Seq) + h.EventTime + h.RecvTime
}

var sink int64

// TestCodecsCarrySameValues makes sure the benchmarks compare like with like:
// all three codecs round-trip the same values.
func TestCodecsCarrySameValues(t *testing.T) {
	buf, err := proto.AppendTrade(nil, &hdr, &trade)
	if err != nil {
		t.Fatal(err)
	}
	tv, err := proto.DecodeTrade(buf)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := pb.Marshal(pbTrade())
	var pt wirepb.Trade
	if err := pb.Unmarshal(raw, &pt); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(jsonTrade())
	var jt jTrade
	if err := json.Unmarshal(js, &jt); err != nil {
		t.Fatal(err)
	}
	if tv.Price().Mant != pt.Price.Mant || tv.Price().Mant != jt.Price.Mant || tv.TradeID() != pt.TradeId || tv.TradeID() != jt.TradeID ||
		tv.Seq() != pt.Header.Seq || tv.Seq() != jt.Header.Seq {
		t.Fatalf("codecs disagree: %v / %v / %+v", tv.Price(), pt.Price, jt.Price)
	}
	var pd wirepb.BookDelta
	raw, _ = pb.Marshal(pbDelta())
	if err := pb.Unmarshal(raw, &pd); err != nil {
		t.Fatal(err)
	}
	var jd jDelta
	js, _ = json.Marshal(jsonDelta())
	if err := json.Unmarshal(js, &jd); err != nil {
		t.Fatal(err)
	}
	buf, _ = proto.AppendBookDelta(nil, &hdr, &delta)
	m, _ := proto.Decode(buf)
	bv, _ := m.AsBookDelta()
	for i := range bv.NumAsks() {
		a := bv.Ask(i)
		got := []int64{a.Price.Mant, a.Qty.Mant}
		if !reflect.DeepEqual(got, []int64{pd.Asks[i].Price.Mant, pd.Asks[i].Qty.Mant}) || !reflect.DeepEqual(got, []int64{jd.Asks[i].Price.Mant, jd.Asks[i].Qty.Mant}) {
			t.Fatalf("ask %d differs", i)
		}
	}
}

func BenchmarkTrade(b *testing.B) {
	b.Run("codec=paddock/op=encode", func(b *testing.B) {
		buf, _ := proto.AppendTrade(nil, &hdr, &trade)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = proto.AppendTrade(buf[:0], &hdr, &trade)
		}
	})
	b.Run("codec=paddock/op=decode", func(b *testing.B) {
		buf, _ := proto.AppendTrade(nil, &hdr, &trade)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			v, err := proto.DecodeTrade(buf)
			if err != nil {
				b.Fatal(err)
			}
			sink += v.Price().Mant + int64(v.Price().Exp) + v.Qty().Mant + int64(v.Qty().Exp) + int64(v.TradeID()) + int64(v.Side()) +
				int64(v.Version()) + int64(v.Type()) + int64(v.Flags()) + int64(v.Venue()) + int64(v.Seq()) + v.EventTime() + v.RecvTime()
		}
	})
	b.Run("codec=protobuf/op=encode", func(b *testing.B) {
		msg := pbTrade()
		buf, _ := pb.Marshal(msg)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		opts := pb.MarshalOptions{}
		for b.Loop() {
			buf, _ = opts.MarshalAppend(buf[:0], msg)
		}
	})
	b.Run("codec=protobuf/op=decode", func(b *testing.B) {
		buf, _ := pb.Marshal(pbTrade())
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		var m wirepb.Trade
		for b.Loop() {
			if err := pb.Unmarshal(buf, &m); err != nil {
				b.Fatal(err)
			}
			sink += m.GetPrice().GetMant() + int64(m.GetPrice().GetExp()) + m.GetQty().GetMant() + int64(m.GetQty().GetExp()) +
				int64(m.GetTradeId()) + int64(m.GetSide()) + pbReadHeader(m.GetHeader())
		}
	})
	b.Run("codec=json/op=encode", func(b *testing.B) {
		msg := jsonTrade()
		buf, _ := json.Marshal(msg)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			out, _ := json.Marshal(msg)
			sink += int64(len(out))
		}
	})
	b.Run("codec=json/op=decode", func(b *testing.B) {
		buf, _ := json.Marshal(jsonTrade())
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		var m jTrade
		for b.Loop() {
			if err := json.Unmarshal(buf, &m); err != nil {
				b.Fatal(err)
			}
			sink += m.Price.Mant + int64(m.Price.Exp) + m.Qty.Mant + int64(m.Qty.Exp) + int64(m.TradeID) + int64(m.Side) + jReadHeader(&m.Header)
		}
	})
}

func BenchmarkBookDelta10(b *testing.B) {
	b.Run("codec=paddock/op=encode", func(b *testing.B) {
		buf, _ := proto.AppendBookDelta(nil, &hdr, &delta)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = proto.AppendBookDelta(buf[:0], &hdr, &delta)
		}
	})
	b.Run("codec=paddock/op=decode", func(b *testing.B) {
		buf, _ := proto.AppendBookDelta(nil, &hdr, &delta)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			m, err := proto.Decode(buf)
			if err != nil {
				b.Fatal(err)
			}
			v, _ := m.AsBookDelta()
			s := int64(v.FirstUpdateID()+v.LastUpdateID()+v.Seq()) + v.EventTime() + v.RecvTime() + int64(v.Venue())
			for i := range v.NumBids() {
				l := v.Bid(i)
				s += l.Price.Mant + l.Qty.Mant + int64(l.Price.Exp+l.Qty.Exp)
			}
			for i := range v.NumAsks() {
				l := v.Ask(i)
				s += l.Price.Mant + l.Qty.Mant + int64(l.Price.Exp+l.Qty.Exp)
			}
			sink += s
		}
	})
	b.Run("codec=protobuf/op=encode", func(b *testing.B) {
		msg := pbDelta()
		buf, _ := pb.Marshal(msg)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		opts := pb.MarshalOptions{}
		for b.Loop() {
			buf, _ = opts.MarshalAppend(buf[:0], msg)
		}
	})
	b.Run("codec=protobuf/op=decode", func(b *testing.B) {
		buf, _ := pb.Marshal(pbDelta())
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		var m wirepb.BookDelta
		for b.Loop() {
			if err := pb.Unmarshal(buf, &m); err != nil {
				b.Fatal(err)
			}
			s := int64(m.GetFirstUpdateId()+m.GetLastUpdateId()) + pbReadHeader(m.GetHeader())
			for _, l := range m.GetBids() {
				s += l.GetPrice().GetMant() + l.GetQty().GetMant() + int64(l.GetPrice().GetExp()+l.GetQty().GetExp())
			}
			for _, l := range m.GetAsks() {
				s += l.GetPrice().GetMant() + l.GetQty().GetMant() + int64(l.GetPrice().GetExp()+l.GetQty().GetExp())
			}
			sink += s
		}
	})
	b.Run("codec=json/op=encode", func(b *testing.B) {
		msg := jsonDelta()
		buf, _ := json.Marshal(msg)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			out, _ := json.Marshal(msg)
			sink += int64(len(out))
		}
	})
	b.Run("codec=json/op=decode", func(b *testing.B) {
		buf, _ := json.Marshal(jsonDelta())
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		var m jDelta
		for b.Loop() {
			if err := json.Unmarshal(buf, &m); err != nil {
				b.Fatal(err)
			}
			s := int64(m.FirstUpdateID+m.LastUpdateID) + jReadHeader(&m.Header)
			for _, l := range m.Bids {
				s += l.Price.Mant + l.Qty.Mant + int64(l.Price.Exp+l.Qty.Exp)
			}
			for _, l := range m.Asks {
				s += l.Price.Mant + l.Qty.Mant + int64(l.Price.Exp+l.Qty.Exp)
			}
			sink += s
		}
	})
}
