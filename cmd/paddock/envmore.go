package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/api"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/envmgr/sweep"
)

// orphans runs `paddock env orphans`: the sweeper's dry run, or with clean
// its cleanup. Resources that could not be deleted make it exit 1.
func orphans(ctx context.Context, c *api.Client, clean bool, emit func(any, func(*tabwriter.Writer))) error {
	var rep sweep.Report
	var err error
	if clean {
		rep, err = c.CleanOrphans(ctx)
	} else {
		rep, err = c.Orphans(ctx)
	}
	if err != nil {
		return classify(err)
	}
	emit(rep, func(w *tabwriter.Writer) {
		if len(rep.Orphans) == 0 && len(rep.Missing) == 0 {
			fmt.Fprintln(w, "no orphaned resources, and every record's resources exist")
		}
		if len(rep.Orphans) > 0 {
			fmt.Fprintf(w, "ORPHAN\tID\tAGE\tWHY\n")
			for _, o := range rep.Orphans {
				age := "?"
				if !o.Created.IsZero() {
					age = rep.At.Sub(o.Created).Round(time.Minute).String()
				}
				if !o.Eligible {
					age += " (within grace " + rep.Grace + ")"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", o.Kind, o.ID, age, o.Why)
			}
		}
		if len(rep.Missing) > 0 {
			fmt.Fprintf(w, "\nMISSING\tENVIRONMENT\tSTATE\tWHY\n")
			for _, m := range rep.Missing {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", m.Kind, m.Env, m.State, m.Why)
			}
		}
		for _, e := range rep.Errors {
			fmt.Fprintf(w, "\nnot inventoried: %s\n", e)
		}
		switch {
		case clean:
			fmt.Fprintf(w, "\ndeleted %d orphan(s); %d could not be deleted\n", len(rep.Deleted), len(rep.Failed))
			for _, f := range rep.Failed {
				fmt.Fprintf(w, "  %s\n", f)
			}
		case len(rep.Orphans) > 0:
			fmt.Fprintln(w, "\nnothing was deleted (a dry run); delete those past the grace period with: paddock env orphans -clean")
		}
	})
	if len(rep.Failed) > 0 {
		return exitError{exitRefused, fmt.Errorf("%d orphan(s) could not be deleted", len(rep.Failed))}
	}
	return nil
}

// upUpdate moves an existing environment to the new commit (`env up
// -update`, CI mode's push) and, with wait, follows it until the node runs
// that commit.
func upUpdate(ctx context.Context, c *api.Client, raw []byte, body api.CreateBody, timeout time.Duration, wait bool) (envmgr.Environment, error) {
	s, err := spec.Parse(raw, spec.Options{PRNumber: body.PRNumber, Branch: body.Branch, TTLApproved: true})
	if err != nil {
		return envmgr.Environment{}, exitError{exitRefused, err}
	}
	e, err := c.Update(ctx, s.Name, body)
	if err != nil {
		return e, classify(err)
	}
	if !wait {
		return e, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_ = c.Watch(ctx, s.Name, func(x envmgr.Environment) bool {
		e = x
		return !(x.DeployedSHA == body.CommitSHA || x.State == envmgr.StateFailed)
	})
	if e.DeployedSHA != body.CommitSHA {
		return e, exitError{exitRefused, fmt.Errorf("%s did not move to %s: %s %s", s.Name, body.CommitSHA, e.State, e.Reason)}
	}
	return e, nil
}
