package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/proto"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

var corpusNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func loadSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	raw, err := os.ReadFile("dev-env.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("dev-env.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("dev-env.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// schemaAccepts validates a YAML file against the JSON Schema the way an
// editor does: YAML parsed to plain values first.
func schemaAccepts(s *jsonschema.Schema, raw []byte) bool {
	var v any
	if err := yaml.Unmarshal(raw, &v); err != nil || v == nil {
		return false
	}
	js, err := json.Marshal(v)
	if err != nil {
		return false
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return false
	}
	return s.Validate(inst) == nil
}

// TestCorpus keeps the Go validation and the JSON Schema in agreement: every
// good file passes both; every bad file fails Go validation with the errors
// it names in "# want:" lines, and fails the schema too unless it says
// "# schema: accepts" (rules a schema cannot express).
func TestCorpus(t *testing.T) {
	schema := loadSchema(t)
	o := Options{Now: corpusNow, PRNumber: 42}
	goods, _ := filepath.Glob("testdata/good/*.yaml")
	bads, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(goods) < 3 || len(bads) < 20 {
		t.Fatalf("corpus too small: %d good, %d bad", len(goods), len(bads))
	}
	for _, f := range goods {
		t.Run(f, func(t *testing.T) {
			raw, _ := os.ReadFile(f)
			if _, err := Parse(raw, o); err != nil {
				t.Errorf("Go validation rejects a good file: %v", err)
			}
			if !schemaAccepts(schema, raw) {
				t.Error("the JSON Schema rejects a good file")
			}
		})
	}
	for _, f := range bads {
		t.Run(f, func(t *testing.T) {
			raw, _ := os.ReadFile(f)
			_, err := Parse(raw, o)
			if err == nil {
				t.Fatal("Go validation accepts a bad file")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			var wants []string
			schemaOnlyGo := false
			for _, line := range strings.Split(string(raw), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, w)
				}
				if strings.HasPrefix(line, "# schema: accepts") {
					schemaOnlyGo = true
				}
			}
			if len(wants) == 0 {
				t.Fatal("bad corpus file without a # want: line")
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if got := schemaAccepts(schema, raw); got != schemaOnlyGo {
				t.Errorf("JSON Schema accepts=%v, corpus says %v", got, schemaOnlyGo)
			}
		})
	}
}

func TestParsedValues(t *testing.T) {
	raw, _ := os.ReadFile("testdata/good/full.yaml")
	s, err := Parse(raw, Options{Now: corpusNow})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "mean-reversion-v3-test" || s.TTLHours != 48 || s.MarketData.Mode != "live" || s.Strategy.Config != "strategies/mean-reversion-v3.toml" {
		t.Fatalf("%+v", s)
	}
	if s.Exchanges[0].Venue != "binance" || s.Exchanges[1].Venue != "bybit-perp" ||
		s.Exchanges[0].Instruments[0] != (Instrument{Written: "BTC/USDT", Symbol: "btcusdt"}) || s.Exchanges[1].Instruments[0].Symbol != "btcusdt" {
		t.Fatalf("exchanges %+v", s.Exchanges)
	}
	if s.Risk.MaxPositionUSD != (proto.Decimal{Mant: 1000}) || s.Risk.MaxDrawdownPct != (proto.Decimal{Mant: 5}) ||
		s.Risk.StartingEquityUSD != (proto.Decimal{Mant: 2500050, Exp: -2}) {
		t.Fatalf("risk %+v", s.Risk)
	}
	raw, _ = os.ReadFile("testdata/good/minimal.yaml")
	s, err = Parse(raw, Options{Now: corpusNow, PRNumber: 42})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "pr-42" || s.TTLHours != DefaultTTLHours || s.Risk.MaxPositionUSD != (proto.Decimal{Mant: 2505, Exp: -1}) ||
		s.Risk.StartingEquityUSD != DefaultStartingEquityUSD {
		t.Fatalf("defaults: %+v", s)
	}
	raw, _ = os.ReadFile("testdata/good/replay.yaml")
	s, err = Parse(raw, Options{Now: corpusNow})
	if err != nil || !s.MarketData.ReplayStart.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("replay: %+v %v", s, err)
	}
}

func TestNameFromBranch(t *testing.T) {
	raw, _ := os.ReadFile("testdata/good/minimal.yaml")
	for _, tc := range []struct{ branch, want string }{
		{"feature/Mean-Reversion_v3!!", "feature-mean-reversion-v3"},
		{"UPPER", "upper"},
		{"x/" + strings.Repeat("ab", 40), "x-" + strings.Repeat("ab", 19)},
	} {
		s, err := Parse(raw, Options{Now: corpusNow, Branch: tc.branch})
		if err != nil || s.Name != tc.want {
			t.Errorf("branch %q: name %q, %v; want %q", tc.branch, s.Name, err, tc.want)
		}
	}
	if _, err := Parse(raw, Options{Now: corpusNow, Branch: "///"}); err == nil || !strings.Contains(err.Error(), "nothing to make one from") {
		t.Errorf("unusable branch: %v", err)
	}
	if _, err := Parse(raw, Options{Now: corpusNow}); err == nil || !strings.Contains(err.Error(), "set environment.name") {
		t.Errorf("no name source: %v", err)
	}
}

func TestTTLApproval(t *testing.T) {
	raw, _ := os.ReadFile("testdata/bad/ttl-needs-approval.yaml")
	if s, err := Parse(raw, Options{Now: corpusNow, TTLApproved: true}); err != nil || s.TTLHours != 120 {
		t.Fatalf("approved 120h: %v", err)
	}
	full, _ := os.ReadFile("testdata/good/full.yaml")
	long := bytes.Replace(full, []byte("ttl_hours: 48"), []byte("ttl_hours: 800"), 1)
	if _, err := Parse(long, Options{Now: corpusNow, TTLApproved: true}); err == nil || !strings.Contains(err.Error(), "absolute limit of 720") {
		t.Fatalf("800h approved: %v", err)
	}
}

func TestHostileInput(t *testing.T) {
	big := bytes.Repeat([]byte("# padding\n"), MaxFileBytes/10+1)
	if _, err := Parse(big, Options{}); err == nil || !strings.Contains(err.Error(), "limit is") {
		t.Errorf("oversized file: %v", err)
	}
	laughs := "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	done := make(chan error, 1)
	go func() { _, err := Parse([]byte(laughs), Options{}); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("alias bomb: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("alias bomb took more than 5s")
	}
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	if _, err := Parse([]byte("version: "+deep), Options{}); err == nil {
		t.Error("deep nesting accepted")
	}
}

// FuzzParse: no input makes Parse panic, and an accepted spec always has a
// valid name, venues and symbols.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			raw, _ := os.ReadFile(file)
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Parse(raw, Options{Now: corpusNow, PRNumber: 1})
		if err != nil {
			return
		}
		if CheckName(s.Name) != nil {
			t.Fatalf("accepted name %q", s.Name)
		}
		for _, e := range s.Exchanges {
			if _, ok := proto.VenueByName(e.Venue); !ok {
				t.Fatalf("accepted venue %q", e.Venue)
			}
			for _, in := range e.Instruments {
				if proto.CheckToken(in.Symbol) != nil {
					t.Fatalf("accepted symbol %q", in.Symbol)
				}
			}
		}
	})
}

