package record_test

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/record"
	"github.com/paddockhq/paddock/replay"
)

// dump writes a zip holding one CSV, as Binance publishes them, and its
// .CHECKSUM; it returns both paths.
func dump(t *testing.T, name, csv string) (string, string) {
	dir := t.TempDir()
	zp := filepath.Join(dir, name+".zip")
	f, _ := os.Create(zp)
	zw := zip.NewWriter(f)
	w, _ := zw.Create(name + ".csv")
	_, _ = w.Write([]byte(csv))
	_ = zw.Close()
	_ = f.Close()
	raw, _ := os.ReadFile(zp)
	sum := sha256.Sum256(raw)
	cp := zp + ".CHECKSUM"
	_ = os.WriteFile(cp, []byte(hex.EncodeToString(sum[:])+"  "+name+".zip\n"), 0o644)
	return zp, cp
}

func jsServer(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	nc := natstest.Connect(t, ns.ClientURL())
	js, _ := jetstream.New(nc)
	if _, err := record.Ensure(context.Background(), js, "binance", record.Config{}); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// TestImportThenReplay: a day of Binance spot trades (no header row, times
// in microseconds, as from 2025) is imported, flagged as such, covers its
// range, and replays in order with its prices, sides and ids.
func TestImportThenReplay(t *testing.T) {
	nc, js := jsServer(t)
	day := time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	for i := range 100 {
		ts := day.Add(time.Duration(i) * time.Minute).UnixMicro()
		fmt.Fprintf(&b, "%d,8%d.5,0.0%d,1.0,%d,%s,True\n", 1000+i, i%10, 1+i%9, ts, map[bool]string{true: "True", false: "False"}[i%2 == 0])
	}
	zp, cp := dump(t, "BTCUSDT-trades-2025-03-04", b.String())
	res, err := record.Import(t.Context(), js, "binance", "btcusdt", record.SpotTrades, zp, cp)
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 100 || !res.First.Equal(day) || !res.Last.Equal(day.Add(99*time.Minute)) {
		t.Fatalf("imported %+v", res)
	}
	rgs, err := record.Coverage(t.Context(), js, "binance", "btcusdt")
	if err != nil || len(rgs) != 1 || !rgs[0].Imported || !rgs[0].First.Equal(day) || !rgs[0].Last.Equal(day.Add(99*time.Minute)) {
		t.Fatalf("coverage %v %v", rgs, err)
	}
	// Coverage is the instrument's: another symbol of the venue is not
	// recorded, and a range past the imported day is not covered.
	if _, err := record.Coverage(t.Context(), js, "binance", "ethusdt"); !errors.Is(err, record.ErrNotRecorded) || err.Error() != "nothing of binance ethusdt is recorded" {
		t.Fatalf("ethusdt: %v", err)
	}
	if err := record.Check(t.Context(), js, "binance", "btcusdt", day.Add(time.Minute), day.Add(10*time.Minute)); err != nil {
		t.Fatalf("a covered range: %v", err)
	}
	err = record.Check(t.Context(), js, "binance", "btcusdt", day.Add(time.Minute), day.Add(3*time.Hour))
	if want := "2025-03-04T00:01:00Z .. 2025-03-04T03:00:00Z is not covered: binance btcusdt recorded 2025-03-04T00:00:00Z .. 2025-03-04T01:39:00Z (imported, 1 days, no books)"; err == nil || err.Error() != want {
		t.Fatalf("an uncovered range: %v\nwant %s", err, want)
	}
	var mu sync.Mutex
	var got []proto.Message
	sub, _ := nc.Subscribe("replay.imp.market.data.>", func(m *nats.Msg) {
		pm, err := proto.Decode(append([]byte(nil), m.Data...))
		if err == nil {
			mu.Lock()
			got = append(got, pm)
			mu.Unlock()
		}
	})
	defer sub.Unsubscribe()
	_ = nc.Flush()
	start, end := day.Add(10*time.Minute), day.Add(20*time.Minute)
	r, err := replay.New(js, nc, replay.Config{Prefix: "replay.imp", Instruments: []replay.Instrument{{Venue: "binance", Symbol: "btcusdt"}},
		Start: start, End: end, Lookback: time.Minute}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = r.Run(ctx) }()
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the replay did not finish")
	}
	_ = nc.Flush()
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if uint64(n) >= r.Published() {
			break
		}
		time.Sleep(5 * time.Millisecond) // the subscriber catches up
	}
	if len(got) != 10 {
		t.Fatalf("replayed %d trades, want the 10 of [%s, %s)", len(got), start, end)
	}
	for i, m := range got {
		tr, err := m.AsTrade()
		if err != nil || m.Flags()&(proto.FlagImported|proto.FlagReplay) != proto.FlagImported|proto.FlagReplay || m.Seq() != uint64(i+1) ||
			tr.TradeID() != uint64(1010+i) || record.Time(m) != day.Add(time.Duration(10+i)*time.Minute) {
			t.Fatalf("trade %d: %v flags %b seq %d id %d at %s", i, err, m.Flags(), m.Seq(), tr.TradeID(), record.Time(m))
		}
		wantSide := proto.SideBuy
		if (10+i)%2 == 0 {
			wantSide = proto.SideSell // the buyer was the maker
		}
		if tr.Side() != wantSide {
			t.Fatalf("trade %d side %v", i, tr.Side())
		}
	}
}

