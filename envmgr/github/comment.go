package github

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gh "github.com/google/go-github/v88/github"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/spec"
)

// The hidden markers: the comment is found by the first, the note (the last
// thing a command or an event said) is kept between the other two.
const (
	marker    = "<!-- paddock:pr-environment -->"
	noteStart = "<!-- paddock:note -->"
	noteEnd   = "<!-- /paddock:note -->"
)

// sync refreshes the comment and status of a pull request environment (a
// lifecycle event); other environments are not GitHub's.
func (i *Integration) sync(ctx context.Context, name string) error {
	e, _, err := i.store.Get(ctx, name)
	if errors.Is(err, envmgr.ErrNotFound) || errors.Is(err, envmgr.ErrInvalid) {
		return nil
	}
	if err != nil {
		return err
	}
	owner, repo, ok := strings.Cut(e.Repo, "/")
	if !ok || e.PRNumber <= 0 {
		return nil
	}
	return i.refresh(ctx, prRef{owner: owner, repo: repo, full: e.Repo, number: e.PRNumber}, &e, nil)
}

// refresh edits the pull request's one paddock comment to say how e is
// (creating the comment the first time) and sets the commit status. note
// replaces the kept note when not nil ("" clears it).
func (i *Integration) refresh(ctx context.Context, ref prRef, e *envmgr.Environment, note *string) error {
	id, old, err := i.findComment(ctx, ref)
	if err != nil {
		return err
	}
	kept := between(old, noteStart, noteEnd)
	if note != nil {
		kept = *note
		if kept != "" {
			kept = i.clock.Now().UTC().Format("15:04 UTC") + ": " + kept
		}
	}
	body := i.render(e, kept)
	switch {
	case id == 0:
		c, _, err := i.client.Issues.CreateComment(ctx, ref.owner, ref.repo, ref.number, &gh.IssueComment{Body: &body})
		if err != nil {
			return fmt.Errorf("create the comment on %s: %w", ref.key(), err)
		}
		i.comments[ref.key()] = c.GetID()
	case body != old:
		if _, _, err := i.client.Issues.EditComment(ctx, ref.owner, ref.repo, id, &gh.IssueComment{Body: &body}); err != nil {
			delete(i.comments, ref.key()) // deleted by someone? found again next time
			return fmt.Errorf("edit the comment on %s: %w", ref.key(), err)
		}
	}
	if e != nil && e.CommitSHA != "" && e.State != envmgr.StateDestroyed {
		st, desc := status(e)
		ctxName := i.cfg.StatusContext
		if _, _, err := i.client.Repositories.CreateStatus(ctx, ref.owner, ref.repo, e.CommitSHA,
			gh.RepoStatus{State: &st, Description: &desc, Context: &ctxName}); err != nil {
			return fmt.Errorf("commit status of %s: %w", short(e.CommitSHA), err)
		}
	}
	return nil
}

