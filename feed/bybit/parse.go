// Package bybit is the feed's adapter for Bybit v5 public market data (spot
// and linear perpetuals). This file is its parser: publicTrade batches,
// orderbook snapshots and deltas, and the replies to subscribe and ping,
// turned into Events without allocating in steady state. The connection
// itself is feed/session's; the scanner is feed/jsonscan's.
package bybit

import (
	"bytes"
	"encoding/binary"
	"errors"

	"github.com/paddockhq/paddock/feed/jsonscan"
	"github.com/paddockhq/paddock/proto"
)

// Parse errors are sentinels, so that a bad frame costs no allocation; the
// feed counts them by kind.
var (
	ErrSyntax       = jsonscan.ErrSyntax
	ErrTrailing     = errors.New("bybit: data after the JSON value")
	ErrEscape       = jsonscan.ErrEscape
	ErrField        = errors.New("bybit: required field missing or of the wrong type")
	ErrInteger      = errors.New("bybit: invalid or overflowing integer")
	ErrUnknownEvent = errors.New("bybit: unknown message")
	ErrTooManyTrade = errors.New("bybit: more trades in one message than the documented 1024")
	ErrLevels       = jsonscan.ErrLevels
)

// MaxTradesPerMessage is Bybit's documented bound on one publicTrade push.
const MaxTradesPerMessage = 1024

// Kind is what a frame turned out to be.
type Kind uint8

const (
	KindUnknown  Kind = iota
	KindTrades        // publicTrade.<SYMBOL>: one or more trades
	KindBook          // orderbook.<depth>.<SYMBOL>: a snapshot or a delta
	KindResponse      // a reply to subscribe, unsubscribe or ping (Op, Success, RetMsg)
	KindIgnored       // a topic the adapter does not handle (tickers, kline, ...)
)

func (k Kind) String() string {
	return [...]string{"unknown", "trades", "orderbook", "response", "ignored"}[k]
}

// Trade is one trade of a publicTrade push. ID aliases the frame.
type Trade struct {
	Time       int64 // "T", ns since the epoch
	Price, Qty proto.Decimal
	Sell       bool   // "S" is "Sell": the taker sold
	ID         []byte // "i": a decimal string on some products, a UUID on others
	Seq        uint64 // "seq" (cross sequence), 0 when absent
	Block      bool   // "BT": a block trade
	sym        jsonscan.Value
}

// symbol is the trade's own "s", or nil when it has none.
func (t *Trade) symbol(frame []byte) []byte {
	if t.sym.Kind == 0 {
		return nil
	}
	return frame[t.sym.Start:t.sym.End]
}

// Event is one parsed frame. Byte slices alias the frame, and Trades, Bids
// and Asks are the Parser's reused storage: an Event is valid only until the
// next Parse on the same Parser and while the frame is unchanged.
type Event struct {
	Kind      Kind
	Topic     []byte
	Symbol    []byte
	Time      int64 // "ts": when Bybit sent it, ns since the epoch
	MatchTime int64 // "cts": the matching engine's time (orderbook), ns; 0 if absent

	Trades []Trade

	// Book: Snapshot is "type":"snapshot" (else a delta); UpdateID "u",
	// Seq "seq".
	Snapshot   bool
	UpdateID   uint64
	Seq        uint64
	Bids, Asks []proto.Level

	// Response: "op", "success" (true when absent, as on a linear pong),
	// "ret_msg", "req_id".
	Op      []byte
	Success bool
	RetMsg  []byte
	ReqID   []byte
}

// Parser turns Bybit v5 frames into Events. Not safe for concurrent use;
// each slot owns one.
type Parser struct {
	general bool // tests: parse every trade on the general path
	ev      Event
	frame   []byte
	trades  []Trade
	bids    []proto.Level
	asks    []proto.Level
}

// top-level and nested values the parser keeps, as offsets into the frame.
type fields struct {
	topic, typ, op, retMsg, reqID, symbol jsonscan.Value
	data                                  jsonscan.Value // "data" seen before "topic"
	ts, cts, u, seq                       jsonscan.Value
	success                               byte // 't', 'f' or 0
	dataKind                              byte // '[' trades, '{' book, 0 none
	bids, asks                            bool
}

// Parse parses one frame. See Event for the lifetime of the result.
func (p *Parser) Parse(frame []byte) (*Event, error) {
	if len(frame) > 1<<31-1 {
		return nil, ErrSyntax
	}
	p.frame = frame
	p.trades, p.bids, p.asks = p.trades[:0], p.bids[:0], p.asks[:0]
	var f fields
	sc := jsonscan.Scanner{B: frame}
	if err := p.top(&sc, &f); err != nil {
		return nil, err
	}
	sc.WS()
	if sc.I != len(sc.B) {
		return nil, ErrTrailing
	}
	return p.interpret(&f)
}