// TestImportRefusesBadDumps: a dump whose checksum, shape, numbers or
// order are wrong is refused with the line, and nothing is stored.
func TestImportRefusesBadDumps(t *testing.T) {
	_, js := jsServer(t)
	ms := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for _, tc := range []struct {
		name, kind, csv, want string
		badSum                bool
	}{
		{"checksum", "trades", fmt.Sprintf("1,1.0,1.0,1.0,%d,True,True\n", ms), "its checksum file says", true},
		{"columns", "trades", fmt.Sprintf("1,1.0,1.0,%d,True,True\n", ms), "line 1: 6 columns", false},
		{"decimal", "trades", fmt.Sprintf("1,1.0,1.0,1.0,%d,True,True\n2,1e5,1.0,1.0,%d,True,True\n", ms, ms+1), "line 2: price \"1e5\" is not a decimal", false},
		{"order", "trades", fmt.Sprintf("1,1.0,1.0,1.0,%d,True,True\n2,1.0,1.0,1.0,%d,True,True\n", ms+5, ms), "line 2: out of order", false},
		{"boolean", "aggTrades", fmt.Sprintf("1,1.0,1.0,1,1,%d,yes,True\n", ms), "is_buyer_maker \"yes\"", false},
		{"kind", "klines", "1\n", "unknown kind", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zp, cp := dump(t, "BTCUSDT-"+tc.kind+"-2024-05-01", tc.csv)
			if tc.badSum {
				_ = os.WriteFile(cp, []byte(strings.Repeat("0", 64)+"  x.zip\n"), 0o644)
			}
			_, err := record.Import(t.Context(), js, "binance", "btcusdt", record.Kind(tc.kind), zp, cp)
			if !errors.Is(err, record.ErrDump) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := record.Coverage(t.Context(), js, "binance", "btcusdt"); !errors.Is(err, record.ErrNotRecorded) {
		t.Fatalf("a refused import stored something: %v", err)
	}
}

// TestImportFuturesWithHeader: USD-M aggTrades carry a header row and
// milliseconds; both are detected.
func TestImportFuturesWithHeader(t *testing.T) {
	_, js := jsServer(t)
	ms := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	csv := "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n" +
		fmt.Sprintf("7,65000.10,0.002,1,2,%d,false\n8,65000.20,0.001,3,3,%d,true\n", ms, ms+1)
	zp, cp := dump(t, "BTCUSDT-aggTrades-2024-05-01", csv)
	res, err := record.Import(t.Context(), js, "binance", "btcusdt", record.FuturesAggTrades, zp, cp)
	if err != nil || res.Messages != 2 || res.First.UnixMilli() != ms {
		t.Fatalf("%+v %v", res, err)
	}
}
