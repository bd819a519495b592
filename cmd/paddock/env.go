package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/api"
	"github.com/paddockhq/paddock/envmgr/spec"
)

func init() {
	commands["env"] = command{"manage sandbox environments: validate, up, ls, show, extend, stop, start, down", runEnv}
}

// Exit codes of `paddock env`, for scripts.
const (
	exitOK          = 0
	exitRefused     = 1 // invalid spec, conflict, illegal transition, failed environment
	exitUsage       = 2
	exitNotFound    = 3
	exitAuth        = 4 // 401 or 403
	exitUnavailable = 5 // network or server error, timeout
)

type exitCoder interface{ ExitCode() int }

type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }
func (e exitError) ExitCode() int { return e.code }

// classify turns an API error into the documented exit code.
func classify(err error) error {
	var se *api.StatusError
	if errors.As(err, &se) {
		switch {
		case se.Status == http.StatusNotFound:
			return exitError{exitNotFound, err}
		case se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden:
			return exitError{exitAuth, err}
		case se.Status >= 500:
			return exitError{exitUnavailable, err}
		}
		if len(se.Body.Fields) > 0 {
			var b strings.Builder
			fmt.Fprintf(&b, "the environment manager refused the spec (%d problems):", len(se.Body.Fields))
			for _, f := range se.Body.Fields {
				b.WriteString("\n  " + f.Error())
			}
			return exitError{exitRefused, errors.New(b.String())}
		}
		return exitError{exitRefused, err}
	}
	return exitError{exitUnavailable, err}
}

const envUsage = `usage: paddock env <command> [flags]

  validate [-f .dev-env.yaml] [-o json]    check a spec locally (no server)
  up [-f .dev-env.yaml] [-wait] [-pr N] [-branch B] [-sha S]
  ls                                       your environments (all, for admins)
  show NAME                                details, health and the audit log
  extend NAME [-hours 24]                  past 96h in total: a request for an admin
  approve NAME | refuse NAME               an admin's decision on a longer lifetime
  stop NAME [-wait]    start NAME [-wait]    down NAME [-wait]
  orphans [-clean]                         leaked resources and records without them (admins; -clean deletes those past the grace period)
  token-hash TOKEN                         the sha256 to put in the manager's tokens file

Every command but validate and token-hash takes -server URL [PADDOCK_URL] and
-token T [PADDOCK_TOKEN]; -o table|json chooses the output. ` + "`paddock env CMD -h`" + ` lists a
command's flags.
exit codes: 0 ok, 1 refused (invalid, conflict, failed, degraded), 2 usage, 3 not found, 4 not authorized, 5 unavailable
`

// envFlags are one env subcommand's flags: only what that command takes.
type envFlags struct {
	fs                 *flag.FlagSet
	server, token, out *string
	file, branch, sha  *string
	pr, hours          *int
	wait, clean        *bool
	repo               *string
	update             *bool
	timeout            *time.Duration
}

