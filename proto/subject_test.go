package proto

import (
	"errors"
	"testing"
)

func TestDataSubject(t *testing.T) {
	for _, tc := range []struct {
		venue, inst string
		ev          Event
		want        string
		err         error
	}{
		{"binance", "btcusdt", EventTrades, "market.data.binance.btcusdt.trades", nil},
		{"binance-perp", "btcusdt", EventOrderbook, "market.data.binance-perp.btcusdt.orderbook", nil},
		{"bybit", "1000pepeusdt", EventBBO, "market.data.bybit.1000pepeusdt.bbo", nil},
		{"binance", "BTCUSDT", EventTrades, "", ErrToken},
		{"binance", "btc.usdt", EventTrades, "", ErrToken},
		{"binance", "btc usdt", EventTrades, "", ErrToken},
		{"binance", "*", EventTrades, "", ErrToken},
		{"binance", ">", EventTrades, "", ErrToken},
		{"", "btcusdt", EventTrades, "", ErrToken},
		{"binance", "", EventTrades, "", ErrToken},
		{"binance", "btc\tusdt", EventTrades, "", ErrToken},
		{"binance", "btcusdt", Event(9), "", ErrSubject},
		{"binance", string(make([]byte, 65)), EventTrades, "", ErrToken},
	} {
		got, err := DataSubject(tc.venue, tc.inst, tc.ev)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("DataSubject(%q, %q, %v) = %q, %v; want %q, %v", tc.venue, tc.inst, tc.ev, got, err, tc.want, tc.err)
		}
		if err != nil {
			continue
		}
		sub, err := ParseSubject(got)
		if err != nil || sub != (Subject{Kind: KindData, Venue: tc.venue, Instrument: tc.inst, Event: tc.ev}) {
			t.Errorf("ParseSubject(%q) = %+v, %v", got, sub, err)
		}
	}
}

func TestParseSubject(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Subject
		ok   bool
	}{
		{"market.snapshot.binance.ethusdt", Subject{Kind: KindSnapshot, Venue: "binance", Instrument: "ethusdt"}, true},
		{"market.health.binance-perp", Subject{Kind: KindHealth, Venue: "binance-perp"}, true},
		{"market.data.binance.btcusdt.trades", Subject{Kind: KindData, Venue: "binance", Instrument: "btcusdt", Event: EventTrades}, true},
		{"market.data.binance.btcusdt", Subject{}, false},
		{"market.data.binance.btcusdt.trades.extra", Subject{}, false},
		{"market.data.binance.btcusdt.quotes", Subject{}, false},
		{"market.data.binance..trades", Subject{}, false},
		{"market.data.binance.*.trades", Subject{}, false},
		{"market.data.>", Subject{}, false},
		{"market.health.", Subject{}, false},
		{"market.health.binance.x", Subject{}, false},
		{"market.snapshot.binance", Subject{}, false},
		{"env.x.orders", Subject{}, false},
		{"", Subject{}, false},
	} {
		got, err := ParseSubject(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSubject(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrSubject) {
			t.Errorf("ParseSubject(%q) error %v does not wrap ErrSubject", tc.in, err)
		}
	}
}

func TestOtherSubjects(t *testing.T) {
	if s, err := SnapshotSubject("binance", "btcusdt"); s != "market.snapshot.binance.btcusdt" || err != nil {
		t.Errorf("SnapshotSubject = %q, %v", s, err)
	}
	if s, err := HealthSubject("binance"); s != "market.health.binance" || err != nil {
		t.Errorf("HealthSubject = %q, %v", s, err)
	}
	if s, err := DataWildcard("binance", "btcusdt"); s != "market.data.binance.btcusdt.*" || err != nil {
		t.Errorf("DataWildcard = %q, %v", s, err)
	}
	if _, err := HealthSubject("bin.ance"); !errors.Is(err, ErrToken) {
		t.Errorf("HealthSubject with a dot: %v", err)
	}
}

func TestParseSubjectAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(1000, func() { _, _ = ParseSubject("market.data.binance.btcusdt.orderbook") }); n != 0 {
		t.Fatalf("ParseSubject allocates %v times, want 0", n)
	}
}

func TestVenues(t *testing.T) {
	for _, v := range []VenueID{VenueBinance, VenueBinancePerp, VenueBybit, VenueBybitPerp} {
		got, ok := VenueByName(v.String())
		if !ok || got != v {
			t.Errorf("VenueByName(%q) = %v, %v", v.String(), got, ok)
		}
		if err := CheckToken(v.String()); err != nil {
			t.Errorf("venue %d name %q is not a valid token: %v", v, v, err)
		}
	}
	if _, ok := VenueByName(""); ok {
		t.Error("empty venue name resolved")
	}
	if got := VenueID(999).String(); got != "venue-999" {
		t.Errorf("VenueID(999) = %q", got)
	}
}
