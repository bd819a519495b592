package proto

import "encoding/binary"

// Side is the aggressor side of a trade. Values beyond the known ones may
// appear from newer producers and must be treated as unknown.
type Side uint8

const (
	SideUnknown Side = 0
	SideBuy     Side = 1 // the buyer was the taker
	SideSell    Side = 2 // the seller was the taker
)

func (s Side) String() string {
	switch s {
	case SideBuy:
		return "buy"
	case SideSell:
		return "sell"
	}
	return "unknown"
}

// ---- Trade ----------------------------------------------------------------

const (
	tradePrice   = 0
	tradeQty     = 8
	tradeID      = 16
	tradePExp    = 24
	tradeQExp    = 25
	tradeSide    = 26
	tradeBodyLen = 32
)

// TradeSize is the encoded size of a Trade message.
const TradeSize = HeaderLen + tradeBodyLen

// Trade is the input to AppendTrade.
type Trade struct {
	Price   Decimal
	Qty     Decimal
	TradeID uint64 // exchange trade id (aggregate trade id for aggTrade streams)
	Side    Side
}

// AppendTrade appends an encoded Trade to dst and returns the extended slice.
// It allocates only when dst lacks TradeSize bytes of spare capacity.
func AppendTrade(dst []byte, h *Header, t *Trade) ([]byte, error) {
	if err := checkExp(t.Price, t.Qty); err != nil {
		return dst, err
	}
	dst, m := grow(dst, TradeSize)
	putHeader(m, TypeTrade, h, tradeBodyLen)
	b := m[HeaderLen:]
	putU64(b, tradePrice, uint64(t.Price.Mant))
	putU64(b, tradeQty, uint64(t.Qty.Mant))
	putU64(b, tradeID, t.TradeID)
	b[tradePExp] = byte(t.Price.Exp)
	b[tradeQExp] = byte(t.Qty.Exp)
	b[tradeSide] = byte(t.Side)
	clear(b[tradeSide+1 : tradeBodyLen])
	return dst, nil
}

// TradeView reads a decoded Trade. Same lifetime rules as Message.
type TradeView struct{ Message }

// AsTrade returns m as a Trade, or ErrWrongType.
func (m Message) AsTrade() (TradeView, error) { return TradeView{m}, m.as(TypeTrade) }

// DecodeTrade is Decode followed by AsTrade.
func DecodeTrade(b []byte) (TradeView, error) {
	m, err := Decode(b)
	if err != nil {
		return TradeView{}, err
	}
	return m.AsTrade()
}

func (v TradeView) Price() Decimal  { b := v.body(); return getDec(b, tradePrice, b[tradePExp]) }
func (v TradeView) Qty() Decimal    { b := v.body(); return getDec(b, tradeQty, b[tradeQExp]) }
func (v TradeView) TradeID() uint64 { return binary.LittleEndian.Uint64(v.body()[tradeID:]) }
func (v TradeView) Side() Side      { return Side(v.body()[tradeSide]) }

// ---- BookDelta and BookSnapshot -------------------------------------------

const (
	bookFirstID  = 0 // BookDelta: first update id; BookSnapshot: update id
	bookLastID   = 8 // BookDelta: last update id; BookSnapshot: reserved
	bookNBids    = 16
	bookNAsks    = 18
	bookPExp     = 20
	bookQExp     = 21
	bookFixedLen = 24
	levelLen     = 16
)

// bookTailLen is the fields appended after the levels (venue_seq); SPEC
// rule 6: a body from an older feed ends with the levels.
const bookTailLen = 8

// MaxLevels is the most levels (bids plus asks) one book message can carry.
const MaxLevels = (MaxBodyLen - bookFixedLen - bookTailLen) / levelLen

// Level is one price level. In a BookDelta, a zero Qty removes the level.
type Level struct {
	Price Decimal
	Qty   Decimal
}

// BookDelta is the input to AppendBookDelta: the levels that changed between
// exchange update ids FirstUpdateID and LastUpdateID inclusive.
type BookDelta struct {
	FirstUpdateID uint64
	LastUpdateID  uint64
	Bids, Asks    []Level
	// VenueSeq is the venue's own sequence of the update where it has one
	// beside its update ids (Bybit's cross sequence "seq"); 0 = none.
	VenueSeq uint64
}

