// Package github is the pull-request integration: GitHub's webhooks create
// an environment from a pull request's head commit, follow its pushes and
// destroy it when the PR closes; one comment per PR, edited at every state
// change, and a commit status say how it is; `/paddock` commands in PR
// comments drive it. The wire format is google/go-github's.
//
// Deliveries are verified (X-Hub-Signature-256) and put on a JetStream work
// queue before they are acknowledged, so a manager that dies after
// answering loses nothing, a redelivery is recognised by its delivery id on
// every replica, and exactly one replica works each message. GitHub being
// slow or down delays comments, never the lifecycle.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	gh "github.com/google/go-github/v88/github"
)

// Config configures the integration (the manager's -github file).
type Config struct {
	// APIURL is the REST API's base (default https://api.github.com/; for
	// GitHub Enterprise, https://HOST/api/v3/).
	APIURL string `yaml:"api_url"`
	// WebhookSecretFile holds the webhook's secret. Without it the webhook
	// is off (CI mode: a workflow drives `paddock env up`, and the
	// integration still fetches commits and keeps the comment and status).
	WebhookSecretFile string `yaml:"webhook_secret_file"`
	// Authentication: a GitHub App (preferred: short-lived installation
	// tokens) or a token.
	App       *App   `yaml:"app"`
	TokenFile string `yaml:"token_file"`
	// Repos are the repositories (owner/name) whose pull requests get
	// environments; deliveries from others are ignored. Required.
	Repos []string `yaml:"repos"`
	// StatusContext names the commit status (default paddock/environment).
	StatusContext string `yaml:"status_context"`
}

// App is a GitHub App installation's credentials.
type App struct {
	ID             int64  `yaml:"id"`
	InstallationID int64  `yaml:"installation_id"`
	PrivateKeyFile string `yaml:"private_key_file"`
}

// secrets are the configuration's files, read once.
type secrets struct {
	webhook []byte
	token   string
	appKey  []byte
}

// load checks the configuration and reads its secret files.
func (c *Config) load() (secrets, error) {
	var s secrets
	var errs []error
	if c.APIURL == "" {
		c.APIURL = "https://api.github.com/"
	}
	if !strings.HasSuffix(c.APIURL, "/") {
		c.APIURL += "/"
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "https" && !loopback(u)) || u.Host == "" {
		errs = append(errs, fmt.Errorf("api_url %q: want an https URL (http only to a loopback address)", c.APIURL))
	}
	read := func(field, path string) []byte {
		if path == "" {
			errs = append(errs, fmt.Errorf("%s is required", field))
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		return []byte(strings.TrimSpace(string(raw)))
	}
	if c.WebhookSecretFile != "" { // without it: CI mode (comments and statuses, no webhook)
		s.webhook = read("webhook_secret_file", c.WebhookSecretFile)
	}
	if s.webhook != nil && len(s.webhook) < 16 {
		errs = append(errs, errors.New("webhook_secret_file: the secret is shorter than 16 characters"))
	}
	switch {
	case c.App != nil && c.TokenFile != "":
		errs = append(errs, errors.New("set app or token_file, not both"))
	case c.App != nil:
		if c.App.ID <= 0 || c.App.InstallationID <= 0 {
			errs = append(errs, errors.New("app: id and installation_id are required"))
		}
		s.appKey = read("app.private_key_file", c.App.PrivateKeyFile)
	case c.TokenFile != "":
		s.token = string(read("token_file", c.TokenFile))
	default:
		errs = append(errs, errors.New("set app (a GitHub App installation) or token_file"))
	}
	if len(c.Repos) == 0 {
		errs = append(errs, errors.New("repos: list the repositories (owner/name) whose pull requests get environments"))
	}
	for _, r := range c.Repos {
		if o, n, ok := strings.Cut(r, "/"); !ok || o == "" || n == "" || strings.ContainsAny(n, "/ ") {
			errs = append(errs, fmt.Errorf("repos: %q is not owner/name", r))
		}
	}
	if c.StatusContext == "" {
		c.StatusContext = "paddock/environment"
	}
	return s, errors.Join(errs...)
}

func loopback(u *url.URL) bool {
	h := u.Hostname()
	return u.Scheme == "http" && (h == "127.0.0.1" || h == "localhost" || h == "::1")
}

// newClient builds the API client: an App's installation token (minted
// from the app's JWT and cached until it expires, by ghinstallation) or a
// static token, against the configured base URL.
func newClient(c *Config, s secrets, base http.RoundTripper) (*gh.Client, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	var tr http.RoundTripper = base
	opts := []gh.ClientOptionsFunc{gh.WithURLs(&c.APIURL, &c.APIURL)}
	if c.App != nil {
		itr, err := ghinstallation.New(base, c.App.ID, c.App.InstallationID, s.appKey)
		if err != nil {
			return nil, fmt.Errorf("github app: %w", err)
		}
		itr.BaseURL = strings.TrimRight(c.APIURL, "/")
		tr = itr
	} else {
		opts = append(opts, gh.WithAuthToken(s.token))
	}
	opts = append(opts, gh.WithHTTPClient(&http.Client{Transport: tr, Timeout: 60 * time.Second}))
	return gh.NewClient(opts...)
}

// allowed reports whether repo is configured.
func (c *Config) allowed(repo string) bool {
	for _, r := range c.Repos {
		if strings.EqualFold(r, repo) {
			return true
		}
	}
	return false
}

// retryAfter says how long to wait before calling GitHub again after err:
// its rate limits (primary: until the reset; secondary: Retry-After), a
// 5xx or a network error (backoff), or 0 when err is GitHub's final answer.
func retryAfter(err error, attempt int, now time.Time) time.Duration {
	var rl *gh.RateLimitError
	var ab *gh.AbuseRateLimitError
	var er *gh.ErrorResponse
	backoff := min(time.Duration(1<<min(attempt, 10))*time.Second, 5*time.Minute)
	switch {
	case errors.As(err, &rl):
		if d := rl.Rate.Reset.Sub(now); d > 0 {
			return min(d+time.Second, time.Hour)
		}
		return backoff
	case errors.As(err, &ab):
		if ab.RetryAfter != nil && *ab.RetryAfter > 0 {
			return min(*ab.RetryAfter, time.Hour)
		}
		return max(backoff, time.Minute)
	case errors.As(err, &er) && er.Response != nil:
		if c := er.Response.StatusCode; c >= 500 || c == http.StatusTooManyRequests {
			return backoff
		}
		if c := er.Response.StatusCode; c == http.StatusForbidden && er.Response.Header.Get("X-RateLimit-Remaining") == "0" {
			return backoff
		}
		return 0
	case errors.Is(err, context.Canceled):
		return 0
	}
	return backoff // network errors and the like
}
