package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/sandbox/client"
)

// strategyArg, as the first argument, makes the test binary the strategy
// process of TestBothModeTradesLiveBesideTheReplay (see TestMain): a real
// child of the node's supervisor, configured only by what the node passes.
const strategyArg = "paddock-test-strategy=both"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == strategyArg {
		if err := bothStrategy(); err != nil {
			fmt.Println("strategy error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// bothStrategy follows the live market and the replay side by side through
// the SDK, and prints a report line every 100 ms: how many book updates
// each delivered, each clock, and the fill of one market order on the
// live book (the node trades live in mode both).
func bothStrategy() error {
	env, err := client.FromEnv()
	if err != nil {
		return err
	}
	c, err := client.Connect(env)
	if err != nil {
		return err
	}
	defer c.Close()
	var mu sync.Mutex
	var liveN, replayN int
	var liveMid, replayMid string
	live, err := c.Market(client.Handlers{Book: func(b *client.Book, _, _ []proto.Level) {
		if m, ok := b.Mid(); ok {
			mu.Lock()
			liveN, liveMid = liveN+1, m.String()
			mu.Unlock()
		}
	}})
	if err != nil {
		return err
	}
	rep, err := c.ReplayMarket(client.Handlers{Book: func(b *client.Book, _, _ []proto.Level) {
		if m, ok := b.Mid(); ok {
			mu.Lock()
			replayN, replayMid = replayN+1, m.String()
			mu.Unlock()
		}
	}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = live.Run(ctx) }()
	go func() { _ = rep.Run(ctx) }()
	fill := "none"
	for range 600 {
		time.Sleep(100 * time.Millisecond) // a strategy's decision interval
		mu.Lock()
		ln, rn, lm, rm := liveN, replayN, liveMid, replayMid
		mu.Unlock()
		if fill == "none" && ln > 0 {
			o, err := c.Place(ctx, client.OrderRequest{Venue: "binance", Symbol: "btcusdt", Side: "buy", Type: "market", Qty: "0.001"})
			if err != nil {
				fill = "error:" + strings.ReplaceAll(err.Error(), " ", "_")
			} else {
				fill = string(o.Status) + "@" + o.AvgPrice
			}
		}
		fmt.Printf("both live=%d replay=%d live_clock=%d replay_clock=%d live_mid=%s replay_mid=%s fill=%s\n",
			ln, rn, live.Now().UnixNano(), rep.Now().UnixNano(), lm, rm, fill)
	}
	return nil
}

// TestBothModeTradesLiveBesideTheReplay: in market_data.mode both a node
// trades on the live feed while its replayer fills the environment's
// replay namespace; its strategy (a real child process, configured only by
// the node) follows both through the SDK at once: the live market on the
// wall clock, the replay on the recorded range's clock, and a market order
// fills on the live book.
func TestBothModeTradesLiveBesideTheReplay(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{StoreDir: t.TempDir()})
	s, began, _ := recordedSim(t, ns.ClientURL())
	recorded := time.Now()

	// The live market keeps moving while the node runs.
	stepCtx, stopSteps := context.WithCancel(t.Context())
	var steps sync.WaitGroup
	steps.Go(func() {
		for stepCtx.Err() == nil {
			s.Step(1)
			time.Sleep(20 * time.Millisecond) // a live market's pace
		}
	})
	defer func() { stopSteps(); steps.Wait() }()

	dir := t.TempDir()
	c := &Config{Name: envName, NATSURL: ns.ClientURL(), AdminListen: "127.0.0.1:0", FeedStaleSeconds: 2,
		Instruments:  []Instrument{{Venue: "binance", Symbol: "btcusdt"}},
		Risk:         RiskConfig{MaxPositionUSD: "100000", MaxDrawdownPct: "50", MaxOrderRate: "50", StartingEquityUSD: "100000"},
		APIKeyFile:   filepath.Join(dir, "api-key"),
		AdminKeyFile: filepath.Join(dir, "admin-key"),
		Strategy:     &StrategyConfig{Command: []string{os.Args[0], strategyArg}, Dir: dir},
		Replay:       &ReplayConfig{Mode: "both", Start: began.Add(400 * time.Millisecond), End: recorded.Add(-100 * time.Millisecond), Speed: 1}}
	_ = os.WriteFile(c.APIKeyFile, []byte("env-key-0123456789abcdef\n"), 0o600)
	_ = os.WriteFile(c.AdminKeyFile, []byte("admin-key-0123456789abcdef\n"), 0o600)
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	n, err := Start(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()

	report := regexp.MustCompile(`^both live=(\d+) replay=(\d+) live_clock=(\d+) replay_clock=(\d+) live_mid=(\S*) replay_mid=(\S*) fill=(\S+)$`)
	var last []string
	eventually(t, "the strategy to see both markets and a fill", func() bool {
		lines := n.sup.Logs(20)
		for i := len(lines) - 1; i >= 0; i-- {
			if m := report.FindStringSubmatch(strings.TrimSpace(lines[i])); m != nil {
				last = m
				ln, _ := strconv.Atoi(m[1])
				rn, _ := strconv.Atoi(m[2])
				return ln > 5 && rn > 5 && m[7] != "none"
			}
		}
		return false
	})
	liveClock, _ := strconv.ParseInt(last[3], 10, 64)
	replayClock, _ := strconv.ParseInt(last[4], 10, 64)
	if lc := time.Unix(0, liveClock); lc.Before(recorded) {
		t.Errorf("the live market's clock %s is in the recorded past (before %s)", lc, recorded)
	}
	if rc := time.Unix(0, replayClock); rc.Before(c.Replay.Start) || !rc.Before(c.Replay.End) {
		t.Errorf("the replay clock %s is outside [%s, %s)", rc, c.Replay.Start, c.Replay.End)
	}
	if !strings.HasPrefix(last[7], string(client.StatusFilled)+"@") {
		t.Fatalf("the market order: %s", last[7])
	}
	// The node's own book is the live one: it keeps moving after the
	// replay has delivered its whole range.
	select {
	case <-n.replayer.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the replay never finished")
	}
	upd := func() uint64 {
		st, _, _, _ := n.trader.Snapshot()
		if len(st.Books) != 1 || !st.Books[0].Live {
			return 0
		}
		return st.Books[0].Seq
	}
	before := upd()
	eventually(t, "the node's book to move on the live feed after the replay ended", func() bool { return upd() > before })
}
