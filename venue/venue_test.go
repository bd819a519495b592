package venue

import (
	"testing"

	"github.com/paddockhq/paddock/proto"
)

// TestRegistryAgreesWithTheWireFormat: every venue's name is the subject
// token its wire id prints as, and names, ids and exchange/type pairs are
// unique; fees are exact decimals.
func TestRegistryAgreesWithTheWireFormat(t *testing.T) {
	names, ids, pairs := map[string]bool{}, map[proto.VenueID]bool{}, map[[2]string]bool{}
	for _, v := range All() {
		if v.ID.String() != v.Name {
			t.Errorf("%s: wire id %d prints as %s", v.Name, v.ID, v.ID)
		}
		if id, ok := proto.VenueByName(v.Name); !ok || id != v.ID {
			t.Errorf("%s: proto knows it as %d", v.Name, id)
		}
		if names[v.Name] || ids[v.ID] || pairs[[2]string{v.Exchange, v.Type}] {
			t.Errorf("%s: listed twice", v.Name)
		}
		names[v.Name], ids[v.ID], pairs[[2]string{v.Exchange, v.Type}] = true, true, true
		if v.Type != "spot" && v.Type != "perpetual" {
			t.Errorf("%s: type %q", v.Name, v.Type)
		}
		for _, f := range []string{v.MakerFee, v.TakerFee} {
			if _, err := proto.ParseUDecimal(f); err != nil {
				t.Errorf("%s: fee %q: %v", v.Name, f, err)
			}
		}
		if v.Adapter != "" && v.WSURL == "" || v.Adapter == "binance" && v.RESTURL == "" {
			t.Errorf("%s: carried without production endpoints", v.Name)
		}
	}
	if v, ok := ByExchange("binance", "perpetual"); !ok || v.Name != "binance-perp" {
		t.Errorf("binance perpetual: %+v", v)
	}
	if len(Carried()) == 0 || len(Exchanges()) < 2 {
		t.Errorf("carried %v, exchanges %v", Carried(), Exchanges())
	}
}