// top parses the message object.
func (p *Parser) top(sc *jsonscan.Scanner, f *fields) error {
	return p.object(sc, 0, func(key []byte, c byte) (bool, error) {
		switch string(key) {
		case "topic":
			return true, p.str(sc, &f.topic)
		case "type":
			return true, p.str(sc, &f.typ)
		case "op":
			return true, p.str(sc, &f.op)
		case "ret_msg":
			return true, p.str(sc, &f.retMsg)
		case "req_id":
			return true, p.str(sc, &f.reqID)
		case "ts":
			return true, p.num(sc, &f.ts)
		case "cts":
			return true, p.num(sc, &f.cts)
		case "success":
			return true, p.boolean(sc, &f.success)
		case "data":
			if f.dataKind != 0 || f.data.Kind != 0 {
				return true, ErrField // two payloads
			}
			if f.topic.Kind == 0 {
				// Bybit sends the topic first; should it not, the payload
				// is kept and parsed once the topic is known.
				return true, sc.ScanValue(1, &f.data)
			}
			return true, p.payload(sc, f, c)
		}
		return false, nil
	})
}

// payload parses "data" as the topic says: trades, a book, or (another
// topic's) skipped.
func (p *Parser) payload(sc *jsonscan.Scanner, f *fields, c byte) error {
	topic := p.frame[f.topic.Start:f.topic.End]
	switch {
	case c == '[' && bytes.HasPrefix(topic, []byte("publicTrade.")):
		f.dataKind = '['
		return p.tradeArray(sc)
	case c == '{' && bytes.HasPrefix(topic, []byte("orderbook.")):
		f.dataKind = '{'
		return p.book(sc, f)
	}
	return sc.Skip(1)
}

// object walks a JSON object, calling visit for every key with the first
// byte of its value; visit consumes the value and returns true, or returns
// false to have it skipped.
func (p *Parser) object(sc *jsonscan.Scanner, depth int, visit func(key []byte, c byte) (bool, error)) error {
	sc.WS()
	if !sc.Eat('{') {
		return ErrSyntax
	}
	sc.WS()
	if sc.Eat('}') {
		return nil
	}
	for {
		key, err := readKey(sc)
		if err != nil {
			return err
		}
		if sc.I < len(sc.B) && sc.B[sc.I] <= ' ' {
			sc.WS()
		}
		done, err := visit(key, sc.Peek())
		if err != nil {
			return err
		}
		if !done {
			if err := sc.Skip(depth + 1); err != nil {
				return err
			}
		}
		if sc.I < len(sc.B) && sc.B[sc.I] <= ' ' {
			sc.WS()
		}
		if sc.I < len(sc.B) {
			switch sc.B[sc.I] {
			case ',':
				sc.I++
				continue
			case '}':
				sc.I++
				return nil
			}
		}
		return ErrSyntax
	}
}

// readKey reads `"key":`. Bybit's frames are compact with plain keys, which
// take the fast path; anything else goes through the general scanner.
func readKey(sc *jsonscan.Scanner) ([]byte, error) {
	b, i := sc.B, sc.I
	// One-character keys, most of Bybit's: "T":
	if i+4 <= len(b) && binary.LittleEndian.Uint32(b[i:])&0xFFFF00FF == 0x3A220022 && jsonscan.Plain[b[i+1]] {
		sc.I = i + 4
		return b[i+1 : i+2], nil
	}
	if i < len(b) && b[i] == '"' {
		j := jsonscan.PlainEnd(b, i+1)
		if j+1 < len(b) && b[j] == '"' && b[j+1] == ':' {
			sc.I = j + 2
			return b[i+1 : j], nil
		}
	}
	sc.WS()
	key, err := sc.Str()
	if err != nil {
		return nil, err
	}
	sc.WS()
	if !sc.Eat(':') {
		return nil, ErrSyntax
	}
	return key, nil
}

// tradeArray parses publicTrade's data: an array of trade objects.
func (p *Parser) tradeArray(sc *jsonscan.Scanner) error {
	if !sc.Eat('[') {
		return ErrSyntax
	}
	sc.WS()
	if sc.Eat(']') {
		return nil
	}
	for {
		if len(p.trades) == MaxTradesPerMessage {
			return ErrTooManyTrade
		}
		if next, ok := p.compactTradeIf(sc.B, sc.I); ok {
			sc.I = next
		} else if err := p.trade(sc); err != nil {
			return err
		}
		sc.WS()
		switch {
		case sc.Eat(','):
		case sc.Eat(']'):
			return nil
		default:
			return ErrSyntax
		}
	}
}

