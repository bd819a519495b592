package github

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
	gh "github.com/google/go-github/v88/github"
)

// TestAppAuthentication: as a GitHub App, the integration signs an app JWT
// (RS256, with the app's id as issuer) to mint an installation token, uses
// the token on API calls, and mints again only when it expires. The
// stand-in on loopback plays GitHub's token endpoint and API.
func TestAppAuthentication(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	var mints, calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		switch {
		case r.URL.Path == "/app/installations/77/access_tokens":
			tok, err := jwt.Parse(strings.TrimPrefix(auth, "Bearer "), func(*jwt.Token) (any, error) { return &key.PublicKey, nil })
			if err != nil || !tok.Valid || tok.Method.Alg() != "RS256" || tok.Claims.(jwt.MapClaims)["iss"] != "42" {
				http.Error(w, "bad app JWT", http.StatusUnauthorized)
				return
			}
			mints.Add(1)
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]any{"token": "ghs_installation", "expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)})
		case auth == "token ghs_installation":
			calls.Add(1)
			_ = json.NewEncoder(w).Encode([]any{})
		default:
			http.Error(w, "unauthenticated: "+auth, http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	cfg := Config{APIURL: srv.URL + "/", App: &App{ID: 42, InstallationID: 77, PrivateKeyFile: keyFile}, Repos: []string{"o/r"}}
	sec, err := cfg.load()
	if err != nil {
		t.Fatal(err)
	}
	c, err := newClient(&cfg, sec, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := c.Issues.ListComments(t.Context(), "o", "r", 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if mints.Load() != 1 || calls.Load() != 3 {
		t.Fatalf("%d tokens minted for %d calls, want 1 for 3", mints.Load(), calls.Load())
	}
}

// TestRetryAfter: GitHub's answers decide when to call again.
func TestRetryAfter(t *testing.T) {
	now := time.Now()
	resp := func(code int, h map[string]string) *http.Response {
		r := &http.Response{StatusCode: code, Header: http.Header{}, Request: &http.Request{Method: "GET"}}
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	ra := 90 * time.Second
	for _, tc := range []struct {
		name string
		err  error
		want func(time.Duration) bool
	}{
		{"primary limit waits for the reset", &gh.RateLimitError{Rate: gh.Rate{Reset: gh.Timestamp{Time: now.Add(30 * time.Second)}}, Response: resp(403, nil)},
			func(d time.Duration) bool { return d > 29*time.Second && d <= 32*time.Second }},
		{"secondary limit honours Retry-After", &gh.AbuseRateLimitError{RetryAfter: &ra, Response: resp(403, nil)}, func(d time.Duration) bool { return d == ra }},
		{"a 5xx backs off", &gh.ErrorResponse{Response: resp(502, nil)}, func(d time.Duration) bool { return d > 0 && d <= 5*time.Minute }},
		{"a 404 is final", &gh.ErrorResponse{Response: resp(404, nil)}, func(d time.Duration) bool { return d == 0 }},
		{"a 422 is final", &gh.ErrorResponse{Response: resp(422, nil)}, func(d time.Duration) bool { return d == 0 }},
		{"a network error backs off", errors.New("connection refused"), func(d time.Duration) bool { return d > 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := retryAfter(tc.err, 3, now); !tc.want(d) {
				t.Fatalf("wait %s", d)
			}
		})
	}
}

// TestConfigRefusals: what would be accepted and then not work is refused.
func TestConfigRefusals(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte("abc"), 0o600)
	tok := filepath.Join(dir, "tok")
	_ = os.WriteFile(tok, []byte("t"), 0o600)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no auth", Config{Repos: []string{"o/r"}}, "set app"},
		{"both auths", Config{TokenFile: tok, App: &App{ID: 1, InstallationID: 1, PrivateKeyFile: tok}, Repos: []string{"o/r"}}, "not both"},
		{"no repos", Config{TokenFile: tok}, "repos"},
		{"bad repo", Config{TokenFile: tok, Repos: []string{"just-a-name"}}, "not owner/name"},
		{"plain http API", Config{APIURL: "http://github.example.com/api/v3/", TokenFile: tok, Repos: []string{"o/r"}}, "https"},
		{"short webhook secret", Config{WebhookSecretFile: short, TokenFile: tok, Repos: []string{"o/r"}}, "shorter than 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.cfg.load(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
