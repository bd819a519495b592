package sim

import (
	"math/rand/v2"
	"sort"
	"strconv"

	"github.com/paddockhq/paddock/proto"
)

// Prices and quantities are kept as mantissas at exponent -8 and formatted
// with eight decimals, as Binance spot does ("27123.45000000").
const scaleExp = -8

// market is one symbol's true order book, trade tape and update ids. It is
// guarded by Sim.mu.
type market struct {
	symbol  string // upper case, as in frames (BTCUSDT)
	lower   string // stream prefix (btcusdt)
	futures bool
	rng     *rand.Rand
	tick    int64 // price tick as a mantissa at scaleExp
	lot     int64 // quantity step as a mantissa at scaleExp
	mid     int64 // in ticks
	bids    map[int64]int64
	asks    map[int64]int64

	updateID uint64 // last book update id
	tradeID  uint64 // last trade id
	aggID    uint64 // last aggregate trade id
	trades   uint64 // trades generated
	skipNext bool   // the next depth event is generated but not sent (a gap)
	lastBBO  [4]int64
	bybit    bybitState

	binanceSent, binanceAggSent uint64 // trades sent on the trade / aggTrade streams
}

// band is how many ticks either side of the mid the book keeps levels.
const band = 20

func newMarket(symbol string, futures bool, price float64, seed uint64) *market {
	m := &market{
		symbol: symbol, lower: lowerASCII(symbol), futures: futures,
		rng:  rand.New(rand.NewPCG(seed, uint64(len(symbol))*7919)),
		tick: 1_000_000, // 0.01
		lot:  100_000,   // 0.001
		bids: map[int64]int64{}, asks: map[int64]int64{},
	}
	m.mid = int64(price*100) * 1 // in ticks of 0.01
	for i := int64(1); i <= band; i++ {
		m.bids[(m.mid-i)*m.tick] = m.randQty()
		m.asks[(m.mid+i)*m.tick] = m.randQty()
	}
	m.updateID = 1000 + uint64(m.rng.IntN(1000))
	m.tradeID = 5000 + uint64(m.rng.IntN(1000))
	m.aggID = m.tradeID
	m.bybit.u = 100 + m.updateID%1000 // not from rng: the Binance sequences stay as they were
	return m
}

func (m *market) randQty() int64 { return (1 + m.rng.Int64N(5000)) * m.lot }

// change is one level change in a step.
type change struct {
	ask        bool
	price, qty int64
}

type tradeEv struct {
	id, aggID  uint64
	price, qty int64
	buyerMaker bool
}

// step advances the market by one event: a few level changes (and maybe a
// trade that consumes the top of the book), each change one update id.
func (m *market) step(withTrade bool) (changes []change, tr *tradeEv, first, last uint64) {
	first = m.updateID + 1
	set := func(ask bool, price, qty int64) {
		side := m.bids
		if ask {
			side = m.asks
		}
		if qty == 0 {
			delete(side, price)
		} else {
			side[price] = qty
		}
		changes = append(changes, change{ask: ask, price: price, qty: qty})
		m.updateID++
	}
	// The mid walks by at most one tick; levels that leave the band go.
	if r := m.rng.IntN(10); r == 0 {
		m.mid++
	} else if r == 1 {
		m.mid--
	}
	for p := range m.bids {
		if p >= m.mid*m.tick || p < (m.mid-band)*m.tick {
			set(false, p, 0)
		}
	}
	for p := range m.asks {
		if p <= m.mid*m.tick || p > (m.mid+band)*m.tick {
			set(true, p, 0)
		}
	}
	for range 1 + m.rng.IntN(4) {
		ask := m.rng.IntN(2) == 0
		off := 1 + m.rng.Int64N(band)
		p := (m.mid - off) * m.tick
		if ask {
			p = (m.mid + off) * m.tick
		}
		q := m.randQty()
		if m.rng.IntN(5) == 0 {
			q = 0
		}
		set(ask, p, q)
	}
	if withTrade {
		ask := m.rng.IntN(2) == 0 // a buyer lifts the best ask
		var best int64
		var ok bool
		if ask {
			best, ok = bestOf(m.asks, false)
		} else {
			best, ok = bestOf(m.bids, true)
		}
		if ok {
			side := m.bids
			if ask {
				side = m.asks
			}
			q := min(side[best], (1+m.rng.Int64N(20))*m.lot)
			set(ask, best, side[best]-q)
			m.tradeID++
			m.aggID++
			m.trades++
			tr = &tradeEv{id: m.tradeID, aggID: m.aggID, price: best, qty: q, buyerMaker: !ask}
		}
	}
	// Binance sends one absolute quantity per price in a diff: fold repeats.
	changes = fold(changes)
	return changes, tr, first, m.updateID
}