func (p *Parser) compactTradeIf(b []byte, i int) (int, bool) {
	if p.general {
		return 0, false
	}
	return p.compactTrade(b, i)
}

// compactTrade parses a trade object in the compact form and key order
// Bybit sends, {"T":..,"s":"..","S":"..","v":"..","p":"..","L":"..","i":"..",
// "BT":..[,"seq":..]}, as a template: no key is looked up. Anything else
// (other order, whitespace, escapes, extra keys, a bad value) reports false
// and the general path (trade) parses it and produces the precise error.
func (p *Parser) compactTrade(b []byte, i int) (next int, ok bool) {
	lit := func(s string) bool {
		if i+len(s) <= len(b) && string(b[i:i+len(s)]) == s {
			i += len(s)
			return true
		}
		return false
	}
	digits := func() (uint64, bool) {
		start := i
		var n uint64
		for i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 19 {
			n = n*10 + uint64(b[i]-'0')
			i++
		}
		// JSON allows no leading zero; the general path refuses it too.
		return n, i > start && (i >= len(b) || b[i] < '0' || b[i] > '9') && (b[start] != '0' || i-start == 1)
	}
	plain := func() (int, int, bool) { // after the opening quote; ends past the closing one
		start := i
		j := jsonscan.PlainEnd(b, i)
		if j >= len(b) || b[j] != '"' {
			return 0, 0, false
		}
		i = j + 1
		return start, j, true
	}
	var tr Trade
	if !lit(`{"T":`) {
		return 0, false
	}
	ms, ok := digits()
	if !ok || ms > 1<<63/1_000_000 || !lit(`,"s":"`) {
		return 0, false
	}
	s0, s1, ok := plain()
	if !ok {
		return 0, false
	}
	tr.sym = jsonscan.Value{Start: int32(s0), End: int32(s1), Kind: '"'}
	switch {
	case lit(`,"S":"Buy","v":"`):
	case lit(`,"S":"Sell","v":"`):
		tr.Sell = true
	default:
		return 0, false
	}
	v0, v1, ok := plain()
	if !ok || !lit(`,"p":"`) {
		return 0, false
	}
	p0, p1, ok := plain()
	if !ok || !lit(`,"L":"`) {
		return 0, false
	}
	if _, _, ok = plain(); !ok || !lit(`,"i":"`) {
		return 0, false
	}
	i0, i1, ok := plain()
	if !ok || i1 == i0 {
		return 0, false
	}
	switch {
	case lit(`,"BT":false`):
	case lit(`,"BT":true`):
		tr.Block = true
	default:
		return 0, false
	}
	if lit(`,"seq":`) {
		if tr.Seq, ok = digits(); !ok {
			return 0, false
		}
	}
	if !lit(`}`) {
		return 0, false
	}
	var err error
	if tr.Price, err = proto.ParseUDecimal(b[p0:p1]); err != nil {
		return 0, false
	}
	if tr.Qty, err = proto.ParseUDecimal(b[v0:v1]); err != nil {
		return 0, false
	}
	tr.Time, tr.ID = int64(ms)*1_000_000, b[i0:i1]
	p.trades = append(p.trades, tr)
	return i, true
}

