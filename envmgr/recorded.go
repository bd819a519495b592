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
	// Covered is the first and last recorded instant of an instrument; an
	// error when nothing of it is recorded.
	Covered(ctx context.Context, venue, symbol string) (first, last time.Time, err error)
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
			first, last, err := m.recordings.Covered(ctx, ex.Venue, in.Symbol)
			path := fmt.Sprintf("exchanges[%d].instruments[%d]", i, j)
			switch {
			case err != nil:
				errs.List = append(errs.List, spec.FieldError{Path: path, Msg: fmt.Sprintf("%s %s has no recorded market data to replay (%v)", ex.Venue, in.Symbol, err)})
			case md.ReplayStart.Before(first) || md.ReplayEnd.After(last):
				errs.List = append(errs.List, spec.FieldError{Path: "market_data", Msg: fmt.Sprintf("%s .. %s is not covered: %s %s recorded %s .. %s",
					md.ReplayStart.Format(time.RFC3339), md.ReplayEnd.Format(time.RFC3339), ex.Venue, in.Symbol,
					first.UTC().Format("2006-01-02T15:04:05Z"), last.UTC().Format("2006-01-02T15:04:05Z"))})
			}
		}
	}
	if len(errs.List) > 0 {
		return errs
	}
	return nil
}
