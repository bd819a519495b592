package proto

import "strconv"

// VenueID identifies a venue in the header. The numbers are part of the wire
// format: they never change meaning, and new venues get new numbers. A venue is
// one market of one exchange (Binance spot and Binance USD-M futures are two
// venues), which is how the spot and perpetual instruments of the same symbol
// stay apart: "btcusdt" on "binance" and "btcusdt" on "binance-perp".
type VenueID uint16

// Venue ids. Zero means unknown.
const (
	VenueUnknown     VenueID = 0
	VenueBinance     VenueID = 1 // Binance spot
	VenueBinancePerp VenueID = 2 // Binance USD-M perpetual futures
	VenueBybit       VenueID = 3 // Bybit v5 spot
	VenueBybitPerp   VenueID = 4 // Bybit v5 linear perpetuals
	VenueBinanceUS   VenueID = 5 // Binance.US spot: the binance protocol, another exchange
)

// LocalVenueIDs starts the site-local ids: an installation's feed
// configuration assigns them to venue instances of its own (a second
// endpoint of a known protocol). Their meaning is local; subscribers know
// such a venue by its subjects.
const LocalVenueIDs VenueID = 1024

// venueNames are the subject tokens of the venues, indexed by id.
var venueNames = [...]string{
	VenueUnknown:     "",
	VenueBinance:     "binance",
	VenueBinancePerp: "binance-perp",
	VenueBybit:       "bybit",
	VenueBybitPerp:   "bybit-perp",
	VenueBinanceUS:   "binance-us",
}

// String returns the venue's subject token, or "venue-<n>" for an id this
// version does not know.
func (v VenueID) String() string {
	if int(v) < len(venueNames) && v != VenueUnknown {
		return venueNames[v]
	}
	return "venue-" + strconv.FormatUint(uint64(v), 10)
}

// VenueByName returns the id of a venue subject token.
func VenueByName(name string) (VenueID, bool) {
	for i, n := range venueNames {
		if n != "" && n == name {
			return VenueID(i), true
		}
	}
	return VenueUnknown, false
}