// trade parses one trade object and appends it. It is the per-trade hot
// path (up to 1024 per push), so it walks the object itself rather than
// through object's callback.
func (p *Parser) trade(sc *jsonscan.Scanner) error {
	var t, price, qty, side, id, seq, symbol jsonscan.Value
	var block byte
	if sc.I < len(sc.B) && sc.B[sc.I] <= ' ' {
		sc.WS()
	}
	if !sc.Eat('{') {
		return ErrSyntax
	}
	if sc.I < len(sc.B) && sc.B[sc.I] <= ' ' {
		sc.WS()
	}
	if !sc.Eat('}') {
		for {
			// The one-character keys inline (readKey has them too).
			var key []byte
			var err error
			b, i := sc.B, sc.I
			switch {
			case i+4 <= len(b) && binary.LittleEndian.Uint32(b[i:])&0xFFFF00FF == 0x3A220022 && jsonscan.Plain[b[i+1]]:
				key, sc.I = b[i+1:i+2], i+4
			case i+5 <= len(b) && string(b[i:i+5]) == `"BT":`:
				key, sc.I = b[i+1:i+3], i+5
			case i+6 <= len(b) && string(b[i:i+6]) == `"seq":`:
				key, sc.I = b[i+1:i+4], i+6
			default:
				if key, err = readKey(sc); err != nil {
					return err
				}
			}
			if sc.I < len(sc.B) && sc.B[sc.I] <= ' ' {
				sc.WS()
			}
			switch {
			case len(key) == 1:
				switch key[0] {
				case 'T':
					err = p.num(sc, &t)
				case 'p':
					err = p.str(sc, &price)
				case 'v':
					err = p.str(sc, &qty)
				case 'S':
					err = p.str(sc, &side)
				case 'i':
					err = p.str(sc, &id)
				case 's':
					err = p.str(sc, &symbol)
				case 'L':
					err = skipPlain(sc) // tick direction: not carried
				default:
					err = sc.Skip(3)
				}
			case string(key) == "seq":
				err = p.num(sc, &seq)
			case string(key) == "BT":
				err = p.boolean(sc, &block)
			default:
				err = sc.Skip(3)
			}
			if err != nil {
				return err
			}
			if sc.I < len(sc.B) && sc.B[sc.I] <= ' ' {
				sc.WS()
			}
			if sc.I >= len(sc.B) {
				return ErrSyntax
			}
			if c := sc.B[sc.I]; c == ',' {
				sc.I++
				continue
			} else if c == '}' {
				sc.I++
				break
			}
			return ErrSyntax
		}
	}
	var err error
	if t.Kind == 0 || price.Kind == 0 || qty.Kind == 0 || side.Kind == 0 || id.Kind == 0 {
		return ErrField
	}
	var tr Trade
	if tr.Time, err = millis(&t); err != nil {
		return err
	}
	if tr.Price, err = p.decimal(&price); err != nil {
		return err
	}
	if tr.Qty, err = p.decimal(&qty); err != nil {
		return err
	}
	switch s := p.frame[side.Start:side.End]; string(s) {
	case "Buy":
	case "Sell":
		tr.Sell = true
	default:
		return ErrField
	}
	tr.ID = p.frame[id.Start:id.End]
	if len(tr.ID) == 0 {
		return ErrField
	}
	if seq.Kind != 0 {
		if tr.Seq, err = uintOf(&seq); err != nil {
			return err
		}
	}
	tr.Block, tr.sym = block == 't', symbol
	p.trades = append(p.trades, tr)
	return nil
}

// book parses an orderbook payload: {"s":..,"b":[..],"a":[..],"u":..,"seq":..}.
func (p *Parser) book(sc *jsonscan.Scanner, f *fields) error {
	return p.object(sc, 1, func(key []byte, c byte) (bool, error) {
		var err error
		switch string(key) {
		case "s":
			return true, p.str(sc, &f.symbol)
		case "u":
			return true, p.num(sc, &f.u)
		case "seq":
			return true, p.num(sc, &f.seq)
		case "b":
			if f.bids || c != '[' {
				return true, ErrField
			}
			p.bids, err = jsonscan.Levels(sc, p.bids)
			f.bids = true
			return true, err
		case "a":
			if f.asks || c != '[' {
				return true, ErrField
			}
			p.asks, err = jsonscan.Levels(sc, p.asks)
			f.asks = true
			return true, err
		}
		return false, nil
	})
}

