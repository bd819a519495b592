package binance

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/paddockhq/paddock/feed/session"
	"github.com/paddockhq/paddock/proto"
)

// subscribeBatch is the most stream names sent in one SUBSCRIBE; batches go
// out at most 4 a second, under Binance's 5 incoming messages per second.
const subscribeBatch = 200

// slot is one set of streams carried by one session slot (one connection,
// two during a rollover). It is the slot's session.Handler: frames arrive one
// at a time under the session's lock, so the parser is the slot's own.
type slot struct {
	a       *Adapter
	id      int
	streams []string
	insts   []*instState
	parser  Parser // used only inside Frame
	sess    *session.Slot
}

// dialect is Binance's combined-stream endpoint: SUBSCRIBE in batches, and
// no client keepalive (Binance pings the client; the session answers).
func (s *slot) dialect() session.Dialect {
	d := session.Dialect{URL: s.a.cfg.WSURL + "/stream", SubscribeEvery: 250 * time.Millisecond}
	for i := 0; i < len(s.streams); i += subscribeBatch {
		req, _ := json.Marshal(map[string]any{"method": "SUBSCRIBE", "params": s.streams[i:min(i+subscribeBatch, len(s.streams))], "id": i/subscribeBatch + 1})
		d.Subscribe = append(d.Subscribe, req)
	}
	return d
}

func (s *slot) newSession() (*session.Slot, error) {
	a := s.a
	m := a.out.Metrics
	sess, err := session.New(session.Config{
		Name: fmt.Sprint(s.id), Dialect: s.dialect(), Handler: s, Clock: a.clk, Logger: a.log, Limiter: a.limiter,
		SilenceTimeout: a.cfg.SilenceTimeout, MaxConnAge: a.cfg.MaxConnAge, RolloverOverlap: a.cfg.RolloverOverlap,
		BackoffMin: a.cfg.BackoffMin, BackoffMax: a.cfg.BackoffMax, MaxHeld: a.cfg.MaxHeldFrames,
		Metrics: session.Metrics{Reconnects: m.Reconnects, Rollovers: m.Rollovers, HeldOverflows: m.HeldOverflows},
	})
	if err != nil {
		return nil, fmt.Errorf("binance: slot %d: %w", s.id, err)
	}
	return sess, nil
}

// Frame is the hot path: parsing, de-duplication, book update, encoding and
// publishing, with no allocation in steady state.
func (s *slot) Frame(c *session.Conn, frame []byte, recv int64) (hold bool) {
	a := s.a
	a.out.Metrics.Frames.Inc()
	ev, err := s.parser.Parse(frame)
	if err != nil {
		a.badFrame(err, frame)
		return false
	}
	switch ev.Kind {
	case KindShutdown:
		a.log.Warn("serverShutdown received; rolling the connection over", "conn", c.ID())
		c.Rollover()
		return false
	case KindResponse:
		return false
	case KindError:
		a.log.Error("binance error response", "conn", c.ID(), "error", string(ev.ErrorRaw))
		return false
	case KindIgnored:
		a.out.Metrics.Ignored.Inc()
		return false
	case KindSnapshot, KindUnknown:
		a.badFrame(ErrUnknownEvent, frame)
		return false
	}
	// The session calls Frame under the slot's lock: the slot's state is
	// ours here (a snapshot fetch takes the same lock).
	return a.process(s, c.Secondary(), ev, recv)
}

// Lost publishes an outage for every instrument the slot carries.
func (s *slot) Lost(reason error) {
	a := s.a
	r := proto.ResetDisconnect
	if errors.Is(reason, session.ErrSilent) {
		r = proto.ResetStale
	}
	now := a.now().UnixNano()
	s.sess.Lock()
	defer s.sess.Unlock()
	for _, st := range s.insts {
		a.outage(st, r, now)
	}
}
