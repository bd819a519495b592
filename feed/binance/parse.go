package binance

import (
	"bytes"
	"errors"

	"github.com/paddockhq/paddock/proto"
)

// Parse errors. They are sentinels so that a bad frame costs no allocation;
// the feed counts them by kind and logs a rate-limited sample.
var (
	ErrSyntax       = errors.New("binance: malformed JSON")
	ErrTrailing     = errors.New("binance: data after the JSON value")
	ErrNesting      = errors.New("binance: JSON nested too deeply")
	ErrEscape       = errors.New("binance: escaped string where a plain one is expected")
	ErrField        = errors.New("binance: required field missing or of the wrong type")
	ErrInteger      = errors.New("binance: invalid or overflowing integer")
	ErrUnknownEvent = errors.New("binance: unknown event type")
	ErrLevels       = errors.New("binance: malformed price level")
	ErrTooManyLevel = errors.New("binance: more price levels than one message can carry")
)

// maxDepth bounds JSON nesting in values the parser skips (klines and
// anything new Binance adds); Binance's own frames nest at most 4 deep.
const maxDepth = 32

// Kind is what a frame turned out to be.
type Kind uint8

const (
	KindUnknown    Kind = iota
	KindTrade           // <symbol>@trade
	KindAggTrade        // <symbol>@aggTrade
	KindDepth           // <symbol>@depth@100ms diff
	KindBookTicker      // <symbol>@bookTicker (spot frames have no "e")
	KindShutdown        // serverShutdown: the server is about to close the connection
	KindResponse        // {"result":...,"id":N}: reply to SUBSCRIBE and other methods
	KindError           // {"error":{...},"id":N}
	KindSnapshot        // REST depth snapshot {"lastUpdateId":...,"bids":...,"asks":...}
)

func (k Kind) String() string {
	return [...]string{"unknown", "trade", "aggTrade", "depthUpdate", "bookTicker", "serverShutdown", "response", "error", "snapshot"}[k]
}

// Event is one parsed frame. Byte slices alias the frame, and Bids/Asks are
// the Parser's reused storage: an Event is valid only until the next Parse
// on the same Parser and while the frame is unchanged.
type Event struct {
	Kind      Kind
	Stream    []byte // combined-stream name, if the frame had an envelope
	Symbol    []byte // "s", upper case as Binance sends it
	EventTime int64  // "E", ns since the epoch (0 if absent)
	TradeTime int64  // "T", ns since the epoch (0 if absent)

	// Trade and AggTrade. TradeID is "t" for trades and "a" for aggTrades.
	TradeID    uint64
	Price, Qty proto.Decimal
	BuyerMaker bool // "m": the buyer was the maker, so the seller was the aggressor

	// Depth: FirstID "U", LastID "u", PrevID "pu" (futures only, HasPrev).
	// Snapshot: LastID is "lastUpdateId".
	FirstID, LastID, PrevID uint64
	HasPrev                 bool
	Bids, Asks              []proto.Level

	// BookTicker: UpdateID "u" and the best levels.
	UpdateID uint64
	Bid, Ask proto.Level

	// Response and Error: the request id; Error also keeps the raw object.
	ID       uint64
	ErrorRaw []byte
}

// Parser turns Binance frames into Events without allocating once its level
// slices have grown to the largest frame seen. Not safe for concurrent use;
// each connection reader owns one.
type Parser struct {
	ev         Event
	f          fields
	bids, asks []proto.Level
}

// fields holds the raw values of the keys the parser knows, aliasing the
// frame. Strings keep their quotes so their type can be checked.
type fields struct {
	stream, data, result, id, errObj             []byte
	e, E, T, s, t, p, q, m, a, U, u, pu, b, B, A []byte
	lastUpdateID                                 []byte
	bidsParsed, asksParsed                       bool // "b"/"bids" and "a"/"asks" were level arrays, parsed inline
}

// Parse parses one frame. See Event for the lifetime of the result.
func (p *Parser) Parse(frame []byte) (*Event, error) {
	p.f = fields{}
	p.bids, p.asks = p.bids[:0], p.asks[:0]
	sc := scanner{b: frame}
	if err := p.object(&sc, 0); err != nil {
		return nil, err
	}
	sc.ws()
	if sc.i != len(sc.b) {
		return nil, ErrTrailing
	}
	if data := p.f.data; data != nil {
		stream := p.f.stream
		p.f = fields{}
		sc = scanner{b: data}
		if err := p.object(&sc, 0); err != nil {
			return nil, err
		}
		p.f.stream = stream
	}
	return p.interpret()
}

