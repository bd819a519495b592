package binance

import (
	"testing"

	"github.com/paddockhq/paddock/proto"
)

// BenchmarkJSONToProto is the per-message target: a Binance frame
// in, a proto message out (parse, then encode), for the zero-allocation
// scanner and, in the same run, for an encoding/json decode of the same
// frames. `make bench` prints the ratio.
func BenchmarkJSONToProto(b *testing.B) {
	for _, tc := range []struct{ event, frame string }{{"trade", spotTrade}, {"depth10", spotDepth10}} {
		frame := []byte(tc.frame)
		h := proto.Header{Venue: proto.VenueBinance, Seq: 1}
		encode := func(ev *Event, buf []byte) []byte {
			h.EventTime = ev.EventTime
			if ev.Kind == KindDepth {
				buf, _ = proto.AppendBookDelta(buf[:0], &h, &proto.BookDelta{FirstUpdateID: ev.FirstID, LastUpdateID: ev.LastID, Bids: ev.Bids, Asks: ev.Asks})
				return buf
			}
			side := proto.SideBuy
			if ev.BuyerMaker {
				side = proto.SideSell
			}
			buf, _ = proto.AppendTrade(buf[:0], &h, &proto.Trade{Price: ev.Price, Qty: ev.Qty, TradeID: ev.TradeID, Side: side})
			return buf
		}
		b.Run("event="+tc.event+"/codec=paddock", func(b *testing.B) {
			var p Parser
			buf := make([]byte, 0, 512)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				ev, err := p.Parse(frame)
				if err != nil {
					b.Fatal(err)
				}
				buf = encode(ev, buf)
			}
		})
		b.Run("event="+tc.event+"/codec=encoding_json", func(b *testing.B) {
			var ev Event
			buf := make([]byte, 0, 512)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if err := refParse(frame, &ev); err != nil {
					b.Fatal(err)
				}
				buf = encode(&ev, buf)
			}
		})
	}
}