// TestMissingFieldPointsAtItsParent: a required field that is missing has
// no line of its own; the error carries its section's.
func TestMissingFieldPointsAtItsParent(t *testing.T) {
	raw := []byte("version: 1\nenvironment: {name: x}\nexchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]\n" +
		"market_data: {mode: live}\nrisk_config:\n  max_position_usd: 10\n  max_drawdown_pct: 5\nstrategy: {binary: s}\n")
	_, err := Parse(raw, Options{})
	var se *Errors
	if !errors.As(err, &se) || len(se.List) != 1 || se.List[0].Path != "risk_config.max_order_rate" || se.List[0].Line != 5 {
		t.Fatalf("%v", err)
	}
}

// TestDocumentIsTheSnakeCaseSpec: validate -o json prints the spec's
// documented field names and exact decimals.
func TestDocumentIsTheSnakeCaseSpec(t *testing.T) {
	raw, _ := os.ReadFile("testdata/good/full.yaml")
	s, err := Parse(raw, Options{Now: corpusNow})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s.Document())
	for _, want := range []string{`"risk_config":{"max_position_usd":"1000"`, `"market_data":{"mode":"live"}`, `"environment":{"name":"mean-reversion-v3-test"}`,
		`"venue":"bybit-perp"`, `"ttl_hours":48`, `"version":1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("document lacks %s:\n%s", want, b)
		}
	}
}
