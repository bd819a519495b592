package envmgr

import (
	"context"
	"fmt"
	"time"

	"github.com/paddockhq/paddock/envmgr/spec"
)

// Recordings says what market data is recorded, so that Create can refuse
// a replay of a range the recording does not cover (record.Coverage).
type Recordings interface {
	// Check is nil when [start, end) of an instrument is recorded; else
	// an error that says what is (record.Check).
	Check(ctx context.Context, venue, symbol string, start, end time.Time) error
}

// SetRecordings enables market_data.mode replay and both, checked against
// what is recorded. Without it they are refused (nothing is recorded).
// Call before serving requests.
func (m *Manager) SetRecordings(r Recordings) { m.recordings = r }

// checkRecorded refuses a replay range that some declared instrument's
// recording does not cover, saying what is covered.
func (m *Manager) checkRecorded(ctx context.Context, s *spec.Spec) error {
	md := s.MarketData
	if md.Mode != "replay" && md.Mode != "both" {
		return nil
	}
	errs := &spec.Errors{}
	for i, ex := range s.Exchanges {
		for j, in := range ex.Instruments {
			if err := m.recordings.Check(ctx, ex.Venue, in.Symbol, md.ReplayStart, md.ReplayEnd); err != nil {
				errs.List = append(errs.List, spec.FieldError{Path: fmt.Sprintf("exchanges[%d].instruments[%d]", i, j),
					Msg: fmt.Sprintf("cannot replay %s %s: %v", ex.Venue, in.Symbol, err)})
			}
		}
	}
	if len(errs.List) > 0 {
		return errs
	}
	return nil
}
