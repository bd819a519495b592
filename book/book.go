// Package book keeps an exact price-level order book: integer mantissas at
// one price exponent and one quantity exponent per book, so no value is ever
// rounded. The feed keeps one per instrument, and sandbox nodes rebuild the
// same books from the published BookSnapshot and BookDelta messages.
package book

import (
	"errors"
	"sort"

	"github.com/paddockhq/paddock/proto"
)

var (
	// ErrScale: a value cannot be represented exactly at the book's exponent
	// without overflowing int64.
	ErrScale = errors.New("book: value does not fit the book's scale")
	// ErrNegative: prices and quantities in a book are never negative.
	ErrNegative = errors.New("book: negative price or quantity")
)

// level is one price level. key is the price for bids and the negated price
// for asks, so both sides are sorted ascending by key with the best level
// last, where top-of-book changes cost no memmove.
type level struct{ key, qty int64 }

// Book is an exact order book. It is not safe for concurrent use: its owner
// serializes access. Slices returned by its methods are the caller's.
//
// An error from Load or Apply can leave the book partly updated; the owner
// must then discard it (Reset) and rebuild from a snapshot.
type Book struct {
	pexp, qexp int8
	scaled     bool // pexp/qexp are fixed by the first level seen
	bids, asks []level
}

// Reset empties the book, keeping its memory.
func (b *Book) Reset() {
	b.bids, b.asks = b.bids[:0], b.asks[:0]
	b.scaled = false
}

// Load replaces the book with a snapshot.
func (b *Book) Load(bids, asks []proto.Level) error {
	b.Reset()
	return b.Apply(bids, asks)
}

// Apply sets the quantity of each given level; a zero quantity removes it.
func (b *Book) Apply(bids, asks []proto.Level) error {
	for i := range bids {
		if err := b.set(&b.bids, bids[i], false); err != nil {
			return err
		}
	}
	for i := range asks {
		if err := b.set(&b.asks, asks[i], true); err != nil {
			return err
		}
	}
	return nil
}

func (b *Book) set(side *[]level, l proto.Level, ask bool) error {
	if l.Price.Mant < 0 || l.Qty.Mant < 0 {
		return ErrNegative
	}
	if !b.scaled {
		b.pexp, b.qexp, b.scaled = l.Price.Exp, l.Qty.Exp, true
	}
	if l.Price.Exp < b.pexp || l.Qty.Exp < b.qexp {
		// A finer scale than the book's: refine every level once. Exchanges
		// send a fixed scale per symbol, so this is rare.
		if err := b.refine(min(b.pexp, l.Price.Exp), min(b.qexp, l.Qty.Exp)); err != nil {
			return err
		}
	}
	p, ok := l.Price.Rescale(b.pexp)
	if !ok {
		return ErrScale
	}
	q, ok := l.Qty.Rescale(b.qexp)
	if !ok {
		return ErrScale
	}
	key := p.Mant
	if ask {
		key = -key
	}
	s := *side
	i := searchKey(s, key)
	found := i < len(s) && s[i].key == key
	switch {
	case q.Mant == 0 && found:
		*side = append(s[:i], s[i+1:]...)
	case q.Mant == 0:
		// Removing a level the book does not have is normal: Binance sends
		// removals for levels outside the snapshot's depth.
	case found:
		s[i].qty = q.Mant
	default:
		s = append(s, level{})
		copy(s[i+1:], s[i:])
		s[i] = level{key: key, qty: q.Mant}
		*side = s
	}
	return nil
}

// searchKey returns the index of the first level with key >= k. Updates
// cluster near the top of the book (the end of the slice), so it checks the
// last level before searching.
func searchKey(s []level, k int64) int {
	n := len(s)
	if n == 0 || s[n-1].key < k {
		return n
	}
	return sort.Search(n, func(i int) bool { return s[i].key >= k })
}

func (b *Book) refine(pexp, qexp int8) error {
	for _, side := range [2][]level{b.bids, b.asks} {
		for i := range side {
			p, ok1 := proto.Decimal{Mant: side[i].key, Exp: b.pexp}.Rescale(pexp)
			q, ok2 := proto.Decimal{Mant: side[i].qty, Exp: b.qexp}.Rescale(qexp)
			if !ok1 || !ok2 {
				return ErrScale
			}
			side[i] = level{key: p.Mant, qty: q.Mant}
		}
	}
	b.pexp, b.qexp = pexp, qexp
	return nil
}

// Crossed reports whether the best bid is at or above the best ask: a book
// no exchange can have, so a corrupt one.
func (b *Book) Crossed() bool {
	return len(b.bids) > 0 && len(b.asks) > 0 && b.bids[len(b.bids)-1].key >= -b.asks[len(b.asks)-1].key
}

// Len returns the number of bid and ask levels.
func (b *Book) Len() (bids, asks int) { return len(b.bids), len(b.asks) }

// Exp returns the book's price and quantity exponents.
func (b *Book) Exp() (price, qty int8) { return b.pexp, b.qexp }

func (b *Book) out(l level, ask bool) proto.Level {
	p := l.key
	if ask {
		p = -p
	}
	return proto.Level{Price: proto.Decimal{Mant: p, Exp: b.pexp}, Qty: proto.Decimal{Mant: l.qty, Exp: b.qexp}}
}

// AppendBids appends up to depth bids, best (highest) first; depth <= 0
// means all.
func (b *Book) AppendBids(dst []proto.Level, depth int) []proto.Level {
	return b.appendSide(dst, b.bids, depth, false)
}

// AppendAsks appends up to depth asks, best (lowest) first; depth <= 0 means all.
func (b *Book) AppendAsks(dst []proto.Level, depth int) []proto.Level {
	return b.appendSide(dst, b.asks, depth, true)
}

func (b *Book) appendSide(dst []proto.Level, s []level, depth int, ask bool) []proto.Level {
	n := len(s)
	if depth > 0 && depth < n {
		n = depth
	}
	for i := range n {
		dst = append(dst, b.out(s[len(s)-1-i], ask))
	}
	return dst
}

// BestBid returns the highest bid.
func (b *Book) BestBid() (proto.Level, bool) {
	if len(b.bids) == 0 {
		return proto.Level{}, false
	}
	return b.out(b.bids[len(b.bids)-1], false), true
}

// BestAsk returns the lowest ask.
func (b *Book) BestAsk() (proto.Level, bool) {
	if len(b.asks) == 0 {
		return proto.Level{}, false
	}
	return b.out(b.asks[len(b.asks)-1], true), true
}