func newEnvFlags(cmd string, stderr io.Writer) *envFlags {
	f := &envFlags{fs: flag.NewFlagSet("env "+cmd, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() {
		fmt.Fprintf(f.fs.Output(), "usage: paddock env %s\n", envSynopsis[cmd])
		f.fs.PrintDefaults()
	}
	switch cmd {
	case "validate", "token-hash":
	default:
		f.server = f.fs.String("server", envDefault("PADDOCK_URL", "http://127.0.0.1:8090"), "environment manager URL [PADDOCK_URL]")
		// No default shown: the token is a secret and must not appear in help
		// or errors. PADDOCK_TOKEN is read after parsing.
		f.token = f.fs.String("token", "", "API token (default: $PADDOCK_TOKEN)")
	}
	if cmd != "token-hash" {
		f.out = f.fs.String("o", "table", "output: table or json")
	}
	switch cmd {
	case "validate", "up":
		f.file = f.fs.String("f", ".dev-env.yaml", "the environment spec")
		f.pr = f.fs.Int("pr", 0, "pull request number (the default name is pr-N)")
		f.branch = f.fs.String("branch", "", "branch (the name defaults to its slug without -pr)")
	}
	switch cmd {
	case "up":
		f.sha = f.fs.String("sha", "", "commit SHA the spec comes from")
		f.repo = f.fs.String("repo", "", "owner/name: build the strategy from this GitHub repository at -sha (integration tokens; CI mode)")
		f.update = f.fs.Bool("update", false, "if the environment exists, move it to -sha (CI mode's push) instead of refusing")
	case "extend":
		f.hours = f.fs.Int("hours", 24, "extend by this many hours (1 to 720)")
	case "orphans":
		f.clean = f.fs.Bool("clean", false, "delete the orphans older than the manager's grace period (default: list only)")
	}
	switch cmd {
	case "up", "stop", "start", "down":
		f.wait = f.fs.Bool("wait", false, "follow progress until the environment settles")
		f.timeout = f.fs.Duration("timeout", 10*time.Minute, "how long -wait waits")
	}
	return f
}

var envSynopsis = map[string]string{
	"validate": "validate [-f .dev-env.yaml] [-pr N] [-branch B] [-o table|json]", "up": "up [-f .dev-env.yaml] [-wait] [-pr N] [-branch B] [-sha S] [-repo OWNER/NAME] [-update]",
	"ls": "ls [-o table|json]", "show": "show NAME [-o table|json]", "extend": "extend NAME [-hours 24]",
	"approve": "approve NAME", "refuse": "refuse NAME", "stop": "stop NAME [-wait]", "start": "start NAME [-wait]",
	"down": "down NAME [-wait]", "token-hash": "token-hash TOKEN", "orphans": "orphans [-clean] [-o table|json]",
}

// parse takes flags before and after positional arguments (`paddock env
// stop NAME -wait`).
func (f *envFlags) parse(args []string) ([]string, error) {
	var pos []string
	rest := args
	for {
		if err := parseFlags(f.fs, rest); err != nil {
			return nil, err
		}
		rest = f.fs.Args()
		if len(rest) == 0 {
			break
		}
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	if f.out != nil && *f.out != "table" && *f.out != "json" {
		return nil, usageError{"-o must be table or json"}
	}
	if f.token != nil && *f.token == "" {
		*f.token = os.Getenv("PADDOCK_TOKEN")
	}
	return pos, nil
}

func runEnv(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{envUsage}
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, envUsage)
		return nil
	}
	cmd := args[0]
	if _, ok := envSynopsis[cmd]; !ok {
		return usageError{fmt.Sprintf("unknown env command %q\n%s", cmd, envUsage)}
	}
	f := newEnvFlags(cmd, stderr)
	pos, err := f.parse(args[1:])
	if err != nil {
		return err
	}
	var c *api.Client
	if f.server != nil {
		c = &api.Client{BaseURL: *f.server, Token: *f.token, Via: "cli"}
	}
	name := func() (string, error) {
		if len(pos) != 1 {
			return "", usageError{fmt.Sprintf("usage: paddock env %s (exactly one environment name)", envSynopsis[cmd])}
		}
		return pos[0], nil
	}
	emit := func(v any, table func(w *tabwriter.Writer)) {
		if f.out != nil && *f.out == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(v)
			return
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		table(tw)
		_ = tw.Flush()
	}
	if cmd != "validate" && cmd != "up" && cmd != "ls" && len(pos) > 1 {
		return usageError{fmt.Sprintf("usage: paddock env %s", envSynopsis[cmd])}
	}
	switch cmd {
	case "orphans":
		if len(pos) > 0 {
			return usageError{"usage: paddock env " + envSynopsis[cmd]}
		}
		return orphans(ctx, c, *f.clean, emit)
	case "token-hash":
		if len(pos) != 1 {
			return usageError{"usage: paddock env token-hash TOKEN"}
		}
		fmt.Fprintln(stdout, api.HashToken(pos[0]))
		return nil
	case "validate":
		if len(pos) > 0 {
			return usageError{"usage: paddock env " + envSynopsis[cmd]}
		}
		return validate(*f.file, *f.pr, *f.branch, *f.out == "json", stdout, emit)
	case "up":
		if len(pos) > 0 {
			return usageError{"usage: paddock env " + envSynopsis[cmd]}
		}
		raw, err := os.ReadFile(*f.file)
		if err != nil {
			return exitError{exitUsage, err}
		}
		body := api.CreateBody{SpecYAML: string(raw), PRNumber: *f.pr, Branch: *f.branch, CommitSHA: *f.sha, Repo: *f.repo}
		e, err := c.Create(ctx, body)
		var se *api.StatusError
		if errors.As(err, &se) && se.Status == http.StatusConflict && *f.update {
			if e, err = upUpdate(ctx, c, raw, body, *f.timeout, *f.wait); err != nil {
				return err
			}
		} else if err != nil {
			return classify(err)
		}
		if p := e.PendingTTL; p != nil && *f.out == "table" {
			fmt.Fprintf(stdout, "ttl_hours %d is beyond %dh: it starts with %dh, and the rest waits for an admin (paddock env approve %s)\n", p.Hours, spec.MaxTTLHours, e.TTLHours, e.Name)
		}
		if !*f.wait {
			emit(e, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "environment %s requested; follow it with: paddock env show %s\n", e.Name, e.Name)
			})
			return nil
		}
		return waitFor(ctx, c, e.Name, envmgr.StateReady, *f.timeout, stdout, *f.out, emit)
	case "ls":
		if len(pos) > 0 {
			return usageError{"usage: paddock env " + envSynopsis[cmd]}
		}
		es, err := c.List(ctx)
		if err != nil {
			return classify(err)
		}
		emit(es, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "NAME\tSTATE\tHEALTH\tOWNER\tEXPIRES\tADMIN URL")
			for _, e := range es {
				state := string(e.State)
				if e.Desired != envmgr.WantRunning || (e.State != envmgr.StateReady && e.State != envmgr.StateDegraded) {
					state += " (desired " + string(e.Desired) + ")"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, state, e.Health.Summary(), e.Owner, e.ExpiresAt.Local().Format("2006-01-02 15:04"), e.Endpoint)
			}
		})
		return nil
	case "show":
		n, err := name()
		if err != nil {
			return err
		}
		e, conn, err := c.Get(ctx, n)
		if err != nil {
			return classify(err)
		}
		audit, err := c.Audit(ctx, n)
		if err != nil {
			return classify(err)
		}
		emit(map[string]any{"environment": e, "connect": conn, "audit": audit}, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "name\t%s\nstate\t%s (desired %s)\nowner\t%s\nexpires\t%s (ttl %dh)\nadmin URL\t%s\nNATS\t%s\n",
				e.Name, e.State, e.Desired, e.Owner, e.ExpiresAt.Local().Format(time.RFC1123), e.TTLHours, e.Endpoint, conn.NATSURL)
			if p := e.PendingTTL; p != nil {
				fmt.Fprintf(w, "pending\t%dh in total requested by %s, waiting for an admin\n", p.Hours, p.By)
			}
			switch e.State {
			case envmgr.StateFailed:
				fmt.Fprintf(w, "failed\twhile %s: %s\n", e.FailedAt, e.Reason)
			case envmgr.StateDegraded:
				fmt.Fprintf(w, "not working\t%s\n", e.Reason)
			}
			if h := e.Health; h != nil {
				fmt.Fprintf(w, "health\t%s\n", h.Summary())
				if s := h.Strategy; s != nil && s.LastExit != "" {
					fmt.Fprintf(w, "strategy last exit\t%s\n", s.LastExit)
				}
				if h.Halted {
					fmt.Fprintf(w, "halted\t%s\n", h.HaltReason)
				}
			}
			fmt.Fprintln(w, "\nAUDIT\tWHO\tWHAT\tDETAIL")
			for _, a := range audit {
				what := a.Action
				if a.To != "" {
					what += " -> " + string(a.To)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", a.At.Local().Format("01-02 15:04:05"), a.Actor, what, a.Detail)
			}
		})
		return nil
	case "extend", "stop", "start", "down", "approve", "refuse":
		n, err := name()
		if err != nil {
			return err
		}
		hours := 0
		if cmd == "extend" {
			if *f.hours < 1 || *f.hours > spec.MaxApprovedTTLHours {
				return usageError{fmt.Sprintf("paddock env extend: -hours must be 1 to %d, not %d", spec.MaxApprovedTTLHours, *f.hours)}
			}
			hours = *f.hours
		}
		e, err := c.Action(ctx, n, cmd, hours)
		if err != nil {
			return classify(err)
		}
		target := map[string]envmgr.State{"stop": envmgr.StateStopped, "start": envmgr.StateReady, "down": envmgr.StateDestroyed}[cmd]
		if f.wait != nil && *f.wait && target != "" {
			return waitFor(ctx, c, n, target, *f.timeout, stdout, *f.out, emit)
		}
		emit(e, func(w *tabwriter.Writer) {
			if p := e.PendingTTL; cmd == "extend" && p != nil {
				fmt.Fprintf(w, "%s: %dh in total requested; an admin must approve it (paddock env approve %s). Until then it expires %s\n",
					n, p.Hours, n, e.ExpiresAt.Local().Format(time.RFC1123))
				return
			}
			fmt.Fprintf(w, "%s: %s accepted (state %s, desired %s, ttl %dh, expires %s)\n", n, cmd, e.State, e.Desired, e.TTLHours, e.ExpiresAt.Local().Format(time.RFC1123))
		})
		return nil
	}
	return usageError{fmt.Sprintf("unknown env command %q\n%s", cmd, envUsage)}
}