// BookSnapshot is the input to AppendBookSnapshot: the full book as of
// exchange update id UpdateID, bids best (highest) first, asks best (lowest)
// first.
type BookSnapshot struct {
	UpdateID   uint64
	Bids, Asks []Level
	VenueSeq   uint64 // as in BookDelta
}

// BookSize returns the encoded size of a book message with n levels.
func BookSize(n int) int { return HeaderLen + bookFixedLen + levelLen*n + bookTailLen }

// AppendBookDelta appends an encoded BookDelta. All prices share one exponent
// on the wire, and so do all quantities: levels with differing exponents are
// rescaled exactly to the smallest one, or ErrScale is returned. On error dst
// is returned unchanged.
func AppendBookDelta(dst []byte, h *Header, d *BookDelta) ([]byte, error) {
	return appendBook(dst, TypeBookDelta, h, d.FirstUpdateID, d.LastUpdateID, d.VenueSeq, d.Bids, d.Asks)
}

// AppendBookSnapshot appends an encoded BookSnapshot; see AppendBookDelta.
func AppendBookSnapshot(dst []byte, h *Header, s *BookSnapshot) ([]byte, error) {
	return appendBook(dst, TypeBookSnapshot, h, s.UpdateID, 0, s.VenueSeq, s.Bids, s.Asks)
}

func appendBook(dst []byte, t MsgType, h *Header, id0, id1, venueSeq uint64, bids, asks []Level) ([]byte, error) {
	n := len(bids) + len(asks)
	if n > MaxLevels {
		return dst, ErrTooLarge
	}
	pexp, qexp, uniform, err := commonExp(bids, asks)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	bodyLen := bookFixedLen + levelLen*n + bookTailLen
	dst, m := grow(dst, HeaderLen+bodyLen)
	putHeader(m, t, h, bodyLen)
	b := m[HeaderLen:]
	putU64(b, bookFirstID, id0)
	putU64(b, bookLastID, id1)
	binary.LittleEndian.PutUint16(b[bookNBids:], uint16(len(bids)))
	binary.LittleEndian.PutUint16(b[bookNAsks:], uint16(len(asks)))
	b[bookPExp] = byte(pexp)
	b[bookQExp] = byte(qexp)
	b[bookQExp+1], b[bookQExp+2] = 0, 0
	putU64(b, bookFixedLen+levelLen*n, venueSeq)
	if uniform { // the usual case: an exchange sends one scale per symbol
		putLevels(b[bookFixedLen:], bids)
		putLevels(b[bookFixedLen+levelLen*len(bids):], asks)
		return dst, nil
	}
	off := bookFixedLen
	for _, side := range [2][]Level{bids, asks} {
		for i := range side {
			p, ok1 := side[i].Price.Rescale(pexp)
			q, ok2 := side[i].Qty.Rescale(qexp)
			if !ok1 || !ok2 {
				return dst[:start], ErrScale
			}
			putU64(b, off, uint64(p.Mant))
			putU64(b, off+8, uint64(q.Mant))
			off += levelLen
		}
	}
	return dst, nil
}

// putLevels writes levels at the start of b, which has room for them.
func putLevels(b []byte, ls []Level) {
	for i := range ls {
		w := b[i*levelLen : i*levelLen+levelLen : i*levelLen+levelLen] // one bounds check per level
		binary.LittleEndian.PutUint64(w[0:8], uint64(ls[i].Price.Mant))
		binary.LittleEndian.PutUint64(w[8:16], uint64(ls[i].Qty.Mant))
	}
}