func fold(cs []change) []change {
	type key struct {
		ask   bool
		price int64
	}
	idx := map[key]int{}
	out := cs[:0]
	for _, c := range cs {
		k := key{c.ask, c.price}
		if i, ok := idx[k]; ok {
			out[i].qty = c.qty
			continue
		}
		idx[k] = len(out)
		out = append(out, c)
	}
	return out
}

func bestOf(side map[int64]int64, highest bool) (int64, bool) {
	var best int64
	ok := false
	for p, q := range side {
		if q == 0 {
			continue
		}
		if !ok || (highest && p > best) || (!highest && p < best) {
			best, ok = p, true
		}
	}
	return best, ok
}

// levels returns a side sorted best first, at most limit levels (0 = all).
func levels(side map[int64]int64, bids bool, limit int) [][2]int64 {
	out := make([][2]int64, 0, len(side))
	for p, q := range side {
		out = append(out, [2]int64{p, q})
	}
	sort.Slice(out, func(i, j int) bool {
		if bids {
			return out[i][0] > out[j][0]
		}
		return out[i][0] < out[j][0]
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Book returns the market's true book as proto levels, best first.
func (m *market) book() (bids, asks []proto.Level, updateID uint64) {
	conv := func(ls [][2]int64) []proto.Level {
		out := make([]proto.Level, len(ls))
		for i, l := range ls {
			out[i] = proto.Level{Price: proto.Decimal{Mant: l[0], Exp: scaleExp}, Qty: proto.Decimal{Mant: l[1], Exp: scaleExp}}
		}
		return out
	}
	return conv(levels(m.bids, true, 0)), conv(levels(m.asks, false, 0)), m.updateID
}

// ---- frame formatting (Binance's JSON, built with strconv, no reflection) ----

func appendDec(b []byte, mant int64) []byte {
	return proto.Decimal{Mant: mant, Exp: scaleExp}.AppendText(b)
}

func appendQuoted(b []byte, mant int64) []byte {
	b = append(b, '"')
	b = appendDec(b, mant)
	return append(b, '"')
}

func appendLevels(b []byte, cs []change, ask bool) []byte {
	b = append(b, '[')
	n := 0
	for _, c := range cs {
		if c.ask != ask {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendQuoted(b, c.price)
		b = append(b, ',')
		b = appendQuoted(b, c.qty)
		b = append(b, ']')
		n++
	}
	return append(b, ']')
}

func (m *market) depthFrame(cs []change, first, last, prev uint64, ms int64) []byte {
	b := make([]byte, 0, 128+48*len(cs))
	b = append(b, `{"stream":"`...)
	b = append(b, m.lower...)
	b = append(b, `@depth@100ms","data":{"e":"depthUpdate","E":`...)
	b = strconv.AppendInt(b, ms, 10)
	if m.futures {
		b = append(b, `,"T":`...)
		b = strconv.AppendInt(b, ms, 10)
	}
	b = append(b, `,"s":"`...)
	b = append(b, m.symbol...)
	b = append(b, `","U":`...)
	b = strconv.AppendUint(b, first, 10)
	b = append(b, `,"u":`...)
	b = strconv.AppendUint(b, last, 10)
	if m.futures {
		b = append(b, `,"pu":`...)
		b = strconv.AppendUint(b, prev, 10)
	}
	b = append(b, `,"b":`...)
	b = appendLevels(b, cs, false)
	b = append(b, `,"a":`...)
	b = appendLevels(b, cs, true)
	return append(b, "}}"...)
}

func (m *market) tradeFrame(t *tradeEv, agg bool, ms int64) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"stream":"`...)
	b = append(b, m.lower...)
	if agg {
		b = append(b, `@aggTrade","data":{"e":"aggTrade","E":`...)
	} else {
		b = append(b, `@trade","data":{"e":"trade","E":`...)
	}
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, `,"s":"`...)
	b = append(b, m.symbol...)
	if agg {
		b = append(b, `","a":`...)
		b = strconv.AppendUint(b, t.aggID, 10)
	} else {
		b = append(b, `","t":`...)
		b = strconv.AppendUint(b, t.id, 10)
	}
	b = append(b, `,"p":`...)
	b = appendQuoted(b, t.price)
	b = append(b, `,"q":`...)
	b = appendQuoted(b, t.qty)
	if agg {
		b = append(b, `,"f":`...)
		b = strconv.AppendUint(b, t.id, 10)
		b = append(b, `,"l":`...)
		b = strconv.AppendUint(b, t.id, 10)
	}
	b = append(b, `,"T":`...)
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, `,"m":`...)
	b = strconv.AppendBool(b, t.buyerMaker)
	return append(b, `,"M":true}}`...)
}

// bboFrame returns a bookTicker frame when the top of the book changed.
func (m *market) bboFrame(ms int64) []byte {
	bp, okb := bestOf(m.bids, true)
	ap, oka := bestOf(m.asks, false)
	if !okb || !oka {
		return nil
	}
	top := [4]int64{bp, m.bids[bp], ap, m.asks[ap]}
	if top == m.lastBBO {
		return nil
	}
	m.lastBBO = top
	b := make([]byte, 0, 256)
	b = append(b, `{"stream":"`...)
	b = append(b, m.lower...)
	b = append(b, `@bookTicker","data":{`...)
	if m.futures {
		b = append(b, `"e":"bookTicker","E":`...)
		b = strconv.AppendInt(b, ms, 10)
		b = append(b, `,"T":`...)
		b = strconv.AppendInt(b, ms, 10)
		b = append(b, ',')
	}
	b = append(b, `"u":`...)
	b = strconv.AppendUint(b, m.updateID, 10)
	b = append(b, `,"s":"`...)
	b = append(b, m.symbol...)
	b = append(b, `","b":`...)
	b = appendQuoted(b, top[0])
	b = append(b, `,"B":`...)
	b = appendQuoted(b, top[1])
	b = append(b, `,"a":`...)
	b = appendQuoted(b, top[2])
	b = append(b, `,"A":`...)
	b = appendQuoted(b, top[3])
	return append(b, "}}"...)
}

// snapshotJSON is the REST depth response.
func (m *market) snapshotJSON(limit int, ms int64) []byte {
	b := make([]byte, 0, 4096)
	b = append(b, `{"lastUpdateId":`...)
	b = strconv.AppendUint(b, m.updateID, 10)
	if m.futures {
		b = append(b, `,"E":`...)
		b = strconv.AppendInt(b, ms, 10)
		b = append(b, `,"T":`...)
		b = strconv.AppendInt(b, ms, 10)
	}
	for _, side := range []struct {
		name string
		ls   [][2]int64
	}{{"bids", levels(m.bids, true, limit)}, {"asks", levels(m.asks, false, limit)}} {
		b = append(b, `,"`...)
		b = append(b, side.name...)
		b = append(b, `":[`...)
		for i, l := range side.ls {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = appendQuoted(b, l[0])
			b = append(b, ',')
			b = appendQuoted(b, l[1])
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