// findComment is the paddock comment's id and body (0 when there is none
// yet): remembered, else found by its marker.
func (i *Integration) findComment(ctx context.Context, ref prRef) (int64, string, error) {
	if id, ok := i.comments[ref.key()]; ok {
		c, resp, err := i.client.Issues.GetComment(ctx, ref.owner, ref.repo, id)
		if err == nil {
			return id, c.GetBody(), nil
		}
		if orNotFound(resp, err) != errNotFound {
			return 0, "", err
		}
		delete(i.comments, ref.key())
	}
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := i.client.Issues.ListComments(ctx, ref.owner, ref.repo, ref.number, opts)
		if err != nil {
			return 0, "", fmt.Errorf("list comments of %s: %w", ref.key(), err)
		}
		for _, c := range cs {
			if strings.Contains(c.GetBody(), marker) {
				i.comments[ref.key()] = c.GetID()
				return c.GetID(), c.GetBody(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, "", nil
		}
		opts.Page = resp.NextPage
	}
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	in, _, _ := strings.Cut(rest, end)
	return strings.TrimSpace(in)
}

// status is the commit status for e: pending while it comes up, success
// when ready (or stopped on request), failure with the reason otherwise.
func status(e *envmgr.Environment) (state, desc string) {
	switch e.State {
	case envmgr.StateReady:
		state, desc = "success", "environment "+e.Name+" is ready"
	case envmgr.StateStopped:
		state, desc = "success", "environment "+e.Name+" is stopped"
	case envmgr.StateDegraded:
		state, desc = "failure", "running but not working: "+e.Reason
	case envmgr.StateFailed:
		state, desc = "failure", "failed while "+string(e.FailedAt)+": "+e.Reason
	default:
		state, desc = "pending", "environment "+e.Name+" is "+string(e.State)
	}
	if len(desc) > 140 {
		desc = desc[:137] + "..."
	}
	return state, desc
}

var stateIcon = map[envmgr.State]string{envmgr.StateReady: "🟢", envmgr.StateDegraded: "🟠", envmgr.StateFailed: "🔴",
	envmgr.StateDestroyed: "⚫", envmgr.StateStopped: "⏸️"}

// render is the comment's body.
func (i *Integration) render(e *envmgr.Environment, note string) string {
	var b strings.Builder
	b.WriteString(marker + "\n")
	if e == nil {
		b.WriteString("### paddock environment\n\nThis pull request has no environment.\n")
	} else {
		icon := stateIcon[e.State]
		if icon == "" {
			icon = "⏳"
		}
		fmt.Fprintf(&b, "### %s paddock environment `%s`: %s\n\n", icon, e.Name, e.State)
		b.WriteString("| | |\n|---|---|\n")
		commit := "`" + short(e.CommitSHA) + "`"
		if e.DeployedSHA != "" && e.DeployedSHA != e.CommitSHA {
			commit = fmt.Sprintf("`%s` running; `%s` being deployed", short(e.DeployedSHA), short(e.CommitSHA))
		}
		fmt.Fprintf(&b, "| Commit | %s |\n", commit)
		switch e.State {
		case envmgr.StateDegraded:
			fmt.Fprintf(&b, "| Not working | %s |\n", cell(e.Reason))
		case envmgr.StateFailed:
			fmt.Fprintf(&b, "| Failed | while %s: %s |\n", e.FailedAt, cell(e.Reason))
		case envmgr.StateDestroyed, envmgr.StateDestroying:
			if e.DestroyReason != "" {
				fmt.Fprintf(&b, "| Destroyed because | %s |\n", cell(e.DestroyReason))
			}
		case envmgr.StateProvisioning, envmgr.StateRequested, envmgr.StateStarting:
			if e.Reason != "" {
				fmt.Fprintf(&b, "| Progress | %s |\n", cell(e.Reason))
			} else {
				fmt.Fprintf(&b, "| Progress | building the strategy from `%s` and starting the node |\n", short(e.CommitSHA))
			}
		}
		if h := e.Health; h != nil {
			fmt.Fprintf(&b, "| Health | %s |\n", cell(h.Summary()))
		}
		if e.Endpoint != "" && e.State != envmgr.StateDestroyed {
			fmt.Fprintf(&b, "| Node admin API | %s |\n", e.Endpoint)
			key := "`paddock env show " + e.Name + "` (the manager keeps it)"
			if i.NodeInfo != nil {
				key = i.NodeInfo(*e)
			}
			fmt.Fprintf(&b, "| API key | %s |\n", key)
		}
		if subs := subjects(e); subs != "" && e.State != envmgr.StateDestroyed {
			creds := ""
			if e.CredsRef != "" {
				creds = "; credentials: `" + e.CredsRef + "`"
			}
			fmt.Fprintf(&b, "| NATS | %s; the environment's own: `env.%s.>`%s |\n", subs, e.Name, creds)
		}
		if e.State != envmgr.StateDestroyed && e.State != envmgr.StateDestroying {
			fmt.Fprintf(&b, "| Expires | %s (TTL %dh): `/paddock extend [hours]` |\n", e.ExpiresAt.UTC().Format("Mon 2006-01-02 15:04 UTC"), e.TTLHours)
		}
		for _, w := range e.Warnings {
			if !w.SentAt.IsZero() && w.Deadline.Equal(e.ExpiresAt) {
				fmt.Fprintf(&b, "\n⏰ Expiry warning (%s before): it is destroyed at %s unless extended.\n",
					time.Duration(w.Before)*time.Second, e.ExpiresAt.UTC().Format("15:04 UTC"))
			}
		}
		if p := e.PendingTTL; p != nil {
			fmt.Fprintf(&b, "\n%dh in total requested by %s; waiting for an admin's approval.\n", p.Hours, p.By)
		}
	}
	fmt.Fprintf(&b, "\n%s\n%s\n%s\n", noteStart, note, noteEnd)
	b.WriteString("\n<sub>`/paddock up` · `/paddock status` · `/paddock extend [hours]` · `/paddock stop` · `/paddock start` · `/paddock destroy` " +
		"(the PR's author and collaborators)</sub>\n")
	return b.String()
}

// cell keeps a value on one table row.
func cell(s string) string {
	s = strings.NewReplacer("\n", " ", "|", "\\|").Replace(s)
	if len(s) > 500 {
		s = s[:497] + "..."
	}
	return s
}

// subjects lists the market data subjects the environment's node reads.
func subjects(e *envmgr.Environment) string {
	s, err := spec.Parse([]byte(e.SpecYAML), spec.Options{PRNumber: e.PRNumber, Branch: e.Branch, Now: e.CreatedAt, TTLApproved: true})
	if err != nil {
		return ""
	}
	var out []string
	for _, ex := range s.Exchanges {
		for _, in := range ex.Instruments {
			out = append(out, "`market.data."+ex.Venue+"."+in.Symbol+".>`")
		}
	}
	return "market data " + strings.Join(out, ", ")
}