// validate checks a spec locally. With JSON output it prints the spec's
// documented fields (snake_case, as in the YAML) or the errors, as JSON.
func validate(file string, pr int, branch string, asJSON bool, stdout io.Writer, emit func(any, func(*tabwriter.Writer))) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return exitError{exitUsage, fmt.Errorf("read %s: %w", file, err)}
	}
	// replay and both are valid here; whether the range is recorded is the
	// manager's answer at `up`.
	s, err := spec.Parse(raw, spec.Options{PRNumber: pr, Branch: branch, TTLApproved: true})
	if err != nil {
		var se *spec.Errors
		if asJSON && errors.As(err, &se) {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(map[string]any{"file": file, "valid": false, "errors": se.List})
		}
		return exitError{exitRefused, fmt.Errorf("%s: %w", file, err)}
	}
	emit(map[string]any{"file": file, "valid": true, "spec": s.Document()}, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%s is valid: environment %q, ttl %dh, market data %s\n", file, s.Name, s.TTLHours, s.MarketData.Mode)
		if s.TTLHours > spec.MaxTTLHours {
			fmt.Fprintf(w, "  (ttl_hours beyond %d waits for an admin's approval)\n", spec.MaxTTLHours)
		}
		for _, e := range s.Exchanges {
			var syms []string
			for _, in := range e.Instruments {
				syms = append(syms, in.Symbol)
			}
			fmt.Fprintf(w, "  %s\t%s\n", e.Venue, strings.Join(syms, ", "))
		}
	})
	return nil
}