// commonExp returns the smallest price and quantity exponents among levels,
// and whether every level already has them. An empty book uses exponent 0.
func commonExp(bids, asks []Level) (pexp, qexp int8, uniform bool, err error) {
	switch {
	case len(bids) > 0:
		pexp, qexp = bids[0].Price.Exp, bids[0].Qty.Exp
	case len(asks) > 0:
		pexp, qexp = asks[0].Price.Exp, asks[0].Qty.Exp
	default:
		return 0, 0, true, nil
	}
	pmin, qmin := pexp, qexp
	uniform = true
	for _, side := range [2][]Level{bids, asks} {
		for i := range side {
			pe, qe := side[i].Price.Exp, side[i].Qty.Exp
			if pe != pexp || qe != qexp {
				uniform = false
				pmin, qmin = min(pmin, pe), min(qmin, qe)
			}
		}
	}
	if pmin < MinExp || qmin < MinExp {
		return 0, 0, false, ErrExponent
	}
	if !uniform { // the largest exponents must be in range too
		for _, side := range [2][]Level{bids, asks} {
			for i := range side {
				if side[i].Price.Exp > MaxExp || side[i].Qty.Exp > MaxExp {
					return 0, 0, false, ErrExponent
				}
			}
		}
	} else if pexp > MaxExp || qexp > MaxExp {
		return 0, 0, false, ErrExponent
	}
	return pmin, qmin, uniform, nil
}

// BookView reads a decoded BookDelta or BookSnapshot. Same lifetime rules as
// Message. Bid(i) and Ask(i) panic for i outside [0, NumBids()) and
// [0, NumAsks()), like slice indexing; counts are validated by Decode.
type BookView struct{ Message }

// AsBookDelta returns m as a BookDelta, or ErrWrongType.
func (m Message) AsBookDelta() (BookView, error) { return BookView{m}, m.as(TypeBookDelta) }

// AsBookSnapshot returns m as a BookSnapshot, or ErrWrongType.
func (m Message) AsBookSnapshot() (BookView, error) { return BookView{m}, m.as(TypeBookSnapshot) }

// FirstUpdateID is a delta's first exchange update id.
func (v BookView) FirstUpdateID() uint64 { return binary.LittleEndian.Uint64(v.body()[bookFirstID:]) }

// LastUpdateID is a delta's last exchange update id.
func (v BookView) LastUpdateID() uint64 { return binary.LittleEndian.Uint64(v.body()[bookLastID:]) }

// UpdateID is the exchange update id a snapshot is consistent with.
func (v BookView) UpdateID() uint64 { return v.FirstUpdateID() }

// VenueSeq is the venue's own sequence of the update (Bybit's "seq"): 0
// when it has none, or from an older feed whose body ends with the levels.
func (v BookView) VenueSeq() uint64 {
	b := v.body()
	if off := bookFixedLen + levelLen*(v.NumBids()+v.NumAsks()); len(b) >= off+8 {
		return binary.LittleEndian.Uint64(b[off:])
	}
	return 0
}

func (v BookView) NumBids() int   { return int(binary.LittleEndian.Uint16(v.body()[bookNBids:])) }
func (v BookView) NumAsks() int   { return int(binary.LittleEndian.Uint16(v.body()[bookNAsks:])) }
func (v BookView) PriceExp() int8 { return int8(v.body()[bookPExp]) }
func (v BookView) QtyExp() int8   { return int8(v.body()[bookQExp]) }

// Bid returns the i-th bid level.
func (v BookView) Bid(i int) Level {
	if uint(i) >= uint(v.NumBids()) {
		panic("proto: bid index out of range")
	}
	return v.level(i)
}

// Ask returns the i-th ask level.
func (v BookView) Ask(i int) Level {
	if uint(i) >= uint(v.NumAsks()) {
		panic("proto: ask index out of range")
	}
	return v.level(v.NumBids() + i)
}

func (v BookView) level(i int) Level {
	b := v.body()
	off := bookFixedLen + levelLen*i
	return Level{Price: getDec(b, off, b[bookPExp]), Qty: getDec(b, off+8, b[bookQExp])}
}

// ---- BBO ------------------------------------------------------------------

const (
	bboBidPrice = 0
	bboBidQty   = 8
	bboAskPrice = 16
	bboAskQty   = 24
	bboUpdateID = 32
	bboPExp     = 40
	bboQExp     = 41
	bboBodyLen  = 48
)

// BBOSize is the encoded size of a BBO message.
const BBOSize = HeaderLen + bboBodyLen

// BBO is the input to AppendBBO: the best bid and ask. Prices share one
// exponent on the wire and so do sizes (rescaled as for books).
type BBO struct {
	Bid, Ask Level
	UpdateID uint64 // exchange update id of the book this BBO reflects (0 = unknown)
}