func (p *Parser) interpret(f *fields) (*Event, error) {
	ev := &p.ev
	*ev = Event{Trades: p.trades, Bids: p.bids, Asks: p.asks}
	var err error
	if f.ts.Kind != 0 {
		if ev.Time, err = millis(&f.ts); err != nil {
			return nil, err
		}
	}
	if f.cts.Kind != 0 {
		if ev.MatchTime, err = millis(&f.cts); err != nil {
			return nil, err
		}
	}
	if f.topic.Kind == 0 {
		if f.op.Kind == 0 {
			return nil, ErrUnknownEvent
		}
		// A reply: {"success":..,"ret_msg":..,"op":..,"req_id":..}, or a
		// linear pong {"op":"pong","args":[..]}, which has no "success".
		ev.Kind = KindResponse
		ev.Op = p.frame[f.op.Start:f.op.End]
		ev.Success = f.success != 'f'
		if f.retMsg.Kind != 0 {
			ev.RetMsg = p.frame[f.retMsg.Start:f.retMsg.End]
		}
		if f.reqID.Kind != 0 {
			ev.ReqID = p.frame[f.reqID.Start:f.reqID.End]
		}
		return ev, nil
	}
	ev.Topic = p.frame[f.topic.Start:f.topic.End]
	if f.data.Kind != 0 {
		sc := jsonscan.Scanner{B: p.frame[:f.data.End], I: int(f.data.Start)}
		if err := p.payload(&sc, f, p.frame[f.data.Start]); err != nil {
			return nil, err
		}
		ev.Trades, ev.Bids, ev.Asks = p.trades, p.bids, p.asks
	}
	switch {
	case bytes.HasPrefix(ev.Topic, []byte("publicTrade.")):
		if f.dataKind != '[' || len(p.trades) == 0 {
			return nil, ErrField
		}
		ev.Kind = KindTrades
		ev.Symbol = ev.Topic[len("publicTrade."):]
		if len(ev.Symbol) == 0 {
			return nil, ErrField // "publicTrade." names no instrument
		}
		for i := range p.trades {
			if s := p.trades[i].symbol(p.frame); s != nil && !bytes.Equal(s, ev.Symbol) {
				return nil, ErrField // a trade of another symbol under this topic
			}
		}
		return ev, nil
	case bytes.HasPrefix(ev.Topic, []byte("orderbook.")):
		if f.dataKind != '{' || f.symbol.Kind == 0 || f.u.Kind == 0 || !f.bids || !f.asks || f.typ.Kind == 0 {
			return nil, ErrField
		}
		ev.Kind = KindBook
		ev.Symbol = p.frame[f.symbol.Start:f.symbol.End]
		if len(ev.Symbol) == 0 {
			return nil, ErrField
		}
		if i := bytes.LastIndexByte(ev.Topic, '.'); !bytes.Equal(ev.Topic[i+1:], ev.Symbol) {
			return nil, ErrField // the payload's symbol must be the topic's
		}
		switch string(p.frame[f.typ.Start:f.typ.End]) {
		case "snapshot":
			ev.Snapshot = true
		case "delta":
		default:
			return nil, ErrField
		}
		if ev.UpdateID, err = uintOf(&f.u); err != nil {
			return nil, err
		}
		if f.seq.Kind != 0 {
			if ev.Seq, err = uintOf(&f.seq); err != nil {
				return nil, err
			}
		}
		return ev, nil
	}
	ev.Kind = KindIgnored
	return ev, nil
}

// str reads a string value that needs no unescaping; plain strings (all of
// Bybit's) are scanned inline.
func (p *Parser) str(sc *jsonscan.Scanner, v *jsonscan.Value) error {
	b, i := sc.B, sc.I
	if i >= len(b) || b[i] != '"' {
		return ErrField
	}
	j := jsonscan.PlainEnd(b, i+1)
	if j < len(b) && b[j] == '"' {
		v.Start, v.End, v.Kind = int32(i+1), int32(j), '"'
		sc.I = j + 1
		return nil
	}
	if err := sc.ScanValue(3, v); err != nil {
		return err
	}
	if v.Kind == '\\' {
		return ErrEscape
	}
	return nil
}

// skipPlain skips a string value without escapes or control characters
// (one eight-bytes-at-a-time pass); anything else goes through the scanner.
func skipPlain(sc *jsonscan.Scanner) error {
	b, i := sc.B, sc.I
	if i < len(b) && b[i] == '"' {
		if j := jsonscan.PlainEnd(b, i+1); j < len(b) && b[j] == '"' {
			sc.I = j + 1
			return nil
		}
	}
	return sc.Skip(3)
}

// num reads a non-negative integer value.
func (p *Parser) num(sc *jsonscan.Scanner, v *jsonscan.Value) error {
	if c := sc.Peek(); c < '0' || c > '9' {
		return ErrField
	}
	return sc.NumberValue(v)
}

func (p *Parser) boolean(sc *jsonscan.Scanner, b *byte) error {
	switch sc.Peek() {
	case 't':
		*b = 't'
		return sc.Literal("true")
	case 'f':
		*b = 'f'
		return sc.Literal("false")
	}
	return ErrField
}

func (p *Parser) decimal(v *jsonscan.Value) (proto.Decimal, error) {
	return proto.ParseUDecimal(p.frame[v.Start:v.End])
}

func uintOf(v *jsonscan.Value) (uint64, error) {
	if v.Kind != '0' {
		return 0, ErrInteger
	}
	return v.Num, nil
}

// millis converts a millisecond timestamp to ns since the epoch.
func millis(v *jsonscan.Value) (int64, error) {
	n, err := uintOf(v)
	if err != nil {
		return 0, err
	}
	if n > 1<<63/1_000_000 {
		return 0, ErrInteger
	}
	return int64(n) * 1_000_000, nil
}