// waitFor follows the events stream until the environment reaches want (or
// fails), printing progress, then prints how to connect.
func waitFor(ctx context.Context, c *api.Client, name string, want envmgr.State, timeout time.Duration, stdout io.Writer, output string,
	emit func(any, func(*tabwriter.Writer))) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last envmgr.Environment
	if output == "table" {
		c.Progress = func(p envmgr.ProgressEvent) { // Terraform's resources, live
			if p.Resource == "" && p.Type != "change_summary" && p.Level != "error" {
				return
			}
			fmt.Fprintf(stdout, "%s    %s: %s\n", p.Time.Local().Format("15:04:05"), p.Op, p.Message)
		}
	}
	err := c.Watch(ctx, name, func(e envmgr.Environment) bool {
		last = e
		if output == "table" {
			fmt.Fprintf(stdout, "%s  %s\n", time.Now().Format("15:04:05"), e.State)
		}
		if want == envmgr.StateReady && e.State == envmgr.StateDegraded {
			return false // up but not working: say why
		}
		return e.State != want && e.State != envmgr.StateFailed && e.State != envmgr.StateDestroyed
	})
	if err != nil && last.State != want {
		if errors.Is(err, context.DeadlineExceeded) {
			return exitError{exitUnavailable, fmt.Errorf("%s did not reach %s within %v (last state %s)", name, want, timeout, last.State)}
		}
		return classify(err)
	}
	if last.State == envmgr.StateFailed {
		return exitError{exitRefused, fmt.Errorf("%s failed while %s: %s", name, last.FailedAt, last.Reason)}
	}
	if last.State == envmgr.StateDegraded && want == envmgr.StateReady {
		return exitError{exitRefused, fmt.Errorf("%s is up but not working: %s (paddock env show %s)", name, last.Reason, name)}
	}
	if want != envmgr.StateReady {
		return nil
	}
	e, conn, err := c.Get(ctx, name)
	if err != nil {
		return classify(err)
	}
	emit(map[string]any{"environment": e, "connect": conn}, func(w *tabwriter.Writer) {
		creds := e.CredsRef
		if creds == "" {
			creds = "none (the NATS server is open)"
		}
		fmt.Fprintf(w, "\n%s is ready.\n  NATS\t%s\n  NATS credentials\t%s (declared instruments and env.%s.> only, until %s)\n  admin URL\t%s\n  subjects\tmarket.data.<venue>.<instrument>.{trades,orderbook,bbo}\n",
			e.Name, conn.NATSURL, creds, e.Name, e.ExpiresAt.Local().Format(time.RFC1123), e.Endpoint)
	})
	return nil
}
