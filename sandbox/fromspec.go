package sandbox

import (
	"time"

	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/risk"
)

// Placement is what differs between the places a node runs (a local
// process, an AWS instance): where it reaches NATS, its files, its listen
// address, its strategy's location, and the installation's paper-venue
// settings. Everything else comes from the environment's spec.
type Placement struct {
	NATSURL, NATSCreds, InboxPrefix string
	AdminListen, EndpointFile       string
	APIKeyFile, AdminKeyFile        string
	Strategy                        *StrategyConfig
	Fees                            map[string]FeeConfig // nil: DefaultFees
	USDRates                        map[string]string
	FeedStaleSeconds                int
	// Deadline, DeadlineFile and DeadlineGrace arm the node's dead man's
	// switch (see Config.Deadline).
	Deadline      time.Time
	DeadlineFile  string
	DeadlineGrace time.Duration
}

// FromSpec is the one translation of a validated .dev-env.yaml into a node's
// configuration: its name, risk limits (exact decimals) and instruments
// (venue, subject token, quote currency), placed as p says. Every
// provisioner uses it, so that a node is configured the same wherever it
// runs.
func FromSpec(name string, s *spec.Spec, p Placement) Config {
	c := Config{Name: name, NATSURL: p.NATSURL, NATSCreds: p.NATSCreds, InboxPrefix: p.InboxPrefix,
		AdminListen: p.AdminListen, EndpointFile: p.EndpointFile, APIKeyFile: p.APIKeyFile, AdminKeyFile: p.AdminKeyFile,
		Strategy: p.Strategy, Fees: p.Fees, USDRates: p.USDRates, FeedStaleSeconds: p.FeedStaleSeconds,
		Deadline: p.Deadline.UTC(), DeadlineFile: p.DeadlineFile, DeadlineGraceSeconds: int(p.DeadlineGrace / time.Second),
		Risk: RiskConfig{MaxPositionUSD: s.Risk.MaxPositionUSD.String(), MaxDrawdownPct: s.Risk.MaxDrawdownPct.String(),
			MaxOrderRate: s.Risk.MaxOrderRate.String(), StartingEquityUSD: s.Risk.StartingEquityUSD.String()}}
	if s.Risk.StartingEquityUSD.Mant == 0 {
		c.Risk.StartingEquityUSD = spec.DefaultStartingEquityUSD.String()
	}
	if md := s.MarketData; md.Mode == "replay" || md.Mode == "both" {
		c.Replay = &ReplayConfig{Mode: md.Mode, Start: md.ReplayStart.UTC(), End: md.ReplayEnd.UTC(), Speed: md.ReplaySpeed}
	}
	for _, ex := range s.Exchanges {
		for _, in := range ex.Instruments {
			q, _ := risk.QuoteOf(in.Written)
			c.Instruments = append(c.Instruments, Instrument{Venue: ex.Venue, Symbol: in.Symbol, Quote: q})
		}
	}
	return c
}
