package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paddockhq/paddock/internal/natsconn"
	"github.com/paddockhq/paddock/natsauth"
	"github.com/paddockhq/paddock/record"
	"github.com/paddockhq/paddock/venue"
)

func init() {
	commands["record"] = command{"market data recordings: coverage (what a replay environment can replay), import (backfill a day)", runRecord}
}

func runRecord(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(stdout, "usage: paddock record coverage|import [-nats-url URL] [-nats-creds FILE]\n\n"+
			"  coverage   what is recorded of every instrument (live, from its first checkpoint; and imported days):\n"+
			"             a replay's replay_start and replay_end must lie inside one of its ranges\n"+
			"  import -venue V -symbol S -kind K FILE.zip [-checksum FILE.zip.CHECKSUM]\n"+
			"             backfill a day from a Binance public data dump; kinds: trades, aggTrades (spot),\n"+
			"             um-aggTrades, um-bookTicker (USD-M futures)\n")
		if len(args) == 0 {
			return usageError{"paddock record: a command is required (coverage)"}
		}
		return nil
	}
	if args[0] != "coverage" && args[0] != "import" {
		return usageError{fmt.Sprintf("paddock record: unknown command %q (coverage, import)", args[0])}
	}
	fs := flag.NewFlagSet("record "+args[0], flag.ContinueOnError)
	v := fs.String("venue", "", "import: the venue (binance, binance-perp)")
	sym := fs.String("symbol", "", "import: the instrument's subject token (btcusdt)")
	kind := fs.String("kind", "", "import: trades, aggTrades, um-aggTrades or um-bookTicker")
	sum := fs.String("checksum", "", "import: the .CHECKSUM file (default FILE.zip.CHECKSUM)")
	fs.SetOutput(stderr)
	url := fs.String("nats-url", envDefault("PADDOCK_NATS_URL", "nats://127.0.0.1:4222"), "NATS URL [PADDOCK_NATS_URL]")
	creds := fs.String("nats-creds", envDefault("PADDOCK_NATS_CREDS", ""), "NATS credentials (make run: .state/nats-auth/envmgr.creds) [PADDOCK_NATS_CREDS]")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	opts := []nats.Option{nats.Name("paddock-record")}
	if *creds != "" {
		opts = append(opts, nats.UserCredentials(*creds), nats.CustomInboxPrefix(natsauth.ManagerInbox))
	}
	nc, drain, err := natsconn.Connect(*url, opts...)
	if err != nil {
		return err
	}
	defer func() { _ = drain() }()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if args[0] == "import" {
		if len(fs.Args()) != 1 || *v == "" || *sym == "" || *kind == "" {
			return usageError{"usage: paddock record import -venue V -symbol S -kind K FILE.zip [-checksum FILE]"}
		}
		file := fs.Args()[0]
		if *sum == "" {
			*sum = file + ".CHECKSUM"
		}
		if _, err := record.Open(ctx, js, *v); err != nil {
			return err
		}
		res, err := record.Import(ctx, js, *v, *sym, record.Kind(*kind), file, *sum)
		if err != nil {
			return exitError{exitRefused, err}
		}
		fmt.Fprintf(stdout, "imported %d messages of %s %s, %s .. %s (flagged imported)\n", res.Messages, *v, *sym,
			res.First.Format(time.RFC3339), res.Last.Format(time.RFC3339))
		return nil
	}
	found := 0
	for _, v := range venue.All() {
		syms, err := record.Instruments(ctx, js, v.Name)
		if err != nil {
			return fmt.Errorf("coverage of %s: %w", v.Name, err)
		}
		for _, sym := range syms {
			rs, err := record.Coverage(ctx, js, v.Name, sym)
			if errors.Is(err, record.ErrNotRecorded) {
				continue
			}
			if err != nil {
				return fmt.Errorf("coverage of %s %s: %w", v.Name, sym, err)
			}
			for _, r := range rs {
				found++
				fmt.Fprintln(stdout, r.String())
			}
		}
	}
	if found == 0 {
		fmt.Fprintln(stdout, "nothing is recorded (the feed records with `record:` in its configuration; make run does)")
	}
	return nil
}
