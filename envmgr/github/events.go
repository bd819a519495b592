package github

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gh "github.com/google/go-github/v88/github"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/spec"
)

// specPath is where a pull request's environment is declared.
const specPath = ".dev-env.yaml"

// prRef names a pull request.
type prRef struct {
	owner, repo, full string
	number            int
}

func (p prRef) key() string { return p.full + "#" + strconv.Itoa(p.number) }

// onPullRequest: opened, reopened and ready_for_review provision (not
// drafts, not forks: their code must not run next to sandbox keys unasked);
// synchronize moves the environment to the new head; closed destroys it.
func (i *Integration) onPullRequest(ctx context.Context, ev *gh.PullRequestEvent) error {
	pr := ev.GetPullRequest()
	owner, repo, full := repoOf(ev.GetRepo())
	ref := prRef{owner: owner, repo: repo, full: full, number: pr.GetNumber()}
	if ref.number <= 0 || !i.cfg.allowed(full) {
		return nil
	}
	switch ev.GetAction() {
	case "opened", "reopened", "ready_for_review":
		return i.up(ctx, ref, pr, "", true)
	case "synchronize":
		return i.follow(ctx, ref, pr)
	case "closed":
		e, err := i.envOf(ctx, ref)
		if err != nil || e == nil {
			return err
		}
		why := fmt.Sprintf("pull request #%d was closed", ref.number)
		if pr.GetMerged() {
			why = fmt.Sprintf("pull request #%d was merged", ref.number)
		}
		d, err := retryConflict(func() (envmgr.Environment, error) {
			return i.mgr.DestroyBecause(ctx, actor(ev.GetSender().GetLogin()), e.Name, why)
		})
		if err != nil && !errors.Is(err, envmgr.ErrIllegalTransition) {
			return err
		}
		if err == nil {
			e = &d
		}
		note := "The environment is being destroyed: " + why + "."
		return i.refresh(ctx, ref, e, &note)
	}
	return nil
}

// forked reports whether a pull request comes from another repository.
func forked(pr *gh.PullRequest) bool {
	return !strings.EqualFold(pr.GetHead().GetRepo().GetFullName(), pr.GetBase().GetRepo().GetFullName())
}

// up creates the pull request's environment from its head commit. auto: a
// webhook asked (drafts and forks are then left for a maintainer's
// `/paddock up`); by is who asked otherwise.
func (i *Integration) up(ctx context.Context, ref prRef, pr *gh.PullRequest, by string, auto bool) error {
	if auto && (pr.GetDraft() || forked(pr)) {
		why := "it is a draft"
		if forked(pr) {
			why = "it comes from a fork (its code would run next to sandbox keys)"
		}
		note := fmt.Sprintf("No environment was started automatically: %s. A maintainer can start one with `/paddock up`.", why)
		return i.refresh(ctx, ref, nil, &note)
	}
	sha := pr.GetHead().GetSHA()
	raw, err := i.specAt(ctx, ref, sha)
	if errors.Is(err, errNotFound) {
		if auto {
			return nil // no .dev-env.yaml: this pull request has no environment, and no comment
		}
		note := fmt.Sprintf("There is no `%s` at `%s`: nothing to start.", specPath, short(sha))
		return i.refresh(ctx, ref, nil, &note)
	}
	if err != nil {
		return err
	}
	if e, err := i.envOf(ctx, ref); err != nil {
		return err
	} else if e != nil {
		return i.moveTo(ctx, ref, e, sha, raw, by)
	}
	e, err := i.mgr.Create(ctx, actor(by), envmgr.CreateRequest{SpecYAML: raw, PRNumber: ref.number, Branch: pr.GetHead().GetRef(),
		CommitSHA: sha, Repo: ref.full, Owner: pr.GetUser().GetLogin()})
	if note, final := invalid(err, sha); final {
		return i.refresh(ctx, ref, nil, &note)
	}
	if err != nil {
		return err
	}
	clear := ""
	return i.refresh(ctx, ref, &e, &clear)
}

// follow moves the environment to a new head (a push). Bursts coalesce:
// the record names the latest commit, and the reconciler redeploys from
// whatever it names when it gets there.
func (i *Integration) follow(ctx context.Context, ref prRef, pr *gh.PullRequest) error {
	e, err := i.envOf(ctx, ref)
	if err != nil || e == nil {
		return err // no environment: a push does not create one
	}
	sha := pr.GetHead().GetSHA()
	raw, err := i.specAt(ctx, ref, sha)
	if errors.Is(err, errNotFound) {
		note := fmt.Sprintf("`%s` is gone at `%s`; the environment stays on `%s` (destroy it with `/paddock destroy`).", specPath, short(sha), short(e.CommitSHA))
		return i.refresh(ctx, ref, e, &note)
	}
	if err != nil {
		return err
	}
	return i.moveTo(ctx, ref, e, sha, raw, "")
}

