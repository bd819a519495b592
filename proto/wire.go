package proto

import (
	"encoding/binary"
	"errors"
)

// Version is the wire format's major version, byte 0 of every message. A
// decoder rejects any other major version; compatible changes (new message
// types, fields appended to a body, new flag bits, new enum values) keep it.
const Version = 1

// HeaderLen is the size of the common header that starts every message.
const HeaderLen = 32

// MaxBodyLen is the largest body the 16-bit word count can describe.
const MaxBodyLen = 0xFFFF * 8

// Decode and encode errors. All are sentinels so that checking them on the hot
// path costs nothing; match with errors.Is.
var (
	ErrTruncated   = errors.New("proto: message truncated")
	ErrVersion     = errors.New("proto: unsupported format version")
	ErrUnknownType = errors.New("proto: unknown message type")
	ErrWrongType   = errors.New("proto: message is of another type")
	ErrExponent    = errors.New("proto: decimal exponent out of range")
	ErrTooLarge    = errors.New("proto: message body too large")
	ErrScale       = errors.New("proto: levels cannot share one exponent exactly")
)

// MsgType identifies the body layout; byte 1 of the header.
type MsgType uint8

// Message types. Values are fixed forever; new types get new values.
const (
	TypeTrade        MsgType = 1
	TypeBookDelta    MsgType = 2
	TypeBookSnapshot MsgType = 3
	TypeBBO          MsgType = 4
	TypeStatus       MsgType = 5
	TypeReset        MsgType = 6
)

func (t MsgType) String() string {
	switch t {
	case TypeTrade:
		return "trade"
	case TypeBookDelta:
		return "book_delta"
	case TypeBookSnapshot:
		return "book_snapshot"
	case TypeBBO:
		return "bbo"
	case TypeStatus:
		return "status"
	case TypeReset:
		return "reset"
	}
	return "unknown"
}

// Flags is the header's bit set. Decoders ignore bits they do not know.
type Flags uint16

const (
	// FlagSnapshotReply marks a BookSnapshot sent as a reply to a snapshot
	// request rather than on the stream. It does not consume a sequence number:
	// its Seq is the stream sequence number it is consistent with.
	FlagSnapshotReply Flags = 1 << 0
	// FlagReplay marks a message re-published from a recording, not live.
	FlagReplay Flags = 1 << 1
	// FlagImported marks a message imported from a venue's historical
	// dump, not recorded live by the feed.
	FlagImported Flags = 1 << 2
)

// Header holds the common header fields an encoder writes. Version, type and
// body length are set by the encoder itself.
type Header struct {
	Flags     Flags
	Venue     VenueID
	Seq       uint64 // per-subject sequence number, see SPEC.md
	EventTime int64  // exchange event time, ns since the Unix epoch (0 = unknown)
	RecvTime  int64  // local receive time, ns since the Unix epoch
}

// Header field offsets.
const (
	offVersion   = 0
	offType      = 1
	offFlags     = 2
	offVenue     = 4
	offBodyWords = 6
	offSeq       = 8
	offEventTime = 16
	offRecvTime  = 24
)

// grow extends dst by n bytes and returns the extended slice and the new
// region. The region is NOT zeroed: it may hold an earlier message's bytes,
// so every encoder writes every byte of its message, reserved ones included
// (TestEncodeIntoDirtyBuffer checks this). It allocates only when dst lacks
// capacity.
func grow(dst []byte, n int) ([]byte, []byte) {
	l := len(dst)
	if cap(dst)-l < n {
		nb := make([]byte, l, 2*cap(dst)+n)
		copy(nb, dst)
		dst = nb
	}
	dst = dst[:l+n]
	return dst, dst[l:]
}

// putHeader writes the header into m[:HeaderLen]; bodyLen must be a multiple of 8.
func putHeader(m []byte, t MsgType, h *Header, bodyLen int) {
	m[offVersion] = Version
	m[offType] = byte(t)
	binary.LittleEndian.PutUint16(m[offFlags:], uint16(h.Flags))
	binary.LittleEndian.PutUint16(m[offVenue:], uint16(h.Venue))
	binary.LittleEndian.PutUint16(m[offBodyWords:], uint16(bodyLen/8))
	binary.LittleEndian.PutUint64(m[offSeq:], h.Seq)
	binary.LittleEndian.PutUint64(m[offEventTime:], uint64(h.EventTime))
	binary.LittleEndian.PutUint64(m[offRecvTime:], uint64(h.RecvTime))
}

// Message is a flyweight view over one encoded message. It holds only a slice
// of the caller's buffer: it is valid as long as the buffer is not modified or
// reused, and copying a Message copies no bytes. Decode is the only way to
// obtain a valid Message; the zero Message must not be used. Safe for
// concurrent reads.
type Message struct{ b []byte }

