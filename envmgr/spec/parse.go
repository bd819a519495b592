package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/paddockhq/paddock/proto"
	"gopkg.in/yaml.v3"
)

// Parse parses and validates a .dev-env.yaml. The error, when not nil, is an
// *Errors listing every problem with its line and field path.
func Parse(raw []byte, o Options) (*Spec, error) {
	errs := &Errors{}
	if len(raw) > MaxFileBytes {
		errs.add(0, 0, "", "file is %d bytes; the limit is %d", len(raw), MaxFileBytes)
		return nil, errs.err()
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			errs.add(0, 0, "", "the file is empty")
		} else {
			errs.add(yamlLine(err), 0, "", "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil, errs.err()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		errs.add(extra.Line, extra.Column, "", "a second YAML document; the file must hold exactly one")
	}
	w := &walker{errs: errs}
	s := &Spec{TTLHours: DefaultTTLHours}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		errs.add(0, 0, "", "the file is empty")
		return nil, errs.err()
	}
	// YAML features a declaration never needs are refused before anything
	// else, anywhere in the file: aliases (expansion bombs), anchors and
	// custom tags. The node tree does not expand aliases, so this is linear.
	if w.scanHostile(doc.Content[0]); len(errs.List) > 0 {
		return nil, errs.err()
	}
	w.spec(doc.Content[0], s)
	// The rules run even after structural errors, so that a file's problems
	// come back together; validate skips fields that already have one.
	validate(s, o, w.lines, errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return s, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// yamlLine extracts "line N" from a yaml.v3 syntax error.
func yamlLine(err error) int {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// walker converts the node tree, checking structure and types; semantic
// rules are in validate. lines remembers where each path was, for the
// semantic errors.
type walker struct {
	errs  *Errors
	lines map[string][2]int
}

func (w *walker) at(n *yaml.Node, p string) {
	if w.lines == nil {
		w.lines = map[string][2]int{}
	}
	w.lines[p] = [2]int{n.Line, n.Column}
}

func (w *walker) bad(n *yaml.Node, p, format string, args ...any) {
	w.errs.add(n.Line, n.Column, p, format, args...)
}

// scanHostile reports aliases, anchors and custom tags anywhere below n.
func (w *walker) scanHostile(n *yaml.Node) {
	switch {
	case n.Kind == yaml.AliasNode:
		w.bad(n, "", "YAML aliases are not allowed")
		return
	case n.Anchor != "":
		w.bad(n, "", "YAML anchors are not allowed")
	case strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!"):
		w.bad(n, "", "custom YAML tag %s is not allowed", n.Tag)
	}
	for _, c := range n.Content {
		w.scanHostile(c)
	}
}

// fields walks a mapping, calling the handler of each known key and
// reporting unknown and duplicate keys.
func (w *walker) fields(n *yaml.Node, p string, handlers map[string]func(v *yaml.Node, p string)) {
	if n.Kind != yaml.MappingNode {
		w.bad(n, p, "must be a mapping, not %s", kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.bad(k, p, "keys must be plain strings")
			continue
		}
		sub := join(p, k.Value)
		if first, dup := seen[k.Value]; dup {
			w.bad(k, sub, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		h, ok := handlers[k.Value]
		if !ok {
			w.bad(k, sub, "unknown field%s", suggest(k.Value, handlers))
			continue
		}
		w.at(v, sub)
		w.lines["key:"+sub] = [2]int{k.Line, k.Column} // where a missing child is reported
		h(v, sub)
	}
}

func join(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		}
		return "a " + strings.TrimPrefix(n.Tag, "!!")
	}
	return "something else"
}

// suggest names the known field closest to an unknown one.
func suggest(k string, handlers map[string]func(*yaml.Node, string)) string {
	best, bestD := "", 3
	for h := range handlers {
		if d := distance(k, h); d < bestD || (d == bestD && h < best) {
			best, bestD = h, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance, for suggestions.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func (w *walker) str(n *yaml.Node, p string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		w.bad(n, p, "must be a string, not %s (quote it if it looks like a number)", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (w *walker) integer(n *yaml.Node, p string) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		w.bad(n, p, "must be a whole number, not %s", kindName(n))
		return 0, false
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		w.bad(n, p, "%q is not a whole number in range", n.Value)
		return 0, false
	}
	return v, true
}

func (w *walker) boolean(n *yaml.Node, p string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		w.bad(n, p, "must be true or false, not %s", kindName(n))
		return false, false
	}
	return n.Value == "true", true
}

// decimal reads a number exactly: no float64 between the file and the risk
// gate. Exponent notation, infinities and NaN are refused.
func (w *walker) decimal(n *yaml.Node, p string) (proto.Decimal, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		w.bad(n, p, "must be a number, not %s", kindName(n))
		return proto.Decimal{}, false
	}
	d, err := proto.ParseDecimal(n.Value)
	if err != nil {
		w.bad(n, p, "%q must be a plain finite decimal such as 1000 or 2.5", n.Value)
		return proto.Decimal{}, false
	}
	return d, true
}

// speed reads replay_speed: a number from 0.01 to 1000, or "max" (0).
func (w *walker) speed(n *yaml.Node, p string) (float64, bool) {
	if n.Kind == yaml.ScalarNode && n.Value == "max" {
		return 0, true
	}
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		w.bad(n, p, "must be a number such as 10 (ten times faster than recorded) or \"max\", not %s", kindName(n))
		return 1, false
	}
	f, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || f < 0.01 || f > 1000 {
		w.bad(n, p, "%s is out of range: 0.01 to 1000, or \"max\"", n.Value)
		return 1, false
	}
	return f, true
}

func (w *walker) date(n *yaml.Node, p string) (time.Time, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!timestamp") {
		w.bad(n, p, "must be a date such as \"2025-01-31\", not %s", kindName(n))
		return time.Time{}, false
	}
	for _, layout := range []string{"2006-01-02", time.RFC3339} {
		if t, err := time.Parse(layout, n.Value); err == nil {
			return t.UTC(), true
		}
	}
	w.bad(n, p, "%q is not a date (YYYY-MM-DD) or an RFC 3339 time", n.Value)
	return time.Time{}, false
}

func (w *walker) list(n *yaml.Node, p string, each func(v *yaml.Node, p string)) {
	if n.Kind != yaml.SequenceNode {
		w.bad(n, p, "must be a list, not %s", kindName(n))
		return
	}
	for i, v := range n.Content {
		sub := fmt.Sprintf("%s[%d]", p, i)
		w.at(v, sub)
		each(v, sub)
	}
}

func (w *walker) spec(root *yaml.Node, s *Spec) {
	sawVersion, sawRisk, sawStrategy, sawExchanges, sawMarket := false, false, false, false, false
	sawSpeed := false
	w.fields(root, "", map[string]func(*yaml.Node, string){
		"version": func(v *yaml.Node, p string) {
			sawVersion = true
			if n, ok := w.integer(v, p); ok {
				if n != Version {
					w.bad(v, p, "version %d is not supported; this paddock reads version %d", n, Version)
				}
				s.Version = n
			}
		},
		"environment": func(v *yaml.Node, p string) {
			w.fields(v, p, map[string]func(*yaml.Node, string){
				"name": func(v *yaml.Node, p string) { s.Name, _ = w.str(v, p) },
			})
		},
		"exchanges": func(v *yaml.Node, p string) {
			sawExchanges = true
			w.list(v, p, func(v *yaml.Node, p string) {
				var e Exchange
				sandbox, sawSandbox := false, false
				w.fields(v, p, map[string]func(*yaml.Node, string){
					"name":    func(v *yaml.Node, p string) { e.Name, _ = w.str(v, p) },
					"type":    func(v *yaml.Node, p string) { e.Type, _ = w.str(v, p) },
					"sandbox": func(v *yaml.Node, p string) { sandbox, sawSandbox = w.boolean(v, p) },
					"instruments": func(v *yaml.Node, p string) {
						w.list(v, p, func(v *yaml.Node, p string) {
							if str, ok := w.str(v, p); ok {
								e.Instruments = append(e.Instruments, Instrument{Written: str})
							}
						})
					},
				})
				if v.Kind == yaml.MappingNode && (!sawSandbox || !sandbox) {
					w.bad(v, p+".sandbox", "must be true: sandbox environments only ever reach exchanges' sandbox endpoints with sandbox keys, never production")
				}
				s.Exchanges = append(s.Exchanges, e)
			})
		},
		"market_data": func(v *yaml.Node, p string) {
			sawMarket = true
			w.fields(v, p, map[string]func(*yaml.Node, string){
				"mode":         func(v *yaml.Node, p string) { s.MarketData.Mode, _ = w.str(v, p) },
				"replay_start": func(v *yaml.Node, p string) { s.MarketData.ReplayStart, _ = w.date(v, p) },
				"replay_end":   func(v *yaml.Node, p string) { s.MarketData.ReplayEnd, _ = w.date(v, p) },
				"replay_speed": func(v *yaml.Node, p string) { s.MarketData.ReplaySpeed, sawSpeed = w.speed(v, p) },
			})
			if !sawSpeed {
				s.MarketData.ReplaySpeed = 1
			}
		},
		"risk_config": func(v *yaml.Node, p string) {
			sawRisk = true
			w.fields(v, p, map[string]func(*yaml.Node, string){
				"max_position_usd": func(v *yaml.Node, p string) { s.Risk.MaxPositionUSD, _ = w.decimal(v, p) },
				"max_drawdown_pct": func(v *yaml.Node, p string) { s.Risk.MaxDrawdownPct, _ = w.decimal(v, p) },
				"max_order_rate":   func(v *yaml.Node, p string) { s.Risk.MaxOrderRate, _ = w.decimal(v, p) },
				"starting_equity_usd": func(v *yaml.Node, p string) {
					s.Risk.StartingEquityUSD, _ = w.decimal(v, p)
				},
			})
		},
		"strategy": func(v *yaml.Node, p string) {
			sawStrategy = true
			w.fields(v, p, map[string]func(*yaml.Node, string){
				"binary": func(v *yaml.Node, p string) { s.Strategy.Binary, _ = w.str(v, p) },
				"config": func(v *yaml.Node, p string) { s.Strategy.Config, _ = w.str(v, p) },
			})
		},
		"ttl_hours": func(v *yaml.Node, p string) {
			if n, ok := w.integer(v, p); ok {
				s.TTLHours = n
			}
		},
	})
	if root.Kind != yaml.MappingNode {
		return
	}
	for _, req := range []struct {
		saw  bool
		name string
	}{{sawVersion, "version"}, {sawExchanges, "exchanges"}, {sawMarket, "market_data"}, {sawRisk, "risk_config"}, {sawStrategy, "strategy"}} {
		if !req.saw {
			w.bad(root, req.name, "required field is missing")
		}
	}
}

// cleanRepoPath reports why p is not a relative path inside the repository.
func cleanRepoPath(p string) string {
	switch {
	case p == "":
		return "must not be empty"
	case strings.ContainsAny(p, "\\\x00"):
		return "must use forward slashes and no NUL bytes"
	case strings.HasPrefix(p, "/") || (len(p) > 1 && p[1] == ':'):
		return "must be relative to the repository, not absolute"
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "must stay inside the repository (no ..)"
		}
	}
	if path.Clean(p) == "." {
		return "must name a file"
	}
	return ""
}