func (i *Integration) moveTo(ctx context.Context, ref prRef, e *envmgr.Environment, sha string, raw []byte, by string) error {
	if e.CommitSHA == sha {
		return i.refresh(ctx, ref, e, nil)
	}
	u, err := retryConflict(func() (envmgr.Environment, error) {
		return i.mgr.Update(ctx, actor(by), e.Name, envmgr.CreateRequest{SpecYAML: raw, CommitSHA: sha})
	})
	if note, final := invalid(err, sha); final {
		note += fmt.Sprintf(" The environment stays on `%s`.", short(e.CommitSHA))
		return i.refresh(ctx, ref, e, &note)
	}
	if err != nil {
		return err
	}
	clear := ""
	return i.refresh(ctx, ref, &u, &clear)
}

// invalid turns a refusal the PR's author must fix into the comment's note
// (the same line-numbered errors as `paddock env validate`); other errors
// are not final.
func invalid(err error, sha string) (string, bool) {
	var se *spec.Errors
	switch {
	case err == nil:
		return "", false
	case errors.As(err, &se):
		var b strings.Builder
		fmt.Fprintf(&b, "`%s` at `%s` is invalid, so no environment was started from it:\n\n```\n", specPath, short(sha))
		for _, fe := range se.List {
			fmt.Fprintf(&b, "%s: %s\n", specPath, fe.Error())
		}
		b.WriteString("```\nFix it and push; `paddock env validate` checks it locally.")
		return b.String(), true
	case errors.Is(err, envmgr.ErrInvalid), errors.Is(err, envmgr.ErrForbidden), errors.Is(err, envmgr.ErrExists), errors.Is(err, envmgr.ErrIllegalTransition):
		return fmt.Sprintf("No environment from `%s`: %s.", short(sha), strings.TrimPrefix(err.Error(), "envmgr: ")), true
	}
	return "", false
}

// specAt reads .dev-env.yaml at sha through the contents API.
func (i *Integration) specAt(ctx context.Context, ref prRef, sha string) ([]byte, error) {
	fc, _, resp, err := i.client.Repositories.GetContents(ctx, ref.owner, ref.repo, specPath, &gh.RepositoryContentGetOptions{Ref: sha})
	if err := orNotFound(resp, err); err != nil {
		return nil, err
	}
	if fc == nil {
		return nil, errNotFound // a directory of that name
	}
	if fc.GetSize() > spec.MaxFileBytes {
		return []byte(strings.Repeat(" ", spec.MaxFileBytes+1)), nil // refused by the parser with its own message
	}
	s, err := fc.GetContent()
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", specPath, err)
	}
	return []byte(s), nil
}

