package proto

import "strconv"

// AppendJSON appends a JSON rendering of a decoded message to dst: the
// schema of the test vectors in testdata/ (64-bit integers as strings,
// decimals as {"exp":e,"mant":"m"}), with keys in sorted order. It is for
// tools and logs, not the hot path.
func (m Message) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	switch m.Type() {
	case TypeTrade:
		v := TradeView{m}
		dst = append(dst, `"header":`...)
		dst = m.appendHeaderJSON(dst)
		dst = append(dst, `,"trade":{"price":`...)
		dst = appendDecJSON(dst, v.Price())
		dst = append(dst, `,"qty":`...)
		dst = appendDecJSON(dst, v.Qty())
		dst = append(dst, `,"side":"`...)
		dst = append(dst, v.Side().String()...)
		dst = append(dst, `","trade_id":`...)
		dst = appendU64JSON(dst, v.TradeID())
		dst = append(dst, '}')
	case TypeBookDelta, TypeBookSnapshot:
		v := BookView{m}
		if m.Type() == TypeBookDelta {
			dst = append(dst, `"book_delta":{"asks":`...)
		} else {
			dst = append(dst, `"book_snapshot":{"asks":`...)
		}
		dst = appendLevelsJSON(dst, v, v.NumBids(), v.NumAsks())
		dst = append(dst, `,"bids":`...)
		dst = appendLevelsJSON(dst, v, 0, v.NumBids())
		if m.Type() == TypeBookDelta {
			dst = append(dst, `,"first_update_id":`...)
			dst = appendU64JSON(dst, v.FirstUpdateID())
			dst = append(dst, `,"last_update_id":`...)
			dst = appendU64JSON(dst, v.LastUpdateID())
		} else {
			dst = append(dst, `,"update_id":`...)
			dst = appendU64JSON(dst, v.UpdateID())
		}
		dst = append(dst, `,"venue_seq":`...)
		dst = appendU64JSON(dst, v.VenueSeq())
		dst = append(dst, `},"header":`...)
		dst = m.appendHeaderJSON(dst)
	case TypeBBO:
		v := BBOView{m}
		dst = append(dst, `"bbo":{"ask":`...)
		dst = appendLevelJSON(dst, v.Ask())
		dst = append(dst, `,"bid":`...)
		dst = appendLevelJSON(dst, v.Bid())
		dst = append(dst, `,"update_id":`...)
		dst = appendU64JSON(dst, v.UpdateID())
		dst = append(dst, `},"header":`...)
		dst = m.appendHeaderJSON(dst)
	case TypeStatus:
		v := StatusView{m}
		dst = append(dst, `"header":`...)
		dst = m.appendHeaderJSON(dst)
		dst = append(dst, `,"status":{"connections":`...)
		dst = strconv.AppendUint(dst, uint64(v.Connections()), 10)
		dst = append(dst, `,"gaps":`...)
		dst = appendU64JSON(dst, v.Gaps())
		dst = append(dst, `,"gaps_per_million":`...)
		dst = strconv.AppendUint(dst, uint64(v.GapsPerMillion()), 10)
		dst = append(dst, `,"in_sync":`...)
		dst = strconv.AppendUint(dst, uint64(v.InSync()), 10)
		dst = append(dst, `,"instruments":`...)
		dst = strconv.AppendUint(dst, uint64(v.Instruments()), 10)
		dst = append(dst, `,"last_data":`...)
		dst = appendI64JSON(dst, v.LastData())
		dst = append(dst, `,"messages":`...)
		dst = appendU64JSON(dst, v.Messages())
		dst = append(dst, `,"state":"`...)
		dst = append(dst, v.State().String()...)
		dst = append(dst, `"}`...)
	case TypeReset:
		v := ResetView{m}
		dst = append(dst, `"header":`...)
		dst = m.appendHeaderJSON(dst)
		dst = append(dst, `,"reset":{"last_update_id":`...)
		dst = appendU64JSON(dst, v.LastUpdateID())
		dst = append(dst, `,"reason":"`...)
		dst = append(dst, v.Reason().String()...)
		dst = append(dst, `"}`...)
	default:
		dst = append(dst, `"header":`...)
		dst = m.appendHeaderJSON(dst)
	}
	return append(dst, '}')
}

func (m Message) appendHeaderJSON(dst []byte) []byte {
	dst = append(dst, `{"event_time":`...)
	dst = appendI64JSON(dst, m.EventTime())
	dst = append(dst, `,"flags":`...)
	dst = strconv.AppendUint(dst, uint64(m.Flags()), 10)
	dst = append(dst, `,"recv_time":`...)
	dst = appendI64JSON(dst, m.RecvTime())
	dst = append(dst, `,"seq":`...)
	dst = appendU64JSON(dst, m.Seq())
	dst = append(dst, `,"type":"`...)
	dst = append(dst, m.Type().String()...)
	dst = append(dst, `","venue":"`...)
	dst = append(dst, m.Venue().String()...)
	dst = append(dst, `","version":`...)
	dst = strconv.AppendUint(dst, uint64(m.Version()), 10)
	return append(dst, '}')
}

func appendLevelsJSON(dst []byte, v BookView, from, n int) []byte {
	dst = append(dst, '[')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendLevelJSON(dst, v.level(from+i))
	}
	return append(dst, ']')
}

func appendLevelJSON(dst []byte, l Level) []byte {
	dst = append(dst, `{"price":`...)
	dst = appendDecJSON(dst, l.Price)
	dst = append(dst, `,"qty":`...)
	dst = appendDecJSON(dst, l.Qty)
	return append(dst, '}')
}

func appendDecJSON(dst []byte, d Decimal) []byte {
	dst = append(dst, `{"exp":`...)
	dst = strconv.AppendInt(dst, int64(d.Exp), 10)
	dst = append(dst, `,"mant":`...)
	dst = appendI64JSON(dst, d.Mant)
	return append(dst, '}')
}

func appendU64JSON(dst []byte, v uint64) []byte {
	dst = append(dst, '"')
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '"')
}

func appendI64JSON(dst []byte, v int64) []byte {
	dst = append(dst, '"')
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, '"')
}
