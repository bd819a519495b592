package binance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/paddockhq/paddock/feed"
	"github.com/paddockhq/paddock/feed/session"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/proto"
)

// maxBuffered bounds the depth events buffered while a book syncs. Past it
// the buffer is dropped and the sync starts over: a snapshot that takes that
// long to arrive is stale anyway.
const maxBuffered = 10_000

// A resync must converge whatever update ids arrive. Binance's procedure
// assumes honest ids; one corrupt or hostile diff can otherwise wedge a book
// for good (a first buffered diff far in the future refuses every snapshot;
// a book pushed far ahead of its stream drops every later diff as covered).
const (
	// maxOlderSnapshots: this many snapshots in a row that predate the first
	// buffered diff drop the buffer and start over.
	maxOlderSnapshots = 5
	// maxStaleRun: this many diffs in a row from the primary connection that
	// the book already covers mean the book is ahead of the stream: reset
	// and resync.
	maxStaleRun = 100
)

// instState is the adapter's per-instrument state. Guarded by its slot's lock
// (session.Slot.Lock; Frame runs under it).
type instState struct {
	in    *feed.Instrument
	upper string // exchange symbol as sent in "s" (BTCUSDT)
	slot  *slot

	// Order book synchronization.
	synced    bool
	needFirst bool   // the next diff is the first after a snapshot
	lastU     uint64 // exchange update id the book is at
	buf       []bufferedDepth
	fetching  bool // a snapshot fetch loop is running
	older     int  // snapshots in a row older than the first buffered diff
	staleRun  int  // covered diffs in a row from the primary while synced

	// De-duplication across overlapping connections and gap detection.
	haveTrade bool
	lastTrade uint64
	lastBBO   uint64
}

type bufferedDepth struct {
	t                 feed.Times
	first, last, prev uint64
	hasPrev           bool
	bids, asks        []proto.Level
}

func copyDepth(ev *Event, t feed.Times) bufferedDepth {
	return bufferedDepth{t: t, first: ev.FirstID, last: ev.LastID, prev: ev.PrevID, hasPrev: ev.HasPrev,
		bids: append([]proto.Level(nil), ev.Bids...), asks: append([]proto.Level(nil), ev.Asks...)}
}

// eventTimes picks the header times: the trade time for trades (when the
// match happened), the event time otherwise.
func eventTimes(ev *Event, recv int64) feed.Times {
	if (ev.Kind == KindTrade || ev.Kind == KindAggTrade) && ev.TradeTime > 0 {
		return feed.Times{Event: ev.TradeTime, Recv: recv}
	}
	return feed.Times{Event: ev.EventTime, Recv: recv}
}

// onTrade publishes a trade unless it is a duplicate. Trade ids (and
// aggregate trade ids) are sequential per symbol, so a jump is a loss: a
// secondary connection holds it (the primary has not delivered the trades in
// between yet), a primary counts the missing ids and publishes.
func (a *Adapter) onTrade(secondary bool, st *instState, ev *Event, recv int64) (hold bool) {
	if !st.in.Events.Trades {
		return false
	}
	if st.haveTrade && ev.TradeID <= st.lastTrade {
		a.out.Metrics.Duplicates.Inc()
		return false
	}
	if st.haveTrade && ev.TradeID != st.lastTrade+1 {
		if secondary {
			return true
		}
		st.in.CountMissedTrades(ev.TradeID - st.lastTrade - 1)
	}
	side := proto.SideBuy
	if ev.BuyerMaker {
		side = proto.SideSell
	}
	tr := proto.Trade{Price: ev.Price, Qty: ev.Qty, TradeID: ev.TradeID, Side: side}
	if err := st.in.PublishTrade(eventTimes(ev, recv), &tr); err != nil {
		a.badEvent("trade: "+err.Error(), st.upper)
		return false
	}
	st.haveTrade, st.lastTrade = true, ev.TradeID
	return false
}

// onBBO publishes a best bid/offer unless an equal or newer one was
// published already.
func (a *Adapter) onBBO(st *instState, ev *Event, recv int64) {
	if !st.in.Events.BBO {
		return
	}
	if ev.UpdateID <= st.lastBBO {
		a.out.Metrics.Duplicates.Inc()
		return
	}
	q := proto.BBO{Bid: ev.Bid, Ask: ev.Ask, UpdateID: ev.UpdateID}
	if err := st.in.PublishBBO(eventTimes(ev, recv), &q); err != nil {
		a.badEvent("bbo: "+err.Error(), st.upper)
		return
	}
	st.lastBBO = ev.UpdateID
}