// envOf is the pull request's live environment, or nil.
func (i *Integration) envOf(ctx context.Context, ref prRef) (*envmgr.Environment, error) {
	all, err := i.store.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range all {
		if e.PRNumber == ref.number && strings.EqualFold(e.Repo, ref.full) && e.State != envmgr.StateDestroyed {
			return &e, nil
		}
	}
	return nil, nil
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// onComment runs `/paddock up|status|extend [hours]|stop|start|destroy`
// from a pull request's comment, for the PR's author and the repository's
// members and collaborators; anyone else is refused politely. The reply is
// a reaction on the command and the refreshed paddock comment.
func (i *Integration) onComment(ctx context.Context, ev *gh.IssueCommentEvent) error {
	if ev.GetAction() != "created" || !ev.GetIssue().IsPullRequest() {
		return nil
	}
	body := strings.TrimSpace(ev.GetComment().GetBody())
	line, _, _ := strings.Cut(body, "\n")
	args := strings.Fields(line)
	if len(args) == 0 || args[0] != "/paddock" {
		return nil
	}
	owner, repo, full := repoOf(ev.GetRepo())
	ref := prRef{owner: owner, repo: repo, full: full, number: ev.GetIssue().GetNumber()}
	who := ev.GetComment().GetUser().GetLogin()
	commentID := ev.GetComment().GetID()
	pr, resp, err := i.client.PullRequests.Get(ctx, owner, repo, ref.number)
	if err := orNotFound(resp, err); err != nil {
		if errors.Is(err, errNotFound) {
			return nil
		}
		return err
	}
	cmd := ""
	if len(args) > 1 {
		cmd = args[1]
	}
	allowed, err := i.mayCommand(ctx, ref, pr, who, ev.GetComment().GetAuthorAssociation(), cmd)
	if err != nil {
		return err
	}
	if !allowed {
		i.react(ctx, ref, commentID, "-1")
		note := fmt.Sprintf("@%s: sorry, `/paddock %s` is for this pull request's author and the repository's collaborators.", who, cmd)
		if cmd == "up" && forked(pr) {
			note = fmt.Sprintf("@%s: sorry, an environment for a pull request from a fork is started by a maintainer (`/paddock up`).", who)
		}
		e, _ := i.envOf(ctx, ref)
		return i.refresh(ctx, ref, e, &note)
	}
	e, err := i.envOf(ctx, ref)
	if err != nil {
		return err
	}
	usage := "Commands: `/paddock up`, `/paddock status`, `/paddock extend [hours]`, `/paddock stop`, `/paddock start`, `/paddock destroy`."
	var note string
	a := actor(who)
	switch {
	case cmd == "up":
		i.react(ctx, ref, commentID, "+1")
		return i.up(ctx, ref, pr, who, false)
	case cmd == "status":
		i.react(ctx, ref, commentID, "+1")
		return i.refresh(ctx, ref, e, nil)
	case e == nil && (cmd == "extend" || cmd == "stop" || cmd == "start" || cmd == "destroy"):
		note = fmt.Sprintf("@%s: this pull request has no environment; `/paddock up` starts one.", who)
	case cmd == "extend":
		hours := 24
		if len(args) > 2 {
			h, err := strconv.Atoi(args[2])
			if err != nil || h < 1 || h > spec.MaxApprovedTTLHours {
				note = fmt.Sprintf("@%s: hours must be a whole number from 1 to %d.", who, spec.MaxApprovedTTLHours)
				break
			}
			hours = h
		}
		x, err := retryConflict(func() (envmgr.Environment, error) { return i.mgr.Extend(ctx, a, e.Name, hours) })
		note, e = i.outcome(who, "extend", x, err, e)
		if err == nil && x.PendingTTL != nil {
			note = fmt.Sprintf("@%s: %dh in total is beyond %dh and waits for an admin's approval (`paddock env approve %s`).", who, x.PendingTTL.Hours, spec.MaxTTLHours, e.Name)
		} else if err == nil {
			note = fmt.Sprintf("@%s extended it by %dh.", who, hours)
		}
	case cmd == "stop" || cmd == "start":
		f := i.mgr.Stop
		if cmd == "start" {
			f = i.mgr.Start
		}
		x, err := retryConflict(func() (envmgr.Environment, error) { return f(ctx, a, e.Name) })
		note, e = i.outcome(who, cmd, x, err, e)
	case cmd == "destroy":
		x, err := retryConflict(func() (envmgr.Environment, error) {
			return i.mgr.DestroyBecause(ctx, a, e.Name, "@"+who+" asked with /paddock destroy")
		})
		note, e = i.outcome(who, cmd, x, err, e)
	default:
		i.react(ctx, ref, commentID, "confused")
		note = fmt.Sprintf("@%s: I do not know `/paddock %s`. %s", who, cmd, usage)
		return i.refresh(ctx, ref, e, &note)
	}
	i.react(ctx, ref, commentID, "+1")
	return i.refresh(ctx, ref, e, &note)
}

// outcome is the note for a command's result (a refusal the manager gave
// is the note; a store failure is retried).
func (i *Integration) outcome(who, cmd string, x envmgr.Environment, err error, e *envmgr.Environment) (string, *envmgr.Environment) {
	if err != nil {
		return fmt.Sprintf("@%s: `/paddock %s` was not done: %s.", who, cmd, strings.TrimPrefix(err.Error(), "envmgr: ")), e
	}
	return fmt.Sprintf("@%s: `/paddock %s` accepted.", who, cmd), &x
}

// mayCommand: the PR's author (except `up` on a fork), and members and
// collaborators (by the comment's author association, else by the
// collaborator permission API: write or more).
func (i *Integration) mayCommand(ctx context.Context, ref prRef, pr *gh.PullRequest, who, association, cmd string) (bool, error) {
	switch association {
	case "OWNER", "MEMBER", "COLLABORATOR":
		return true, nil
	}
	if strings.EqualFold(who, pr.GetUser().GetLogin()) && !(cmd == "up" && forked(pr)) {
		return true, nil
	}
	perm, resp, err := i.client.Repositories.GetPermissionLevel(ctx, ref.owner, ref.repo, who)
	if err := orNotFound(resp, err); err != nil {
		if errors.Is(err, errNotFound) {
			return false, nil
		}
		return false, err
	}
	switch perm.GetPermission() {
	case "admin", "maintain", "write":
		return true, nil
	}
	return false, nil
}

// react adds a reaction to the command's comment; a failure is logged (the
// refreshed comment is the answer that matters).
func (i *Integration) react(ctx context.Context, ref prRef, commentID int64, content string) {
	if commentID == 0 {
		return
	}
	if _, _, err := i.client.Reactions.CreateIssueCommentReaction(ctx, ref.owner, ref.repo, commentID, content); err != nil {
		i.log.Warn("reaction", "pr", ref.key(), "err", err)
	}
}

// retryConflict runs a request again while it loses to a concurrent write
// (the reconciler recording a node's health, say): the API answers such a
// loser 409 for its caller to retry, and here the integration is the
// caller.
func retryConflict(f func() (envmgr.Environment, error)) (envmgr.Environment, error) {
	for n := 0; ; n++ {
		e, err := f()
		if !errors.Is(err, envmgr.ErrConflict) || n == 9 {
			return e, err
		}
	}
}
