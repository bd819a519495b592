package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/internal/clock"
)

// Extender is the manager's extension, as the slash command uses it.
type Extender interface {
	Extend(ctx context.Context, who envmgr.Actor, name string, hours int) (envmgr.Environment, error)
}

// Nonces remembers signed requests across replicas (natskv.Store): of two
// claims of one key exactly one returns true.
type Nonces interface {
	ClaimNonce(ctx context.Context, key string) (bool, error)
}

// MaxSkew is how far a request's timestamp may be from the manager's clock:
// Slack's recommendation, and what slack-go enforces too.
const MaxSkew = 5 * time.Minute

// maxBody bounds a slash command's form: Slack's are well under 4 KiB.
const maxBody = 16 << 10

// Command serves POST /slack/command: `/paddock extend <env> [hours]` and
// `/paddock help`. A request must carry a valid v0 signature made with the
// app's signing secret, a timestamp within MaxSkew of the manager's clock,
// and must not have been seen before (a replay within the window is refused
// by every replica). The Slack user is mapped to an owner through Config;
// an unknown user, or an environment that is not theirs, is refused
// politely. Safe for concurrent use.
type Command struct {
	secret string
	users  map[string]string // Slack user ID -> owner
	ext    Extender
	nonces Nonces
	clock  clock.Clock
	log    *slog.Logger
	// Refused counts refusals by reason (bad_signature, stale, replayed,
	// unknown_user), for metrics; optional.
	Refused func(reason string)
}

