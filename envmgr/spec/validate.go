package spec

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/risk"
	"github.com/paddockhq/paddock/venue"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// validate applies the semantic rules to a structurally valid spec.
func validate(s *Spec, o Options, lines map[string][2]int, errs *Errors) {
	structural := len(errs.List)
	bad := func(p, format string, args ...any) {
		for _, e := range errs.List[:structural] {
			if e.Path == p || strings.HasPrefix(e.Path, p+".") || strings.HasPrefix(e.Path, p+"[") || strings.HasPrefix(p, e.Path) {
				return // the field already has a structural error
			}
		}
		// A missing field has no line of its own: point at its parent's.
		lc, ok := lines[p]
		for q := p; !ok && q != ""; {
			i := strings.LastIndexAny(q, ".[")
			if i < 0 {
				break
			}
			q = q[:i]
			if lc, ok = lines["key:"+q]; !ok {
				lc, ok = lines[q]
			}
		}
		errs.add(lc[0], lc[1], p, format, args...)
	}
	// Name: the file's, else pr-<n>, else a slug of the branch.
	switch {
	case s.Name != "":
		if err := CheckName(s.Name); err != nil {
			bad("environment.name", "%s", err)
		}
	case o.PRNumber > MaxPRNumber || o.PRNumber < 0:
		bad("environment.name", "pr_number %d is out of range (1 to %d)", o.PRNumber, MaxPRNumber)
	case o.PRNumber > 0:
		s.Name = "pr-" + strconv.Itoa(o.PRNumber)
	case o.Branch != "":
		s.Name = Slug(o.Branch)
		if s.Name == "" {
			bad("environment.name", "no name given and branch %q has nothing to make one from; set environment.name", o.Branch)
		}
	default:
		bad("environment.name", "no name given and no PR number or branch to derive one from; set environment.name")
	}

	if len(s.Exchanges) == 0 {
		bad("exchanges", "at least one exchange is required")
	}
	seenVenue := map[string]string{}
	for i, e := range s.Exchanges {
		p := fmt.Sprintf("exchanges[%d]", i)
		v, ok := venue.ByExchange(e.Name, e.Type)
		switch {
		case !slices.Contains(venue.Exchanges(), e.Name):
			bad(p+".name", "unknown exchange %q (supported: %s)", e.Name, strings.Join(venue.Exchanges(), ", "))
			continue
		case e.Type != "spot" && e.Type != "perpetual":
			bad(p+".type", "unknown type %q (spot or perpetual)", e.Type)
			continue
		case !ok:
			bad(p, "%s %s is not a supported venue", e.Name, e.Type)
			continue
		}
		s.Exchanges[i].Venue = v.Name
		if prev, dup := seenVenue[v.Name]; dup {
			bad(p, "%s %s is already declared at %s; list all its instruments there", e.Name, e.Type, prev)
		}
		seenVenue[v.Name] = p
		if len(e.Instruments) == 0 {
			bad(p+".instruments", "at least one instrument is required")
		}
		seen := map[string]int{}
		for j, in := range e.Instruments {
			ip := fmt.Sprintf("%s.instruments[%d]", p, j)
			sym, why := normalizeSymbol(in.Written)
			if why != "" {
				bad(ip, "%q %s", in.Written, why)
				continue
			}
			if k, dup := seen[sym]; dup {
				bad(ip, "%q is the same instrument as instruments[%d]", in.Written, k)
				continue
			}
			seen[sym] = j
			s.Exchanges[i].Instruments[j].Symbol = sym
		}
	}

	md := &s.MarketData
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	switch md.Mode {
	case "live":
		if !md.ReplayStart.IsZero() || !md.ReplayEnd.IsZero() {
			bad("market_data.mode", "replay_start and replay_end apply only to mode replay or both")
		}
		md.ReplaySpeed = 0
	case "replay", "both":
		if o.LiveOnly {
			bad("market_data.mode", "%s is not supported by this installation yet: it has no recorded market data to replay (use live)", md.Mode)
			break
		}
		switch {
		case md.ReplayStart.IsZero() || md.ReplayEnd.IsZero():
			bad("market_data", "mode %s needs replay_start and replay_end", md.Mode)
		case !md.ReplayStart.Before(md.ReplayEnd):
			bad("market_data.replay_end", "must be after replay_start")
		case md.ReplayEnd.After(now):
			bad("market_data.replay_end", "must be in the past: only recorded data can be replayed")
		case md.ReplayEnd.Sub(md.ReplayStart) > MaxReplayDays*24*time.Hour:
			bad("market_data.replay_end", "the replay range is %v; the limit is %d days", md.ReplayEnd.Sub(md.ReplayStart).Round(time.Hour), MaxReplayDays)
		}
	case "":
		bad("market_data.mode", "required: live, replay or both")
	default:
		bad("market_data.mode", "unknown mode %q (live, replay or both)", md.Mode)
	}

	zero := proto.Decimal{}
	hundred := proto.Decimal{Mant: 100}
	for _, r := range []struct {
		field string
		v     proto.Decimal
	}{{"max_position_usd", s.Risk.MaxPositionUSD}, {"max_order_rate", s.Risk.MaxOrderRate}, {"max_drawdown_pct", s.Risk.MaxDrawdownPct}} {
		p := "risk_config." + r.field
		if _, present := lines[p]; !present {
			bad(p, "required field is missing")
			continue
		}
		if r.v.Cmp(zero) <= 0 {
			bad(p, "must be greater than 0, not %s", r.v)
		}
	}
	if _, present := lines["risk_config.starting_equity_usd"]; !present {
		s.Risk.StartingEquityUSD = DefaultStartingEquityUSD
	} else if s.Risk.StartingEquityUSD.Cmp(zero) <= 0 {
		bad("risk_config.starting_equity_usd", "must be greater than 0, not %s", s.Risk.StartingEquityUSD)
	}
	if r := s.Risk.MaxOrderRate; r.Exp < -6 {
		bad("risk_config.max_order_rate", "%s has more than 6 decimals", r)
	}
	if s.Risk.MaxDrawdownPct.Cmp(hundred) > 0 {
		bad("risk_config.max_drawdown_pct", "must be at most 100, not %s", s.Risk.MaxDrawdownPct)
	}
	// Upper bounds, so that no limit reaches the gate's arithmetic with a
	// value it would overflow on or refuse later, at provisioning.
	for _, r := range []struct {
		field string
		v     proto.Decimal
		max   proto.Decimal
	}{{"max_position_usd", s.Risk.MaxPositionUSD, MaxUSD}, {"starting_equity_usd", s.Risk.StartingEquityUSD, MaxUSD},
		{"max_order_rate", s.Risk.MaxOrderRate, MaxOrderRate}} {
		if r.v.Cmp(r.max) > 0 {
			bad("risk_config."+r.field, "%s is beyond the limit of %s", r.v, r.max)
		}
	}
	if len(errs.List) == structural {
		// The gate itself is the last word: whatever it would refuse at
		// provisioning is refused here, with the file's line.
		if _, err := risk.New(risk.Limits{MaxPositionUSD: s.Risk.MaxPositionUSD, MaxDrawdownPct: s.Risk.MaxDrawdownPct,
			MaxOrderRate: s.Risk.MaxOrderRate, StartingEquityUSD: s.Risk.StartingEquityUSD}); err != nil {
			bad("risk_config", "%s", err)
		}
	}

	if _, ok := lines["strategy.binary"]; !ok {
		bad("strategy.binary", "required field is missing")
	} else if why := cleanRepoPath(s.Strategy.Binary); why != "" {
		bad("strategy.binary", "%q %s", s.Strategy.Binary, why)
	}
	if _, ok := lines["strategy.config"]; ok {
		if why := cleanRepoPath(s.Strategy.Config); why != "" {
			bad("strategy.config", "%q %s", s.Strategy.Config, why)
		}
	}

	switch {
	case s.TTLHours < 1:
		bad("ttl_hours", "must be at least 1, not %d", s.TTLHours)
	case s.TTLHours > MaxApprovedTTLHours:
		bad("ttl_hours", "%d is beyond the absolute limit of %d hours", s.TTLHours, MaxApprovedTTLHours)
	case s.TTLHours > MaxTTLHours && !o.TTLApproved:
		bad("ttl_hours", "%d is beyond %d hours: an admin must approve it first", s.TTLHours, MaxTTLHours)
	}
}

