package risk

import (
	"fmt"

	"github.com/paddockhq/paddock/proto"
)

// bucket is a token bucket in integer units: one order costs unit, and
// refill units arrive per nanosecond, so a rate such as 2.5 orders per second
// is exact. The burst is max(1, ceil(rate)) orders.
type bucket struct {
	unit, refill, capacity int64
	tokens, last           int64
	started                bool
}

func newBucket(rate proto.Decimal) (bucket, error) {
	if rate.Mant <= 0 {
		return bucket{}, fmt.Errorf("%w: max_order_rate must be > 0", ErrLimits)
	}
	if rate.Exp > 0 {
		r, ok := rate.Rescale(0)
		if !ok {
			return bucket{}, fmt.Errorf("%w: max_order_rate %s is too large", ErrLimits, rate)
		}
		rate = r
	}
	if rate.Exp < -6 {
		return bucket{}, fmt.Errorf("%w: max_order_rate %s has more than 6 decimals", ErrLimits, rate)
	}
	scale := int64(1)
	for range -int(rate.Exp) {
		scale *= 10
	}
	// rate = Mant/scale orders per second = Mant/scale/1e9 orders per ns;
	// in units of 1/(1e9*scale) of an order, Mant units arrive per ns.
	unit := 1_000_000_000 * scale
	burst := max(1, (rate.Mant+scale-1)/scale)
	if burst > (1<<62)/unit {
		return bucket{}, fmt.Errorf("%w: max_order_rate %s is too large", ErrLimits, rate)
	}
	return bucket{unit: unit, refill: rate.Mant, capacity: burst * unit}, nil
}

func (b *bucket) level(now int64) int64 {
	if !b.started {
		return b.capacity
	}
	el := now - b.last
	if el <= 0 {
		return b.tokens
	}
	if el >= (b.capacity-b.tokens)/b.refill+1 {
		return b.capacity
	}
	return min(b.capacity, b.tokens+el*b.refill)
}

func (b *bucket) peek(now int64) bool { return b.level(now) >= b.unit }

func (b *bucket) take(now int64) {
	t := b.level(now)
	if !b.started || now > b.last {
		b.last = now
	}
	b.started = true
	b.tokens = t - b.unit
}