func (p *Parser) interpret() (*Event, error) {
	f := &p.f
	ev := &p.ev
	*ev = Event{Bids: p.bids, Asks: p.asks}
	if f.stream != nil {
		s, err := str(f.stream)
		if err != nil {
			return nil, err
		}
		ev.Stream = s
	}
	var err error
	if f.E != nil {
		if ev.EventTime, err = millis(f.E); err != nil {
			return nil, err
		}
	}
	if f.T != nil {
		if ev.TradeTime, err = millis(f.T); err != nil {
			return nil, err
		}
	}
	var kind []byte
	if f.e != nil {
		if kind, err = str(f.e); err != nil {
			return nil, err
		}
	}
	switch string(kind) {
	case "trade":
		ev.Kind = KindTrade
		return ev, p.trade(f.t)
	case "aggTrade":
		ev.Kind = KindAggTrade
		return ev, p.trade(f.a)
	case "depthUpdate":
		ev.Kind = KindDepth
		return ev, p.depth()
	case "bookTicker":
		ev.Kind = KindBookTicker
		return ev, p.bookTicker()
	case "serverShutdown":
		ev.Kind = KindShutdown
		return ev, nil
	case "":
	default:
		return nil, ErrUnknownEvent
	}
	// No "e": a method response, a REST snapshot, or a spot bookTicker.
	switch {
	case f.id != nil && f.errObj != nil:
		ev.Kind = KindError
		ev.ErrorRaw = f.errObj
		ev.ID, _ = uinteger(f.id) // a null id is fine on errors
		return ev, nil
	case f.id != nil && f.result != nil:
		ev.Kind = KindResponse
		if ev.ID, err = uinteger(f.id); err != nil {
			return nil, err
		}
		return ev, nil
	case f.lastUpdateID != nil:
		ev.Kind = KindSnapshot
		if !f.bidsParsed || !f.asksParsed {
			return nil, ErrField
		}
		if ev.LastID, err = uinteger(f.lastUpdateID); err != nil {
			return nil, err
		}
		ev.Bids, ev.Asks = p.bids, p.asks
		return ev, nil
	case f.u != nil && f.B != nil && f.A != nil:
		ev.Kind = KindBookTicker
		return ev, p.bookTicker()
	}
	return nil, ErrUnknownEvent
}

func (p *Parser) trade(id []byte) error {
	f, ev := &p.f, &p.ev
	if f.s == nil || id == nil || f.p == nil || f.q == nil || f.m == nil {
		return ErrField
	}
	var err error
	if ev.Symbol, err = str(f.s); err != nil {
		return err
	}
	if ev.TradeID, err = uinteger(id); err != nil {
		return err
	}
	if ev.Price, err = decimal(f.p); err != nil {
		return err
	}
	if ev.Qty, err = decimal(f.q); err != nil {
		return err
	}
	switch string(f.m) {
	case "true":
		ev.BuyerMaker = true
	case "false":
	default:
		return ErrField
	}
	return nil
}

func (p *Parser) depth() error {
	f, ev := &p.f, &p.ev
	if f.s == nil || f.U == nil || f.u == nil || !f.bidsParsed || !f.asksParsed {
		return ErrField
	}
	var err error
	if ev.Symbol, err = str(f.s); err != nil {
		return err
	}
	if ev.FirstID, err = uinteger(f.U); err != nil {
		return err
	}
	if ev.LastID, err = uinteger(f.u); err != nil {
		return err
	}
	if ev.FirstID > ev.LastID {
		return ErrField
	}
	if f.pu != nil {
		// Futures send pu; a value of -1 never occurs in practice, but keep
		// the parse strict rather than guess.
		if ev.PrevID, err = uinteger(f.pu); err != nil {
			return err
		}
		ev.HasPrev = true
	}
	ev.Bids, ev.Asks = p.bids, p.asks
	return nil
}

func (p *Parser) bookTicker() error {
	f, ev := &p.f, &p.ev
	if f.s == nil || f.u == nil || f.b == nil || f.B == nil || f.a == nil || f.A == nil || f.bidsParsed || f.asksParsed {
		return ErrField
	}
	var err error
	if ev.Symbol, err = str(f.s); err != nil {
		return err
	}
	if ev.UpdateID, err = uinteger(f.u); err != nil {
		return err
	}
	for _, x := range [...]struct {
		raw []byte
		dst *proto.Decimal
	}{{f.b, &ev.Bid.Price}, {f.B, &ev.Bid.Qty}, {f.a, &ev.Ask.Price}, {f.A, &ev.Ask.Qty}} {
		if *x.dst, err = decimal(x.raw); err != nil {
			return err
		}
	}
	return nil
}