// onDepth handles a diff: buffer it while the book syncs, otherwise check
// continuity and apply it.
func (a *Adapter) onDepth(secondary bool, st *instState, ev *Event, recv int64) (hold bool) {
	if !st.in.Events.Orderbook {
		return false
	}
	t := eventTimes(ev, recv)
	if !st.synced {
		if n := len(st.buf); n > 0 && ev.LastID <= st.buf[n-1].last {
			a.out.Metrics.Duplicates.Inc() // the other connection's copy during a rollover
			return false
		}
		if len(st.buf) >= maxBuffered {
			// Counted and logged: the book stays out of sync (its Reset
			// is already out) and the sync starts over from here.
			st.in.CountBufferOverflow()
			a.badLog.Maybe(a.now(), func(suppressed int64) {
				a.log.Warn("resync buffer full; starting the sync over", "symbol", st.upper, "diffs", maxBuffered, "suppressed_since_last_log", suppressed)
			})
			st.buf = st.buf[:0]
		}
		st.buf = append(st.buf, copyDepth(ev, t))
		a.startResync(st)
		return false
	}
	switch a.continuity(st, ev.FirstID, ev.LastID, ev.PrevID, ev.HasPrev) {
	case stale:
		a.out.Metrics.Duplicates.Inc()
		if !secondary {
			if st.staleRun++; st.staleRun >= maxStaleRun {
				st.in.CountResyncRestart()
				a.log.Warn("book is ahead of its stream; resyncing", "symbol", st.upper, "book_update_id", st.lastU, "diff_update_id", ev.LastID)
				a.gap(st, copyDepth(ev, t))
			}
		}
		return false
	case gap:
		if secondary {
			return true
		}
		a.gap(st, copyDepth(ev, t))
		return false
	}
	a.apply(st, t, ev.FirstID, ev.LastID, ev.Bids, ev.Asks)
	return false
}

type verdict uint8

const (
	applies verdict = iota
	stale           // already in the book: drop
	gap             // does not follow the book: resync
)

// continuity applies Binance's documented rules for a diff against a book at
// st.lastU.
//
// Spot: ignore u < local id (and u == local id, which changes nothing);
// restart when U > local id + 1.
// USD-M futures: the first diff after a snapshot must have U <= lastUpdateId
// <= u (diffs with u < lastUpdateId are dropped); every later diff's pu must
// equal the previous diff's u.
func (a *Adapter) continuity(st *instState, first, last, prev uint64, hasPrev bool) verdict {
	if a.cfg.Futures {
		if st.needFirst {
			switch {
			case last < st.lastU:
				return stale
			case first <= st.lastU:
				return applies
			}
			return gap
		}
		if last <= st.lastU {
			return stale
		}
		if hasPrev && prev == st.lastU {
			return applies
		}
		return gap
	}
	if last <= st.lastU {
		return stale
	}
	if first > st.lastU+1 {
		return gap
	}
	return applies
}

func (a *Adapter) apply(st *instState, t feed.Times, first, last uint64, bids, asks []proto.Level) {
	if err := st.in.ApplyDelta(t, first, last, 0, bids, asks); err != nil {
		// The book could not take the update (a scale overflow): treat it as
		// a gap, which resets and resyncs.
		a.log.Warn("apply depth update", "symbol", st.upper, "err", err)
		a.gap(st, bufferedDepth{})
		return
	}
	st.lastU, st.needFirst, st.staleRun = last, false, 0
}

// gap invalidates the book, publishes a Reset and starts a resync whose
// buffer begins with ev (when it has levels).
func (a *Adapter) gap(st *instState, ev bufferedDepth) {
	st.in.CountGap()
	st.in.Reset(ev.t, proto.ResetGap)
	st.synced = false
	st.buf = st.buf[:0]
	if ev.last != 0 {
		st.buf = append(st.buf, ev)
	}
	a.startResync(st)
}

// outage handles the loss of the connection carrying st: the book can no
// longer be trusted and nothing should be resynced until data flows again.
func (a *Adapter) outage(st *instState, reason proto.ResetReason, now int64) {
	st.in.Reset(feed.Times{Recv: now}, reason)
	st.synced = false
	st.buf = st.buf[:0]
}

func (a *Adapter) startResync(st *instState) {
	if st.fetching || a.ctx == nil {
		return
	}
	st.fetching = true
	a.wg.Add(1)
	go a.fetchLoop(st)
}

