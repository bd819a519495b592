package record

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/venue"
)

// Kind is a historical dump format this importer reads (Binance's public
// data: ../shared/reference/binance-public-data/FORMAT.md).
type Kind string

const (
	SpotTrades       Kind = "trades"        // id, price, qty, quote_qty, time, is_buyer_maker, is_best_match
	SpotAggTrades    Kind = "aggTrades"     // agg_trade_id, price, quantity, first_trade_id, last_trade_id, transact_time, is_buyer_maker, is_best_match
	FuturesAggTrades Kind = "um-aggTrades"  // agg_trade_id, price, quantity, first_trade_id, last_trade_id, transact_time, is_buyer_maker
	FuturesBookTick  Kind = "um-bookTicker" // update_id, best_bid_price, best_bid_qty, best_ask_price, best_ask_qty, transaction_time, event_time
)

// Kinds lists what Import reads.
var Kinds = []Kind{SpotTrades, SpotAggTrades, FuturesAggTrades, FuturesBookTick}

// ImportedPrefix starts imported.<venue>.<instrument>.<yyyymmdd>, where
// imported days are stored (beside recording.<venue> in the venue's
// stream): a replay finds them by instrument and day, since their store
// time is the import's.
const ImportedPrefix = "imported"

// ImportedSubject is where a day of an instrument's imported data is
// stored.
func ImportedSubject(venue, instrument string, day time.Time) string {
	return ImportedPrefix + "." + venue + "." + instrument + "." + day.UTC().Format("20060102")
}

// ErrDump is a dump that cannot be imported; it says which line and why.
var ErrDump = errors.New("record: cannot import")

// Imported says what an import stored.
type Imported struct {
	Messages    int
	First, Last time.Time
}