// AppendBBO appends an encoded BBO.
func AppendBBO(dst []byte, h *Header, q *BBO) ([]byte, error) {
	if err := checkExp(q.Bid.Price, q.Bid.Qty, q.Ask.Price, q.Ask.Qty); err != nil {
		return dst, err
	}
	pexp, qexp := min(q.Bid.Price.Exp, q.Ask.Price.Exp), min(q.Bid.Qty.Exp, q.Ask.Qty.Exp)
	bp, ok1 := q.Bid.Price.Rescale(pexp)
	ap, ok2 := q.Ask.Price.Rescale(pexp)
	bq, ok3 := q.Bid.Qty.Rescale(qexp)
	aq, ok4 := q.Ask.Qty.Rescale(qexp)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return dst, ErrScale
	}
	dst, m := grow(dst, BBOSize)
	putHeader(m, TypeBBO, h, bboBodyLen)
	b := m[HeaderLen:]
	putU64(b, bboBidPrice, uint64(bp.Mant))
	putU64(b, bboBidQty, uint64(bq.Mant))
	putU64(b, bboAskPrice, uint64(ap.Mant))
	putU64(b, bboAskQty, uint64(aq.Mant))
	putU64(b, bboUpdateID, q.UpdateID)
	b[bboPExp] = byte(pexp)
	b[bboQExp] = byte(qexp)
	clear(b[bboQExp+1 : bboBodyLen])
	return dst, nil
}

// BBOView reads a decoded BBO. Same lifetime rules as Message.
type BBOView struct{ Message }

// AsBBO returns m as a BBO, or ErrWrongType.
func (m Message) AsBBO() (BBOView, error) { return BBOView{m}, m.as(TypeBBO) }

func (v BBOView) Bid() Level {
	b := v.body()
	return Level{Price: getDec(b, bboBidPrice, b[bboPExp]), Qty: getDec(b, bboBidQty, b[bboQExp])}
}

func (v BBOView) Ask() Level {
	b := v.body()
	return Level{Price: getDec(b, bboAskPrice, b[bboPExp]), Qty: getDec(b, bboAskQty, b[bboQExp])}
}

func (v BBOView) UpdateID() uint64 { return binary.LittleEndian.Uint64(v.body()[bboUpdateID:]) }

// ---- Status ---------------------------------------------------------------

// State is a venue connection's state in a Status message.
type State uint8

const (
	StateUnknown      State = 0
	StateConnecting   State = 1 // no usable connection yet, or reconnecting
	StateConnected    State = 2 // connected and receiving data
	StateDisconnected State = 3 // no connection; data is not flowing
	StateStale        State = 4 // connected, but no data for longer than the silence limit
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateStale:
		return "stale"
	}
	return "unknown"
}

const (
	statusState       = 0
	statusConns       = 2
	statusInstruments = 4
	statusInSync      = 6
	statusLastData    = 8
	statusMessages    = 16
	statusGaps        = 24 // appended fields: absent (read as 0) in older feeds' 24-byte bodies
	statusGapsPerMil  = 32
	statusBodyLen     = 40
	statusMinBody     = 24 // the first revision's fields
)

// StatusSize is the encoded size of a Status message.
const StatusSize = HeaderLen + statusBodyLen

// Status is the input to AppendStatus: a venue's health, published every
// second on the venue's health subject.
type Status struct {
	State       State
	Connections uint16 // open exchange connections for the venue
	Instruments uint16 // configured instruments
	InSync      uint16 // instruments whose book is in sync
	LastData    int64  // local receive time of the last exchange frame, ns (0 = never)
	Messages    uint64 // messages published for this venue since the feed started
	Gaps        uint64 // book continuity breaks (each a Reset and resync) since the feed started
	// GapsPerMillion is Gaps per million Messages, rounded down: a venue's
	// book integrity at a glance.
	GapsPerMillion uint32
}