// fetchLoop fetches REST snapshots until one splices with the buffered
// diffs, the buffer empties (the connection was lost), or the adapter stops.
func (a *Adapter) fetchLoop(st *instState) {
	defer a.wg.Done()
	bo := session.Backoff{Min: a.cfg.BackoffMin, Max: a.cfg.BackoffMax}
	for {
		snap, err := a.fetchSnapshot(a.ctx, st.upper)
		st.slot.sess.Lock()
		if err == nil {
			done, why := a.applySnapshot(st, snap)
			if done {
				st.slot.sess.Unlock()
				return
			}
			err = why
		}
		if len(st.buf) == 0 || a.ctx.Err() != nil {
			st.fetching = false
			st.slot.sess.Unlock()
			return
		}
		st.slot.sess.Unlock()
		a.log.Warn("depth snapshot", "symbol", st.upper, "err", err)
		if !clock.Sleep(a.clk, bo.Next(), a.ctx.Done()) {
			st.slot.sess.Lock()
			st.fetching = false
			st.slot.sess.Unlock()
			return
		}
	}
}

type snapshot struct {
	lastID     uint64
	bids, asks []proto.Level
	recv       int64
}

// applySnapshot follows Binance's procedure with the buffered diffs. It
// returns done=false with the reason when another snapshot is needed.
func (a *Adapter) applySnapshot(st *instState, s *snapshot) (done bool, why error) {
	if st.synced || len(st.buf) == 0 {
		st.fetching = false
		return true, nil
	}
	if s.lastID < st.buf[0].first {
		if st.older++; st.older >= maxOlderSnapshots {
			// The first buffered diff is implausible: start over with the
			// diffs that arrive from now on (the fetch loop ends with the
			// empty buffer; the next diff starts a new one).
			st.older = 0
			st.buf = st.buf[:0]
			st.fetching = false
			st.in.CountResyncRestart()
			return false, fmt.Errorf("%d snapshots in a row were older than the first buffered diff %d; dropped the buffer to start over", maxOlderSnapshots, s.lastID)
		}
		return false, fmt.Errorf("snapshot %d is older than the first buffered diff %d", s.lastID, st.buf[0].first)
	}
	st.older = 0
	// Drop what the snapshot covers: spot u <= lastUpdateId, futures u < lastUpdateId.
	keep := st.buf[:0]
	for _, ev := range st.buf {
		if ev.last > s.lastID || (a.cfg.Futures && ev.last == s.lastID) {
			keep = append(keep, ev)
		}
	}
	st.buf = keep
	t := feed.Times{Recv: s.recv}
	if err := st.in.LoadSnapshot(t, s.lastID, 0, s.bids, s.asks); err != nil {
		return false, fmt.Errorf("load snapshot: %w", err)
	}
	st.synced, st.needFirst, st.lastU, st.fetching, st.staleRun = true, true, s.lastID, false, 0
	st.in.CountResync()
	pending := st.buf
	st.buf = nil
	for i, ev := range pending {
		switch a.continuity(st, ev.first, ev.last, ev.prev, ev.hasPrev) {
		case stale:
			continue
		case gap:
			a.gap(st, ev)
			st.buf = append(st.buf, pending[i+1:]...)
			return true, nil
		}
		a.apply(st, ev.t, ev.first, ev.last, ev.bids, ev.asks)
		if !st.synced {
			return true, nil
		}
	}
	return true, nil
}

// maxRetryAfter bounds a Retry-After the adapter honours, in seconds (a
// hostile or broken value must not park it for days).
const maxRetryAfter = 3600

// fetchSnapshot GETs the REST depth snapshot for symbol.
func (a *Adapter) fetchSnapshot(ctx context.Context, symbol string) (*snapshot, error) {
	select {
	case a.fetchSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-a.fetchSem }()
	path := "/api/v3/depth"
	if a.cfg.Futures {
		path = "/fapi/v1/depth"
	}
	url := a.cfg.RESTURL + path + "?symbol=" + symbol + "&limit=" + strconv.Itoa(a.cfg.DepthLimit)
	reqCtx, cancel := context.WithTimeout(ctx, a.cfg.SnapshotTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		if ra := resp.Header.Get("Retry-After"); ra != "" && (resp.StatusCode == 429 || resp.StatusCode == 418) {
			if secs, err := strconv.Atoi(ra); err == nil && secs > 0 {
				// Binance bans IPs that ignore Retry-After: wait it out in
				// full (on the adapter's context, not the request's timeout),
				// holding the semaphore so no other fetch goes out either.
				clock.Sleep(a.clk, time.Duration(min(secs, maxRetryAfter))*time.Second, ctx.Done())
			}
		}
		return nil, fmt.Errorf("GET %s: status %d: %.200s", url, resp.StatusCode, body)
	}
	var p Parser
	ev, err := p.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if ev.Kind != KindSnapshot {
		return nil, fmt.Errorf("GET %s: not a depth snapshot (%s)", url, ev.Kind)
	}
	return &snapshot{lastID: ev.LastID, bids: ev.Bids, asks: ev.Asks, recv: a.now().UnixNano()}, nil
}
