package spec

import "time"

// Document is a validated spec in the documented shape of .dev-env.yaml:
// the same field names (snake_case), with what validation derived (the
// name, each exchange's venue, each instrument's subject token, the
// defaults) filled in. Decimals are exact strings. It is what
// `paddock env validate -o json` prints.
type Document struct {
	Version     int            `json:"version"`
	Environment DocEnvironment `json:"environment"`
	Exchanges   []DocExchange  `json:"exchanges"`
	MarketData  DocMarketData  `json:"market_data"`
	RiskConfig  DocRisk        `json:"risk_config"`
	Strategy    DocStrategy    `json:"strategy"`
	TTLHours    int            `json:"ttl_hours"`
}

// DocEnvironment is the environment section.
type DocEnvironment struct {
	Name string `json:"name"`
}

// DocExchange is one exchange; Venue and each instrument's symbol are the
// feed's names for them.
type DocExchange struct {
	Name        string          `json:"name"`
	Type        string          `json:"type"`
	Sandbox     bool            `json:"sandbox"`
	Venue       string          `json:"venue"`
	Instruments []DocInstrument `json:"instruments"`
}

// DocInstrument is an instrument as written and its subject token.
type DocInstrument struct {
	Written string `json:"instrument"`
	Symbol  string `json:"symbol"`
}

// DocMarketData is the market_data section.
type DocMarketData struct {
	Mode        string     `json:"mode"`
	ReplayStart *time.Time `json:"replay_start,omitempty"`
	ReplayEnd   *time.Time `json:"replay_end,omitempty"`
	// ReplaySpeed: 1 as recorded, 10 ten times faster, "max".
	ReplaySpeed any `json:"replay_speed,omitempty"`
}

// DocRisk is risk_config, decimals as exact strings.
type DocRisk struct {
	MaxPositionUSD    string `json:"max_position_usd"`
	MaxDrawdownPct    string `json:"max_drawdown_pct"`
	MaxOrderRate      string `json:"max_order_rate"`
	StartingEquityUSD string `json:"starting_equity_usd"`
}

// DocStrategy is the strategy section.
type DocStrategy struct {
	Binary string `json:"binary"`
	Config string `json:"config,omitempty"`
}

// Document returns s in the documented shape.
func (s *Spec) Document() Document {
	d := Document{Version: s.Version, Environment: DocEnvironment{Name: s.Name}, TTLHours: s.TTLHours,
		MarketData: DocMarketData{Mode: s.MarketData.Mode},
		RiskConfig: DocRisk{MaxPositionUSD: s.Risk.MaxPositionUSD.String(), MaxDrawdownPct: s.Risk.MaxDrawdownPct.String(),
			MaxOrderRate: s.Risk.MaxOrderRate.String(), StartingEquityUSD: s.Risk.StartingEquityUSD.String()},
		Strategy: DocStrategy{Binary: s.Strategy.Binary, Config: s.Strategy.Config}}
	if !s.MarketData.ReplayStart.IsZero() {
		st, en := s.MarketData.ReplayStart, s.MarketData.ReplayEnd
		d.MarketData.ReplayStart, d.MarketData.ReplayEnd = &st, &en
		d.MarketData.ReplaySpeed = s.MarketData.ReplaySpeed
		if s.MarketData.ReplaySpeed == 0 {
			d.MarketData.ReplaySpeed = "max"
		}
	}
	for _, e := range s.Exchanges {
		x := DocExchange{Name: e.Name, Type: e.Type, Sandbox: true, Venue: e.Venue}
		for _, in := range e.Instruments {
			x.Instruments = append(x.Instruments, DocInstrument{Written: in.Written, Symbol: in.Symbol})
		}
		d.Exchanges = append(d.Exchanges, x)
	}
	return d
}