// AppendStatus appends an encoded Status.
func AppendStatus(dst []byte, h *Header, s *Status) ([]byte, error) {
	dst, m := grow(dst, StatusSize)
	putHeader(m, TypeStatus, h, statusBodyLen)
	b := m[HeaderLen:]
	b[statusState] = byte(s.State)
	b[statusState+1] = 0
	binary.LittleEndian.PutUint16(b[statusConns:], s.Connections)
	binary.LittleEndian.PutUint16(b[statusInstruments:], s.Instruments)
	binary.LittleEndian.PutUint16(b[statusInSync:], s.InSync)
	putU64(b, statusLastData, uint64(s.LastData))
	putU64(b, statusMessages, s.Messages)
	putU64(b, statusGaps, s.Gaps)
	binary.LittleEndian.PutUint32(b[statusGapsPerMil:], s.GapsPerMillion)
	clear(b[statusGapsPerMil+4 : statusBodyLen]) // reserved
	return dst, nil
}

// StatusView reads a decoded Status. Same lifetime rules as Message.
type StatusView struct{ Message }

// AsStatus returns m as a Status, or ErrWrongType.
func (m Message) AsStatus() (StatusView, error) { return StatusView{m}, m.as(TypeStatus) }

func (v StatusView) State() State { return State(v.body()[statusState]) }
func (v StatusView) Connections() uint16 {
	return binary.LittleEndian.Uint16(v.body()[statusConns:])
}
func (v StatusView) Instruments() uint16 {
	return binary.LittleEndian.Uint16(v.body()[statusInstruments:])
}
func (v StatusView) InSync() uint16 { return binary.LittleEndian.Uint16(v.body()[statusInSync:]) }
func (v StatusView) LastData() int64 {
	return int64(binary.LittleEndian.Uint64(v.body()[statusLastData:]))
}
func (v StatusView) Messages() uint64 { return binary.LittleEndian.Uint64(v.body()[statusMessages:]) }

// Gaps and GapsPerMillion read 0 from an older feed's 24-byte body.
func (v StatusView) Gaps() uint64 {
	if b := v.body(); len(b) >= statusGaps+8 {
		return binary.LittleEndian.Uint64(b[statusGaps:])
	}
	return 0
}
func (v StatusView) GapsPerMillion() uint32 {
	if b := v.body(); len(b) >= statusGapsPerMil+4 {
		return binary.LittleEndian.Uint32(b[statusGapsPerMil:])
	}
	return 0
}

// ---- Reset ----------------------------------------------------------------

// ResetReason says why a book was invalidated.
type ResetReason uint8

const (
	ResetUnknown    ResetReason = 0
	ResetGap        ResetReason = 1 // the exchange's update ids were not continuous
	ResetDisconnect ResetReason = 2 // the connection carrying the book was lost
	ResetStale      ResetReason = 3 // no data within the silence limit
	ResetResync     ResetReason = 4 // a resync attempt failed; another follows
	ResetShutdown   ResetReason = 5 // the feed is stopping
)

func (r ResetReason) String() string {
	switch r {
	case ResetGap:
		return "gap"
	case ResetDisconnect:
		return "disconnect"
	case ResetStale:
		return "stale"
	case ResetResync:
		return "resync"
	case ResetShutdown:
		return "shutdown"
	}
	return "unknown"
}

const (
	resetReason  = 0
	resetLastID  = 8
	resetBodyLen = 16
)

// ResetSize is the encoded size of a Reset message.
const ResetSize = HeaderLen + resetBodyLen

// Reset is the input to AppendReset: the instrument's book is invalid from
// this message until the next BookSnapshot on the same subject.
type Reset struct {
	Reason       ResetReason
	LastUpdateID uint64 // last exchange update id applied before the reset (0 = none)
}

// AppendReset appends an encoded Reset.
func AppendReset(dst []byte, h *Header, r *Reset) ([]byte, error) {
	dst, m := grow(dst, ResetSize)
	putHeader(m, TypeReset, h, resetBodyLen)
	b := m[HeaderLen:]
	b[resetReason] = byte(r.Reason)
	clear(b[resetReason+1 : resetLastID])
	putU64(b, resetLastID, r.LastUpdateID)
	return dst, nil
}

// ResetView reads a decoded Reset. Same lifetime rules as Message.
type ResetView struct{ Message }

// AsReset returns m as a Reset, or ErrWrongType.
func (m Message) AsReset() (ResetView, error) { return ResetView{m}, m.as(TypeReset) }

func (v ResetView) Reason() ResetReason  { return ResetReason(v.body()[resetReason]) }
func (v ResetView) LastUpdateID() uint64 { return binary.LittleEndian.Uint64(v.body()[resetLastID:]) }