// ErrName is matched (errors.Is) by CheckName's errors.
var ErrName = errors.New("invalid environment name")

type nameError struct{ msg string }

func (e nameError) Error() string        { return e.msg }
func (e nameError) Is(target error) bool { return target == ErrName }

// CheckName is the one rule for an environment name wherever it comes from
// (a file, a URL, a request body, a webhook): a DNS label of at most
// MaxNameLen characters. Every boundary calls it before a name reaches a NATS
// subject, a key-value key, a file path or a log line. The error quotes at
// most the first 64 bytes of a bad name, so a hostile name is never echoed
// whole.
func CheckName(n string) error {
	q := n
	if len(q) > 64 {
		q = q[:64] + "..."
	}
	switch {
	case n == "":
		return nameError{"the environment name is empty"}
	case len(n) > MaxNameLen:
		return nameError{fmt.Sprintf("%q is longer than %d characters (%d)", q, MaxNameLen, len(n))}
	case !dnsLabel.MatchString(n):
		return nameError{fmt.Sprintf("%q must be lower-case letters, digits and inner hyphens (a DNS label): it becomes part of NATS subjects, tags and hostnames", q)}
	}
	return nil
}

// CheckPRNumber checks a pull request number from a request or a webhook.
func CheckPRNumber(n int) error {
	if n < 0 || n > MaxPRNumber {
		return fmt.Errorf("pr_number %d is out of range (1 to %d)", n, MaxPRNumber)
	}
	return nil
}

