package binance

import (
	"encoding/binary"
	"errors"

	"github.com/paddockhq/paddock/feed/jsonscan"

	"github.com/paddockhq/paddock/proto"
)

// Parse errors. They are sentinels so that a bad frame costs no allocation;
// the feed counts them by kind and logs a rate-limited sample.
var (
	ErrSyntax       = jsonscan.ErrSyntax
	ErrTrailing     = errors.New("binance: data after the JSON value")
	ErrNesting      = jsonscan.ErrNesting
	ErrEscape       = jsonscan.ErrEscape
	ErrField        = errors.New("binance: required field missing or of the wrong type")
	ErrInteger      = errors.New("binance: invalid or overflowing integer")
	ErrUnknownEvent = errors.New("binance: unknown event type")
	ErrLevels       = jsonscan.ErrLevels
	ErrTooManyLevel = jsonscan.ErrTooManyLevel
)

// jsonscan.MaxDepth (32) bounds JSON nesting in values the parser skips
// (klines and anything new Binance adds); Binance's own frames nest at most
// 4 deep.

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
	KindIgnored         // a well-formed event of a stream the feed does not handle (kline, 24hrTicker, ...)
)

func (k Kind) String() string {
	return [...]string{"unknown", "trade", "aggTrade", "depthUpdate", "bookTicker", "serverShutdown", "response", "error", "snapshot", "ignored"}[k]
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
	ev    Event
	frame []byte // the frame being parsed; vals hold offsets into it
	// present has bit f set when vals[f] holds this frame's value of field f;
	// a bit mask is cheaper to clear per frame than the values.
	present    uint32
	vals       [numFields]jsonscan.Value
	bidsParsed bool // "b"/"bids" was a level array, parsed into bids
	asksParsed bool // "a"/"asks" likewise
	bids, asks []proto.Level
}

// field identifies a key the parser keeps.
type field uint8

const (
	fStream field = iota
	fData
	fResult
	fID
	fError
	fe
	fE
	fT
	fs
	ft
	fp
	fq
	fm
	fa
	fU
	fu
	fpu
	fb
	fB
	fA
	fLastUpdateID
	numFields
	fNone = numFields
)

// oneChar maps single-character keys to fields.
var oneChar = func() (t [256]field) {
	for i := range t {
		t[i] = fNone
	}
	for c, f := range map[byte]field{'e': fe, 'E': fE, 'T': fT, 's': fs, 't': ft, 'p': fp, 'q': fq, 'm': fm,
		'a': fa, 'U': fU, 'u': fu, 'b': fb, 'B': fB, 'A': fA} {
		t[c] = f
	}
	return t
}()

func fieldOf(key []byte) field {
	if len(key) == 1 {
		return oneChar[key[0]]
	}
	switch string(key) {
	case "stream":
		return fStream
	case "data":
		return fData
	case "result":
		return fResult
	case "id":
		return fID
	case "error":
		return fError
	case "pu":
		return fpu
	case "lastUpdateId":
		return fLastUpdateID
	case "bids":
		return fb
	case "asks":
		return fa
	}
	return fNone
}

func (p *Parser) raw(f field) []byte { v := &p.vals[f]; return p.frame[v.Start:v.End] }

func (p *Parser) has(f field) bool { return p.present&(1<<f) != 0 }

// Parse parses one frame. See Event for the lifetime of the result.
func (p *Parser) Parse(frame []byte) (*Event, error) {
	p.present, p.bidsParsed, p.asksParsed = 0, false, false
	p.bids, p.asks = p.bids[:0], p.asks[:0]
	p.frame = frame
	if len(frame) > 1<<31-1 {
		return nil, ErrSyntax
	}
	if p.envelope(frame) {
		return p.interpret()
	}
	p.present, p.bidsParsed, p.asksParsed = 0, false, false
	p.bids, p.asks = p.bids[:0], p.asks[:0]
	sc := jsonscan.Scanner{B: frame}
	if err := p.object(&sc, 0); err != nil {
		return nil, err
	}
	sc.WS()
	if sc.I != len(sc.B) {
		return nil, ErrTrailing
	}
	return p.interpret()
}

const (
	envPrefix = `{"stream":"`
	envData   = `","data":`
)