// NewCommand builds the slash command handler. The signing secret is read
// from cfg.SigningSecretFile; ErrNoSecret when there is none (the endpoint
// is then off).
func NewCommand(cfg Config, ext Extender, nonces Nonces, clk clock.Clock, log *slog.Logger) (*Command, error) {
	if cfg.SigningSecretFile == "" {
		return nil, ErrNoSecret
	}
	raw, err := os.ReadFile(cfg.SigningSecretFile)
	if err != nil {
		return nil, fmt.Errorf("slack signing secret: %w", err)
	}
	secret := strings.TrimSpace(string(raw))
	if len(secret) < 16 {
		return nil, errors.New("slack signing secret: the file holds no secret (want the app's signing secret, 32 hex digits)")
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.Real
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Command{secret: secret, users: map[string]string{}, ext: ext, nonces: nonces, clock: clk, log: log.With("component", "slack")}
	for owner, o := range cfg.Owners {
		if o.SlackUser != "" {
			c.users[o.SlackUser] = owner
		}
	}
	return c, nil
}

// ErrNoSecret: no signing secret is configured.
var ErrNoSecret = errors.New("slack: no signing secret configured")

func (c *Command) refused(reason string) {
	if c.Refused != nil {
		c.Refused(reason)
	}
}

func (c *Command) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	// Our clock first (it is the one the tests and the rest of the manager
	// run on), then slack-go's verifier, which checks the HMAC in constant
	// time (and the same window against the wall clock).
	ts, err := strconv.ParseInt(r.Header.Get("X-Slack-Request-Timestamp"), 10, 64)
	if err != nil {
		c.refused("bad_signature")
		http.Error(w, "missing or malformed X-Slack-Request-Timestamp", http.StatusUnauthorized)
		return
	}
	if skew := c.clock.Now().Sub(time.Unix(ts, 0)); skew > MaxSkew || skew < -MaxSkew {
		c.refused("stale")
		http.Error(w, "request timestamp is more than 5 minutes from the server's clock", http.StatusUnauthorized)
		return
	}
	v, err := slackgo.NewSecretsVerifier(r.Header, c.secret)
	if err == nil {
		_, _ = v.Write(body)
		err = v.Ensure()
	}
	if err != nil {
		c.refused("bad_signature")
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return
	}
	// A valid request is accepted once: the signature covers the
	// timestamp and the body, so its digest names the request.
	sum := sha256.Sum256([]byte(r.Header.Get("X-Slack-Signature")))
	fresh, err := c.nonces.ClaimNonce(r.Context(), hex.EncodeToString(sum[:]))
	if err != nil {
		http.Error(w, "cannot check for replays now; try again", http.StatusServiceUnavailable)
		return
	}
	if !fresh {
		c.refused("replayed")
		http.Error(w, "this request was already received", http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		reply(w, "I could not read that command.")
		return
	}
	c.run(r.Context(), w, form)
}

// run answers a verified command, always ephemerally (only the caller sees
// it) and always with 200: Slack shows other statuses as a failure of the
// app, not as an answer.
func (c *Command) run(ctx context.Context, w http.ResponseWriter, form url.Values) {
	user := form.Get("user_id")
	args := strings.Fields(form.Get("text"))
	usage := "Usage: `/paddock extend <environment> [hours]` (default 24 hours; up to 96 hours in total without an admin's approval)."
	if len(args) == 0 || args[0] == "help" {
		reply(w, usage)
		return
	}
	if args[0] != "extend" || len(args) < 2 || len(args) > 3 {
		reply(w, "I only know `extend`. "+usage)
		return
	}
	owner, ok := c.users[user]
	if !ok {
		c.refused("unknown_user")
		reply(w, fmt.Sprintf("Sorry, I do not know who you are on paddock: your Slack user (%s) is not mapped to an owner. Ask an admin to add `slack_user: %s` to your entry in the manager's notification config, or use `paddock env extend`.",
			sanitize(user), sanitize(user)))
		return
	}
	name := args[1]
	if err := spec.CheckName(name); err != nil {
		reply(w, fmt.Sprintf("`%s` is not an environment name: %v.", sanitize(name), err))
		return
	}
	hours := 24
	if len(args) == 3 {
		h, err := strconv.Atoi(args[2])
		if err != nil || h < 1 || h > spec.MaxApprovedTTLHours {
			reply(w, fmt.Sprintf("hours must be a whole number from 1 to %d. %s", spec.MaxApprovedTTLHours, usage))
			return
		}
		hours = h
	}
	var e envmgr.Environment
	var err error
	for n := 0; n < 10; n++ { // a loss to a concurrent write (a node's health) is retried
		if e, err = c.ext.Extend(ctx, envmgr.Actor{Name: owner, Via: "slack"}, name, hours); !errors.Is(err, envmgr.ErrConflict) {
			break
		}
	}
	switch {
	case errors.Is(err, envmgr.ErrNotFound):
		reply(w, fmt.Sprintf("You have no environment called `%s` (an environment of someone else's cannot be extended by you).", name))
	case errors.Is(err, envmgr.ErrForbidden), errors.Is(err, envmgr.ErrIllegalTransition), errors.Is(err, envmgr.ErrInvalid):
		reply(w, "Not extended: "+strings.TrimPrefix(err.Error(), "envmgr: "))
	case err != nil:
		c.log.Warn("slash command extend", "env", name, "err", err)
		reply(w, "Not extended: the manager could not do it now; try again in a minute.")
	case e.PendingTTL != nil:
		reply(w, fmt.Sprintf("`%s`: %dh in total is beyond %dh and waits for an admin's approval; until then it expires %s.",
			name, e.PendingTTL.Hours, spec.MaxTTLHours, e.ExpiresAt.UTC().Format("Mon 2006-01-02 15:04 UTC")))
	default:
		reply(w, fmt.Sprintf("`%s` extended by %dh: it now expires %s.", name, hours, e.ExpiresAt.UTC().Format("Mon 2006-01-02 15:04 UTC")))
	}
}

// sanitize keeps a caller-supplied token printable and short in a reply.
func sanitize(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == '`' || r == '<' || r == '>' || r == '&' {
			return '?'
		}
		return r
	}, s)
}

func reply(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(slackgo.Msg{ResponseType: slackgo.ResponseTypeEphemeral, Text: text})
}