// Decode validates b and returns a view of the message at its start: the
// header is complete, the version is supported, the body fits in b, and for
// known types the body holds every field and level it declares, with decimal
// exponents in range. Bytes after the message (Len) are not examined.
//
// For a well-formed message of a type this decoder does not know, Decode
// returns ErrUnknownType together with a Message whose header and Len are
// valid, so that a reader of a concatenated stream can skip it.
func Decode(b []byte) (Message, error) {
	if len(b) < HeaderLen {
		return Message{}, ErrTruncated
	}
	if b[offVersion] != Version {
		return Message{}, ErrVersion
	}
	n := HeaderLen + 8*int(binary.LittleEndian.Uint16(b[offBodyWords:]))
	if len(b) < n {
		return Message{}, ErrTruncated
	}
	m := Message{b: b[:n:n]}
	body := m.b[HeaderLen:]
	switch MsgType(b[offType]) {
	case TypeTrade:
		if len(body) < tradeBodyLen {
			return Message{}, ErrTruncated
		}
		if !validExp(body[tradePExp]) || !validExp(body[tradeQExp]) {
			return Message{}, ErrExponent
		}
	case TypeBookDelta, TypeBookSnapshot:
		if len(body) < bookFixedLen {
			return Message{}, ErrTruncated
		}
		nb := int(binary.LittleEndian.Uint16(body[bookNBids:]))
		na := int(binary.LittleEndian.Uint16(body[bookNAsks:]))
		if len(body) < bookFixedLen+levelLen*(nb+na) {
			return Message{}, ErrTruncated
		}
		if !validExp(body[bookPExp]) || !validExp(body[bookQExp]) {
			return Message{}, ErrExponent
		}
	case TypeBBO:
		if len(body) < bboBodyLen {
			return Message{}, ErrTruncated
		}
		if !validExp(body[bboPExp]) || !validExp(body[bboQExp]) {
			return Message{}, ErrExponent
		}
	case TypeStatus:
		if len(body) < statusMinBody { // an older feed's 24-byte body is valid
			return Message{}, ErrTruncated
		}
	case TypeReset:
		if len(body) < resetBodyLen {
			return Message{}, ErrTruncated
		}
	default:
		return m, ErrUnknownType
	}
	return m, nil
}

func validExp(b byte) bool {
	e := int8(b)
	return e >= MinExp && e <= MaxExp
}

// Len is the message's total size (header and body) in bytes.
func (m Message) Len() int { return len(m.b) }

// Bytes returns the message's bytes, aliasing the decoded buffer.
func (m Message) Bytes() []byte { return m.b }

// Version returns the header's format version.
func (m Message) Version() uint8 { return m.b[offVersion] }

// Type returns the message type.
func (m Message) Type() MsgType { return MsgType(m.b[offType]) }

// Flags returns the header flags.
func (m Message) Flags() Flags { return Flags(binary.LittleEndian.Uint16(m.b[offFlags:])) }

// Venue returns the venue id.
func (m Message) Venue() VenueID { return VenueID(binary.LittleEndian.Uint16(m.b[offVenue:])) }

// Seq returns the per-subject sequence number.
func (m Message) Seq() uint64 { return binary.LittleEndian.Uint64(m.b[offSeq:]) }

// EventTime returns the exchange event time in ns since the Unix epoch.
func (m Message) EventTime() int64 { return int64(binary.LittleEndian.Uint64(m.b[offEventTime:])) }

// RecvTime returns the local receive time in ns since the Unix epoch.
func (m Message) RecvTime() int64 { return int64(binary.LittleEndian.Uint64(m.b[offRecvTime:])) }

// Header returns the header fields as a value.
func (m Message) Header() Header {
	return Header{Flags: m.Flags(), Venue: m.Venue(), Seq: m.Seq(), EventTime: m.EventTime(), RecvTime: m.RecvTime()}
}

func (m Message) body() []byte { return m.b[HeaderLen:] }

func (m Message) as(t MsgType) error {
	if len(m.b) < HeaderLen {
		return ErrTruncated
	}
	if m.Type() != t {
		return ErrWrongType
	}
	return nil
}

func getDec(b []byte, off int, exp byte) Decimal {
	return Decimal{Mant: int64(binary.LittleEndian.Uint64(b[off:])), Exp: int8(exp)}
}

func putU64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

func checkExp(ds ...Decimal) error {
	for _, d := range ds {
		if d.Exp < MinExp || d.Exp > MaxExp {
			return ErrExponent
		}
	}
	return nil
}

// Restamp rewrites an encoded message's sequence number and adds flags, in
// place: a replayer re-publishes recorded messages with its own sequence
// numbers and FlagReplay. b must hold a whole message (Decode accepts it).
func Restamp(b []byte, seq uint64, add Flags) error {
	if len(b) < HeaderLen {
		return ErrTruncated
	}
	putU64(b, offSeq, seq)
	binary.LittleEndian.PutUint16(b[offFlags:], binary.LittleEndian.Uint16(b[offFlags:])|uint16(add))
	return nil
}