// envelope parses the compact combined-stream form Binance sends,
// {"stream":"<name>","data":{...}}, matching the fixed parts as a template.
// Anything else (whitespace, other key order, escapes, a failure inside the
// payload) returns false and Parse starts over on the general path, which
// also produces the precise error.
func (p *Parser) envelope(frame []byte) bool {
	if len(frame) < len(envPrefix)+len(envData)+3 || string(frame[:len(envPrefix)]) != envPrefix {
		return false
	}
	i := len(envPrefix)
	for i < len(frame) && jsonscan.Plain[frame[i]] {
		i++
	}
	streamEnd := i
	if len(frame)-i < len(envData)+2 || string(frame[i:i+len(envData)]) != envData || frame[len(frame)-1] != '}' {
		return false
	}
	sc := jsonscan.Scanner{B: frame[:len(frame)-1], I: i + len(envData)}
	start := sc.I
	if err := p.object(&sc, 1); err != nil || sc.I != len(sc.B) {
		return false
	}
	p.vals[fStream] = jsonscan.Value{Start: int32(len(envPrefix)), End: int32(streamEnd), Kind: '"'}
	p.vals[fData] = jsonscan.Value{Start: int32(start), End: int32(sc.I), Kind: 'x'}
	p.present |= 1<<fStream | 1<<fData
	return true
}

