package sim

import (
	"context"
	"fmt"
	"time"
)

// Blast sends n trade frames for one symbol to every connection subscribed
// to its trade stream, bypassing the market model so that frame generation
// is not what a throughput benchmark measures. rate is frames per second
// (0: as fast as the connections take them; Blast then waits for queue room
// instead of disconnecting the slow connection). If sent is not nil,
// sent[i] receives the time (ns) trade firstID+i was written to the first
// subscribed connection's socket.
func (s *Sim) Blast(ctx context.Context, futures bool, symbol string, n, rate int, sent []int64) (firstID uint64, err error) {
	s.mu.Lock()
	m := s.markets[key(futures, symbol)]
	if m == nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("sim: no market %s", symbol)
	}
	firstID = m.tradeID + 1
	m.tradeID += uint64(n)
	m.aggID += uint64(n)
	m.trades += uint64(n)
	stream := m.lower + "@trade"
	var conns []*conn
	for c := range s.conns {
		if c.futures == futures && c.streams[stream] {
			conns = append(conns, c)
		}
	}
	price := m.mid * m.tick
	s.mu.Unlock()
	if len(conns) == 0 {
		return firstID, fmt.Errorf("sim: nobody subscribed to %s", stream)
	}
	start := time.Now()
	tr := tradeEv{price: price, qty: m.lot}
	for i := range n {
		if rate > 0 && i%8 == 0 {
			// Pace in batches of 8, the finest the timer resolution allows.
			if d := time.Until(start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return firstID, ctx.Err()
				}
			}
		}
		tr.id, tr.aggID = firstID+uint64(i), firstID+uint64(i)
		tr.buyerMaker = i%2 == 0
		frame := m.tradeFrame(&tr, false, time.Now().UnixMilli())
		for j, c := range conns {
			f := outFrame{b: frame, op: 1}
			if sent != nil && j == 0 {
				f.stamp = &sent[i]
			}
			select {
			case c.out <- f:
			case <-c.done:
				return firstID, fmt.Errorf("sim: connection closed during blast")
			case <-ctx.Done():
				return firstID, ctx.Err()
			}
		}
	}
	return firstID, nil
}
