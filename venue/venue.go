// Package venue is the one registry of the venues paddock knows: for each,
// its subject token and wire id, the exchange and market type a
// .dev-env.yaml names it by, the adapter family that carries it, its
// production endpoints and its default paper fee schedule. The spec's venue
// list, the feed's configuration (defaults, and which venues it can carry)
// and the node's fee table all read it, so a venue is added in one place.
// It is plain data, read only: safe for concurrent use.
package venue

import (
	"sort"

	"github.com/paddockhq/paddock/proto"
)

// Venue is one market of one exchange.
type Venue struct {
	Name     string        // subject token: binance, binance-perp, ...
	ID       proto.VenueID // in every message header
	Exchange string        // as .dev-env.yaml writes it: binance, bybit
	Type     string        // spot | perpetual
	// Adapter is the feed's adapter family for the venue ("binance" for
	// Binance spot and USD-M); empty when the feed cannot carry it yet.
	Adapter string
	// Production endpoints, the feed's defaults.
	WSURL, RESTURL string
	// TradeStream is the venue's trade stream where it has a choice.
	TradeStream string
	// MakerFee and TakerFee are the default retail schedule, as fractions of
	// notional (exact decimal strings), for the paper venue.
	MakerFee, TakerFee string
}

// The registry.
var all = []Venue{
	{Name: "binance", ID: proto.VenueBinance, Exchange: "binance", Type: "spot", Adapter: "binance",
		WSURL: "wss://stream.binance.com:9443", RESTURL: "https://api.binance.com", TradeStream: "trade", MakerFee: "0.001", TakerFee: "0.001"},
	{Name: "binance-perp", ID: proto.VenueBinancePerp, Exchange: "binance", Type: "perpetual", Adapter: "binance",
		WSURL: "wss://fstream.binance.com", RESTURL: "https://fapi.binance.com", TradeStream: "aggTrade", MakerFee: "0.0002", TakerFee: "0.0005"},
	{Name: "bybit", ID: proto.VenueBybit, Exchange: "bybit", Type: "spot", Adapter: "bybit",
		WSURL: "wss://stream.bybit.com/v5/public/spot", MakerFee: "0.001", TakerFee: "0.001"},
	{Name: "bybit-perp", ID: proto.VenueBybitPerp, Exchange: "bybit", Type: "perpetual", Adapter: "bybit",
		WSURL: "wss://stream.bybit.com/v5/public/linear", MakerFee: "0.0002", TakerFee: "0.00055"},
	// An instance of the binance kind: the same adapter and protocol under
	// its own name, wire id, endpoints and fees. A feed runs it beside
	// binance, each on its own subjects.
	{Name: "binance-us", ID: proto.VenueBinanceUS, Exchange: "binance-us", Type: "spot", Adapter: "binance",
		WSURL: "wss://stream.binance.us:9443", RESTURL: "https://api.binance.us", TradeStream: "trade", MakerFee: "0.001", TakerFee: "0.001"},
}

// All returns every venue, in wire-id order.
func All() []Venue { return append([]Venue(nil), all...) }

// ByName finds a venue by its subject token.
func ByName(name string) (Venue, bool) {
	for _, v := range all {
		if v.Name == name {
			return v, true
		}
	}
	return Venue{}, false
}

// ByExchange finds the venue of an exchange's market type, as a
// .dev-env.yaml declares it.
func ByExchange(exchange, typ string) (Venue, bool) {
	for _, v := range all {
		if v.Exchange == exchange && v.Type == typ {
			return v, true
		}
	}
	return Venue{}, false
}

// Exchanges lists the exchange names, sorted.
func Exchanges() []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range all {
		if !seen[v.Exchange] {
			seen[v.Exchange] = true
			out = append(out, v.Exchange)
		}
	}
	sort.Strings(out)
	return out
}

// Carried lists the names of the venues the feed has an adapter for.
func Carried() []string {
	var out []string
	for _, v := range all {
		if v.Adapter != "" {
			out = append(out, v.Name)
		}
	}
	return out
}
