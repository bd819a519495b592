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

  validate [-f .dev-env.yaml]              check a spec locally (no server)
  up [-f .dev-env.yaml] [-wait] [-pr N] [-branch B] [-sha S]
  ls                                       your environments (all, for admins)
  show NAME                                details and the audit log
  extend NAME [-hours 24]
  stop NAME [-wait]    start NAME [-wait]    down NAME [-wait]
  token-hash TOKEN                         the sha256 to put in the manager's tokens file

common flags: -server URL [PADDOCK_URL]  -token T [PADDOCK_TOKEN]  -o table|json
exit codes: 0 ok, 1 refused (invalid, conflict, failed), 2 usage, 3 not found, 4 not authorized, 5 unavailable
`

func runEnv(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{envUsage}
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("env "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", envDefault("PADDOCK_URL", "http://127.0.0.1:8090"), "environment manager URL [PADDOCK_URL]")
	token := fs.String("token", envDefault("PADDOCK_TOKEN", ""), "API token [PADDOCK_TOKEN]")
	output := fs.String("o", "table", "output: table or json")
	file := fs.String("f", ".dev-env.yaml", "the environment spec")
	wait := fs.Bool("wait", false, "follow progress until the environment settles")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long -wait waits")
	pr := fs.Int("pr", 0, "pull request number (the default name is pr-N)")
	branch := fs.String("branch", "", "branch (the name defaults to its slug without -pr)")
	sha := fs.String("sha", "", "commit SHA the spec comes from")
	hours := fs.Int("hours", 24, "extend by this many hours")
	// Flags may come after the positional name: `paddock env stop NAME -wait`.
	var pos []string
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return usageError{err.Error() + "\n" + envUsage}
		}
		rest = fs.Args()
		if len(rest) > 0 {
			pos, rest = append(pos, rest[0]), rest[1:]
		}
	}
	if *output != "table" && *output != "json" {
		return usageError{"-o must be table or json"}
	}
	c := &api.Client{BaseURL: *server, Token: *token}
	name := func() (string, error) {
		if len(pos) != 1 {
			return "", usageError{fmt.Sprintf("paddock env %s needs exactly one environment name\n%s", cmd, envUsage)}
		}
		return pos[0], nil
	}
	emit := func(v any, table func(w *tabwriter.Writer)) {
		if *output == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(v)
			return
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		table(tw)
		_ = tw.Flush()
	}
	switch cmd {
	case "token-hash":
		if len(pos) != 1 {
			return usageError{"usage: paddock env token-hash TOKEN"}
		}
		fmt.Fprintln(stdout, api.HashToken(pos[0]))
		return nil
	case "validate":
		raw, err := os.ReadFile(*file)
		if err != nil {
			return exitError{exitUsage, err}
		}
		s, err := spec.Parse(raw, spec.Options{PRNumber: *pr, Branch: *branch})
		if err != nil {
			return exitError{exitRefused, err}
		}
		emit(s, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "%s is valid: environment %q, ttl %dh, market data %s\n", *file, s.Name, s.TTLHours, s.MarketData.Mode)
			for _, e := range s.Exchanges {
				var syms []string
				for _, in := range e.Instruments {
					syms = append(syms, in.Symbol)
				}
				fmt.Fprintf(w, "  %s\t%s\n", e.Venue, strings.Join(syms, ", "))
			}
		})
		return nil
	case "up":
		raw, err := os.ReadFile(*file)
		if err != nil {
			return exitError{exitUsage, err}
		}
		e, err := c.Create(ctx, api.CreateBody{SpecYAML: string(raw), PRNumber: *pr, Branch: *branch, CommitSHA: *sha})
		if err != nil {
			return classify(err)
		}
		if !*wait {
			emit(e, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "environment %s requested; follow it with: paddock env show %s\n", e.Name, e.Name)
			})
			return nil
		}
		return waitFor(ctx, c, e.Name, envmgr.StateReady, *timeout, stdout, *output, emit)
	case "ls":
		es, err := c.List(ctx)
		if err != nil {
			return classify(err)
		}
		emit(es, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "NAME\tSTATE\tDESIRED\tOWNER\tEXPIRES\tADMIN URL")
			for _, e := range es {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.State, e.Desired, e.Owner, e.ExpiresAt.Local().Format("2006-01-02 15:04"), e.Endpoint)
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
			if e.State == envmgr.StateFailed {
				fmt.Fprintf(w, "failed\twhile %s: %s\n", e.FailedAt, e.Reason)
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
	case "extend", "stop", "start", "down":
		n, err := name()
		if err != nil {
			return err
		}
		e, err := c.Action(ctx, n, cmd, *hours)
		if err != nil {
			return classify(err)
		}
		target := map[string]envmgr.State{"stop": envmgr.StateStopped, "start": envmgr.StateReady, "down": envmgr.StateDestroyed}[cmd]
		if *wait && target != "" {
			return waitFor(ctx, c, n, target, *timeout, stdout, *output, emit)
		}
		emit(e, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "%s: %s accepted (state %s, desired %s, expires %s)\n", n, cmd, e.State, e.Desired, e.ExpiresAt.Local().Format(time.RFC1123))
		})
		return nil
	}
	return usageError{fmt.Sprintf("unknown env command %q\n%s", cmd, envUsage)}
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