// object parses a JSON object at sc, recording known keys as typed values
// and parsing the combined-stream payload and level arrays in place.
func (p *Parser) object(sc *jsonscan.Scanner, depth int) error {
	sc.WS()
	if !sc.Eat('{') {
		return ErrSyntax
	}
	sc.WS()
	if sc.Eat('}') {
		return nil
	}
	for {
		var f field
		var err error
		// Bytes i..i+3 are `"k":` when, read as a little-endian uint32 with
		// the key byte masked out, they equal 0x3A22??22.
		if b, i := sc.B, sc.I; i+4 <= len(b) && binary.LittleEndian.Uint32(b[i:])&0xFFFF00FF == 0x3A220022 && jsonscan.Plain[b[i+1]] {
			// Fast path for the compact one-character keys Binance uses: "e":
			f = oneChar[b[i+1]]
			sc.I = i + 4
		} else {
			sc.WS()
			key, err := sc.Str()
			if err != nil {
				return err
			}
			sc.WS()
			if !sc.Eat(':') {
				return ErrSyntax
			}
			f = fieldOf(key)
		}
		sc.WS()
		c := sc.Peek()
		switch {
		case f == fData && depth == 0:
			if p.has(fData) || c != '{' {
				return ErrField // a second payload, or one that is not an object
			}
			start := sc.I
			if err := p.object(sc, 1); err != nil {
				return err
			}
			p.vals[fData] = jsonscan.Value{Start: int32(start), End: int32(sc.I), Kind: 'x'}
			p.present |= 1 << fData
		case c == '[' && f == fb:
			if p.bidsParsed {
				return ErrField // a duplicate key would mix two level lists
			}
			if p.bids, err = jsonscan.Levels(sc, p.bids); err != nil {
				return err
			}
			p.bidsParsed = true
		case c == '[' && f == fa:
			if p.asksParsed {
				return ErrField
			}
			if p.asks, err = jsonscan.Levels(sc, p.asks); err != nil {
				return err
			}
			p.asksParsed = true
		case c == 't' || c == 'f':
			// Booleans inline ("m":true, "M":true), for known and unknown keys.
			lit, kind := "true", byte('t')
			if c == 'f' {
				lit, kind = "false", 'f'
			}
			if err := sc.Literal(lit); err != nil {
				return err
			}
			if f != fNone {
				p.vals[f].Kind = kind
				p.present |= 1 << f
			}
		case f == fNone:
			if err := sc.Skip(depth + 1); err != nil {
				return err
			}
		case c >= '0' && c <= '9':
			if err := sc.NumberValue(&p.vals[f]); err != nil {
				return err
			}
			p.present |= 1 << f
		default:
			if c == '"' {
				// Plain strings inline: most values are short strings with
				// nothing to unescape.
				b, start := sc.B, sc.I+1
				i := start
				for i < len(b) && jsonscan.Plain[b[i]] {
					i++
				}
				if i < len(b) && b[i] == '"' {
					v := &p.vals[f]
					v.Start, v.End, v.Kind = int32(start), int32(i), '"'
					sc.I = i + 1
					p.present |= 1 << f
					break
				}
			}
			if err := sc.ScanValue(depth+1, &p.vals[f]); err != nil {
				return err
			}
			p.present |= 1 << f
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

func (p *Parser) interpret() (*Event, error) {
	ev := &p.ev
	*ev = Event{Bids: p.bids, Asks: p.asks}
	var err error
	if p.has(fStream) {
		if ev.Stream, err = p.str(fStream); err != nil {
			return nil, err
		}
	}
	if p.has(fE) {
		if ev.EventTime, err = p.millis(fE); err != nil {
			return nil, err
		}
	}
	if p.has(fT) {
		if ev.TradeTime, err = p.millis(fT); err != nil {
			return nil, err
		}
	}
	var kind []byte
	if p.has(fe) {
		if kind, err = p.str(fe); err != nil {
			return nil, err
		}
	}
	switch string(kind) {
	case "trade":
		ev.Kind = KindTrade
		return ev, p.trade(ft)
	case "aggTrade":
		ev.Kind = KindAggTrade
		return ev, p.trade(fa)
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
		// A stream the feed did not subscribe to (or one Binance added):
		// not damage, so not a parse error.
		ev.Kind = KindIgnored
		return ev, nil
	}
	// No "e": a method response, a REST snapshot, or a spot bookTicker.
	switch {
	case p.has(fID) && p.has(fError):
		ev.Kind = KindError
		ev.ErrorRaw = p.raw(fError)
		ev.ID, _ = p.uint(fID) // a null id is fine on errors
		return ev, nil
	case p.has(fID) && p.has(fResult):
		ev.Kind = KindResponse
		if ev.ID, err = p.uint(fID); err != nil {
			return nil, err
		}
		return ev, nil
	case p.has(fLastUpdateID):
		ev.Kind = KindSnapshot
		if !p.bidsParsed || !p.asksParsed {
			return nil, ErrField
		}
		if ev.LastID, err = p.uint(fLastUpdateID); err != nil {
			return nil, err
		}
		return ev, nil
	case p.has(fu) && p.has(fB) && p.has(fA):
		ev.Kind = KindBookTicker
		return ev, p.bookTicker()
	}
	return nil, ErrUnknownEvent
}

func (p *Parser) trade(id field) error {
	ev := &p.ev
	if !p.has(fs) || !p.has(id) || !p.has(fp) || !p.has(fq) || !p.has(fm) {
		return ErrField
	}
	var err error
	if ev.Symbol, err = p.str(fs); err != nil {
		return err
	}
	if ev.TradeID, err = p.uint(id); err != nil {
		return err
	}
	if ev.Price, err = p.decimal(fp); err != nil {
		return err
	}
	if ev.Qty, err = p.decimal(fq); err != nil {
		return err
	}
	switch p.vals[fm].Kind {
	case 't':
		ev.BuyerMaker = true
	case 'f':
	default:
		return ErrField
	}
	return nil
}

// maxDiffSpan bounds u - U of one depth diff.
const maxDiffSpan = 1 << 32

func (p *Parser) depth() error {
	ev := &p.ev
	if !p.has(fs) || !p.has(fU) || !p.has(fu) || !p.bidsParsed || !p.asksParsed {
		return ErrField
	}
	var err error
	if ev.Symbol, err = p.str(fs); err != nil {
		return err
	}
	if ev.FirstID, err = p.uint(fU); err != nil {
		return err
	}
	if ev.LastID, err = p.uint(fu); err != nil {
		return err
	}
	// One diff never spans billions of updates: a span that large is a
	// corrupt or hostile id, refused here before it reaches a book.
	if ev.FirstID > ev.LastID || ev.LastID-ev.FirstID > maxDiffSpan {
		return ErrField
	}
	if p.has(fpu) {
		if ev.PrevID, err = p.uint(fpu); err != nil {
			return err
		}
		ev.HasPrev = true
	}
	return nil
}

func (p *Parser) bookTicker() error {
	ev := &p.ev
	if !p.has(fs) || !p.has(fu) || !p.has(fb) || !p.has(fB) || !p.has(fa) || !p.has(fA) {
		return ErrField // also when "b"/"a" were level arrays: those are not prices
	}
	var err error
	if ev.Symbol, err = p.str(fs); err != nil {
		return err
	}
	if ev.UpdateID, err = p.uint(fu); err != nil {
		return err
	}
	if ev.Bid.Price, err = p.decimal(fb); err != nil {
		return err
	}
	if ev.Bid.Qty, err = p.decimal(fB); err != nil {
		return err
	}
	if ev.Ask.Price, err = p.decimal(fa); err != nil {
		return err
	}
	ev.Ask.Qty, err = p.decimal(fA)
	return err
}

// str returns a plain string field's content.
func (p *Parser) str(f field) ([]byte, error) {
	switch v := &p.vals[f]; v.Kind {
	case '"':
		return p.frame[v.Start:v.End], nil
	case '\\':
		return nil, ErrEscape
	}
	return nil, ErrField
}

// uint returns a field that must be a non-negative integer.
func (p *Parser) uint(f field) (uint64, error) {
	switch v := &p.vals[f]; v.Kind {
	case '0':
		return v.Num, nil
	case 'n':
		return 0, ErrInteger
	}
	return 0, ErrField
}

// decimal parses a string field holding an unsigned decimal.
func (p *Parser) decimal(f field) (proto.Decimal, error) {
	s, err := p.str(f)
	if err != nil {
		return proto.Decimal{}, err
	}
	return proto.ParseUDecimal(s)
}

// millis converts a millisecond timestamp field to ns since the epoch.
func (p *Parser) millis(f field) (int64, error) {
	v, err := p.uint(f)
	if err != nil {
		return 0, err
	}
	if v > 1<<63/1_000_000 {
		return 0, ErrInteger
	}
	return int64(v) * 1_000_000, nil
}