// object parses a JSON object at sc, recording known keys in p.f and parsing
// level arrays inline.
func (p *Parser) object(sc *scanner, depth int) error {
	sc.ws()
	if !sc.eat('{') {
		return ErrSyntax
	}
	sc.ws()
	if sc.eat('}') {
		return nil
	}
	for {
		sc.ws()
		key, err := sc.str()
		if err != nil {
			return err
		}
		sc.ws()
		if !sc.eat(':') {
			return ErrSyntax
		}
		sc.ws()
		// Level arrays are parsed in place rather than skipped and parsed again.
		if sc.peek() == '[' {
			switch string(key) {
			case "b", "bids":
				if p.f.bidsParsed {
					return ErrField // a duplicate key would mix two level lists
				}
				if p.bids, err = levels(sc, p.bids); err != nil {
					return err
				}
				p.f.bidsParsed = true
				goto next
			case "a", "asks":
				if p.f.asksParsed {
					return ErrField
				}
				if p.asks, err = levels(sc, p.asks); err != nil {
					return err
				}
				p.f.asksParsed = true
				goto next
			}
		}
		{
			start := sc.i
			if err := sc.skip(depth + 1); err != nil {
				return err
			}
			p.f.set(key, sc.b[start:sc.i])
		}
	next:
		sc.ws()
		if sc.eat(',') {
			continue
		}
		if sc.eat('}') {
			return nil
		}
		return ErrSyntax
	}
}

func (f *fields) set(key, v []byte) {
	switch string(key) {
	case "stream":
		f.stream = v
	case "data":
		f.data = v
	case "result":
		f.result = v
	case "id":
		f.id = v
	case "error":
		f.errObj = v
	case "e":
		f.e = v
	case "E":
		f.E = v
	case "T":
		f.T = v
	case "s":
		f.s = v
	case "t":
		f.t = v
	case "p":
		f.p = v
	case "q":
		f.q = v
	case "m":
		f.m = v
	case "a":
		f.a = v
	case "U":
		f.U = v
	case "u":
		f.u = v
	case "pu":
		f.pu = v
	case "b":
		f.b = v
	case "B":
		f.B = v
	case "A":
		f.A = v
	case "lastUpdateId":
		f.lastUpdateID = v
	}
}

// levels parses [["price","qty"],...] and appends to dst.
func levels(sc *scanner, dst []proto.Level) ([]proto.Level, error) {
	if !sc.eat('[') {
		return dst, ErrLevels
	}
	sc.ws()
	if sc.eat(']') {
		return dst, nil
	}
	for {
		sc.ws()
		if !sc.eat('[') {
			return dst, ErrLevels
		}
		sc.ws()
		ps, err := sc.str()
		if err != nil {
			return dst, err
		}
		sc.ws()
		if !sc.eat(',') {
			return dst, ErrLevels
		}
		sc.ws()
		qs, err := sc.str()
		if err != nil {
			return dst, err
		}
		sc.ws()
		if !sc.eat(']') {
			return dst, ErrLevels
		}
		price, err := proto.ParseUDecimal(ps)
		if err != nil {
			return dst, err
		}
		qty, err := proto.ParseUDecimal(qs)
		if err != nil {
			return dst, err
		}
		if len(dst) >= proto.MaxLevels {
			return dst, ErrTooManyLevel
		}
		dst = append(dst, proto.Level{Price: price, Qty: qty})
		sc.ws()
		if sc.eat(',') {
			continue
		}
		if sc.eat(']') {
			return dst, nil
		}
		return dst, ErrLevels
	}
}

// str returns the content of a raw JSON string value that has no escapes.
func str(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, ErrField
	}
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, ErrEscape
	}
	return s, nil
}

// decimal parses a raw JSON string holding an unsigned decimal.
func decimal(raw []byte) (proto.Decimal, error) {
	s, err := str(raw)
	if err != nil {
		return proto.Decimal{}, err
	}
	return proto.ParseUDecimal(s)
}

// uinteger parses a raw JSON number that must be a non-negative integer.
func uinteger(raw []byte) (uint64, error) {
	if len(raw) == 0 || len(raw) > 20 {
		return 0, ErrInteger
	}
	var v uint64
	for _, c := range raw {
		d := c - '0'
		if d > 9 {
			return 0, ErrInteger
		}
		if v > (1<<64-1-uint64(d))/10 { // v*10+d would overflow
			return 0, ErrInteger
		}
		v = v*10 + uint64(d)
	}
	return v, nil
}

// millis converts a millisecond timestamp to ns since the epoch.
func millis(raw []byte) (int64, error) {
	v, err := uinteger(raw)
	if err != nil || v > 1<<63/1_000_000 {
		return 0, ErrInteger
	}
	return int64(v) * 1_000_000, nil
}