// PRNumberOf reports the pull request a name like pr-42 belongs to, or 0.
// Such names are reserved for the pull-request integration and admins.
func PRNumberOf(name string) int {
	rest, ok := strings.CutPrefix(name, "pr-")
	if !ok || rest == "" || len(rest) > 10 || rest[0] == '0' {
		return 0
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n <= 0 || n > MaxPRNumber {
		return 0
	}
	return n
}

// Slug turns a branch name into a valid environment name: lower case, runs
// of anything but letters and digits become one hyphen, trimmed to
// MaxNameLen. It returns "" when nothing is left.
func Slug(branch string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range strings.ToLower(branch) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if hyphen && b.Len() > 0 {
				b.WriteByte('-')
			}
			hyphen = false
			b.WriteRune(r)
			continue
		}
		hyphen = true
	}
	s := b.String()
	if len(s) > MaxNameLen {
		s = strings.TrimRight(s[:MaxNameLen], "-")
	}
	return s
}

// normalizeSymbol maps an instrument as written (BTC/USDT, btc-usdt,
// BTCUSDT) to the feed's subject token (btcusdt).
func normalizeSymbol(w string) (string, string) {
	var b strings.Builder
	for _, r := range w {
		switch {
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r - 'A' + 'a')
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '/' || r == '-' || r == '_':
		default:
			return "", fmt.Sprintf("has %q; write it as BASE/QUOTE, e.g. BTC/USDT", r)
		}
	}
	s := b.String()
	if len(s) < 2 || len(s) > 30 {
		return "", "is not an instrument symbol (2 to 30 letters and digits)"
	}
	if err := proto.CheckToken(s); err != nil {
		return "", err.Error()
	}
	return s, ""
}