// Import checks zipPath against its .CHECKSUM (SHA-256; "<hex>  <name>"),
// reads its one CSV of the given kind (a header row and the time unit are
// detected, not assumed), and stores its rows as venue's symbol messages,
// flagged imported, on the days' ImportedSubject. Rows out of order or with
// a malformed number stop it with the line; nothing is stored then.
func Import(ctx context.Context, js jetstream.JetStream, venueName, symbol string, kind Kind, zipPath, checksumPath string) (Imported, error) {
	var res Imported
	v, ok := venue.ByName(venueName)
	if !ok {
		return res, fmt.Errorf("%w: unknown venue %q", ErrDump, venueName)
	}
	subjTrades, err := proto.DataSubject(venueName, symbol, proto.EventTrades)
	if err != nil {
		return res, err
	}
	subjBBO, _ := proto.DataSubject(venueName, symbol, proto.EventBBO)
	if err := checkSum(zipPath, checksumPath); err != nil {
		return res, err
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return res, fmt.Errorf("%w: %s: %v", ErrDump, zipPath, err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || !strings.HasSuffix(zr.File[0].Name, ".csv") {
		return res, fmt.Errorf("%w: %s holds %d files; a dump holds one CSV", ErrDump, zipPath, len(zr.File))
	}
	f, err := zr.File[0].Open()
	if err != nil {
		return res, err
	}
	defer f.Close()
	type day struct {
		subject string
		batch   []byte
		n       int
	}
	var days []*day
	var cur *day
	var seqT, seqB uint64
	err = parseDump(f, kind, func(r row) error {
		subj := ImportedSubject(venueName, symbol, r.t)
		if cur == nil || cur.subject != subj {
			cur = &day{subject: subj}
			days = append(days, cur)
		}
		h := proto.Header{Flags: proto.FlagImported, Venue: v.ID, EventTime: r.t.UnixNano(), RecvTime: r.t.UnixNano()}
		var raw []byte
		var err error
		if kind == FuturesBookTick {
			seqB++
			h.Seq = seqB
			raw, err = proto.AppendBBO(nil, &h, &proto.BBO{Bid: proto.Level{Price: r.bid, Qty: r.bidQty}, Ask: proto.Level{Price: r.ask, Qty: r.askQty}, UpdateID: r.id})
			cur.batch = appendFrame(cur.batch, subjBBO, raw)
		} else {
			seqT++
			h.Seq = seqT
			side := proto.SideBuy
			if r.buyerMaker {
				side = proto.SideSell // the buyer was the maker: a seller took
			}
			raw, err = proto.AppendTrade(nil, &h, &proto.Trade{Price: r.price, Qty: r.qty, TradeID: r.id, Side: side})
			cur.batch = appendFrame(cur.batch, subjTrades, raw)
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", r.line, err)
		}
		cur.n++
		if res.First.IsZero() {
			res.First = r.t
		}
		res.Last = r.t
		// Batches of a few hundred KB, as the live recorder stores them.
		if len(cur.batch) >= 256<<10 {
			cur = &day{subject: subj}
			days = append(days, cur)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	for _, d := range days {
		if d.n == 0 {
			continue
		}
		if _, err := js.Publish(ctx, d.subject, d.batch); err != nil {
			return res, fmt.Errorf("store %s: %w", d.subject, err)
		}
		res.Messages += d.n
	}
	return res, nil
}

// checkSum compares the zip's SHA-256 with its .CHECKSUM file.
func checkSum(zipPath, checksumPath string) error {
	raw, err := os.ReadFile(checksumPath)
	if err != nil {
		return fmt.Errorf("%w: checksum: %v", ErrDump, err)
	}
	want, _, _ := strings.Cut(strings.TrimSpace(string(raw)), " ")
	f, err := os.Open(zipPath)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, want) {
		return fmt.Errorf("%w: %s has SHA-256 %s, its checksum file says %s", ErrDump, zipPath, got, want)
	}
	return nil
}

type row struct {
	line                     int
	id                       uint64
	t                        time.Time
	price, qty               proto.Decimal
	buyerMaker               bool
	bid, bidQty, ask, askQty proto.Decimal
}

// parseDump reads the CSV rows of a dump, in order.
func parseDump(r io.Reader, kind Kind, fn func(row) error) error {
	var want, timeCol int
	switch kind {
	case SpotTrades:
		want, timeCol = 7, 4
	case SpotAggTrades:
		want, timeCol = 8, 5
	case FuturesAggTrades:
		want, timeCol = 7, 5
	case FuturesBookTick:
		want, timeCol = 7, 5
	default:
		return fmt.Errorf("%w: unknown kind %q (%v)", ErrDump, kind, Kinds)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var last time.Time
	var lastID uint64
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		cols := strings.Split(line, ",")
		bad := func(f string, a ...any) error {
			return fmt.Errorf("%w: line %d: %s", ErrDump, n, fmt.Sprintf(f, a...))
		}
		if len(cols) != want {
			return bad("%d columns, a %s row has %d", len(cols), kind, want)
		}
		if n == 1 {
			if _, err := strconv.ParseUint(cols[0], 10, 64); err != nil {
				continue // a header row
			}
		}
		id, err := strconv.ParseUint(cols[0], 10, 64)
		if err != nil {
			return bad("id %q is not a number", cols[0])
		}
		ts, err := strconv.ParseInt(cols[timeCol], 10, 64)
		if err != nil || ts <= 0 {
			return bad("time %q is not a number", cols[timeCol])
		}
		// Microseconds from 2025 on (16 digits), milliseconds before.
		t := time.UnixMilli(ts)
		if ts >= 1e15 {
			t = time.UnixMicro(ts)
		}
		t = t.UTC()
		if t.Before(last) || (kind != FuturesBookTick && id <= lastID && lastID != 0) {
			return bad("out of order (time %s after %s, id %d after %d)", t.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano), id, lastID)
		}
		last, lastID = t, id
		rw := row{line: n, id: id, t: t}
		dec := func(i int, name string) (proto.Decimal, error) {
			d, err := proto.ParseUDecimal(cols[i])
			if err != nil {
				return d, bad("%s %q is not a decimal", name, cols[i])
			}
			return d, nil
		}
		if kind == FuturesBookTick {
			if rw.bid, err = dec(1, "best_bid_price"); err == nil {
				if rw.bidQty, err = dec(2, "best_bid_qty"); err == nil {
					if rw.ask, err = dec(3, "best_ask_price"); err == nil {
						rw.askQty, err = dec(4, "best_ask_qty")
					}
				}
			}
		} else {
			if rw.price, err = dec(1, "price"); err == nil {
				rw.qty, err = dec(2, "quantity")
			}
			maker := cols[map[Kind]int{SpotTrades: 5, SpotAggTrades: 6, FuturesAggTrades: 6}[kind]]
			switch strings.ToLower(maker) {
			case "true":
				rw.buyerMaker = true
			case "false":
			default:
				if err == nil {
					err = bad("is_buyer_maker %q is not true or false", maker)
				}
			}
		}
		if err != nil {
			return err
		}
		if err := fn(rw); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: line %d: %v", ErrDump, n+1, err)
	}
	return nil
}
