package daemon

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ghStandIn is a stand-in for GitHub's REST API on loopback (GitHub itself
// cannot be reached from here). It serves a real git repository the test
// makes (file contents and tarballs by commit, as GitHub does) and records
// what the integration posts: comments and their edits, commit statuses,
// reactions. It can answer the next requests with GitHub's rate-limit
// refusal.
type ghStandIn struct {
	t    *testing.T
	srv  *httptest.Server
	repo string // the git work tree

	mu          sync.Mutex
	comments    map[int][]*ghComment
	nextID      int64
	creates     map[int]int
	edits       map[int]int
	history     map[int][]string // every body a PR's comments had, in order
	statuses    []ghStatus
	reactions   []string // "<comment id>:<content>"
	perms       map[string]string
	prs         map[int]map[string]any
	rateLimited int // the next requests refused as rate-limited
	limitedHits int
}

type ghComment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
	PR   int    `json:"-"`
}

type ghStatus struct{ SHA, State, Description, Context string }

func newGHStandIn(t *testing.T) *ghStandIn {
	g := &ghStandIn{t: t, repo: t.TempDir(), comments: map[int][]*ghComment{}, creates: map[int]int{}, edits: map[int]int{},
		perms: map[string]string{}, prs: map[int]map[string]any{}, nextID: 1000, history: map[int][]string{}}
	g.git("init", "-q", "-b", "main")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{o}/{r}/contents/{path...}", g.contents)
	mux.HandleFunc("GET /repos/{o}/{r}/tarball/{ref}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", g.srv.URL+"/_archive/"+r.PathValue("ref"))
		w.WriteHeader(http.StatusFound)
	})
	mux.HandleFunc("GET /_archive/{ref}", g.archive)
	mux.HandleFunc("GET /repos/{o}/{r}/pulls/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		g.mu.Lock()
		pr, ok := g.prs[n]
		g.mu.Unlock()
		if !ok {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		writeJSONResp(w, pr)
	})
	// GET .../issues/{n}/comments lists a PR's comments; GET
	// .../issues/comments/{id} is one comment.
	mux.HandleFunc("GET /repos/{o}/{r}/issues/{a}/{b}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("a") == "comments" {
			if c := g.comment(r.PathValue("b")); c != nil {
				writeJSONResp(w, c)
				return
			}
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		n, _ := strconv.Atoi(r.PathValue("a"))
		g.mu.Lock()
		defer g.mu.Unlock()
		writeJSONResp(w, append([]*ghComment{}, g.comments[n]...))
	})
	mux.HandleFunc("POST /repos/{o}/{r}/issues/{n}/comments", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		var c ghComment
		_ = json.NewDecoder(r.Body).Decode(&c)
		g.mu.Lock()
		g.nextID++
		c.ID, c.PR = g.nextID, n
		g.comments[n] = append(g.comments[n], &c)
		g.creates[n]++
		g.history[n] = append(g.history[n], c.Body)
		g.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		writeJSONResp(w, c)
	})

	mux.HandleFunc("PATCH /repos/{o}/{r}/issues/comments/{id}", func(w http.ResponseWriter, r *http.Request) {
		var in ghComment
		_ = json.NewDecoder(r.Body).Decode(&in)
		c := g.comment(r.PathValue("id"))
		if c == nil {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		g.mu.Lock()
		c.Body = in.Body
		g.edits[c.PR]++
		g.history[c.PR] = append(g.history[c.PR], c.Body)
		g.mu.Unlock()
		writeJSONResp(w, c)
	})
	mux.HandleFunc("POST /repos/{o}/{r}/statuses/{sha}", func(w http.ResponseWriter, r *http.Request) {
		var s struct{ State, Description, Context string }
		_ = json.NewDecoder(r.Body).Decode(&s)
		g.mu.Lock()
		g.statuses = append(g.statuses, ghStatus{SHA: r.PathValue("sha"), State: s.State, Description: s.Description, Context: s.Context})
		g.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		writeJSONResp(w, s)
	})
	mux.HandleFunc("POST /repos/{o}/{r}/issues/comments/{id}/reactions", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Content string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		g.mu.Lock()
		g.reactions = append(g.reactions, r.PathValue("id")+":"+in.Content)
		g.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		writeJSONResp(w, map[string]any{"id": 1, "content": in.Content})
	})
	mux.HandleFunc("GET /repos/{o}/{r}/collaborators/{user}/permission", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		p := g.perms[r.PathValue("user")]
		g.mu.Unlock()
		if p == "" {
			p = "read"
		}
		writeJSONResp(w, map[string]any{"permission": p, "user": map[string]any{"login": r.PathValue("user")}})
	})
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		limited := g.rateLimited > 0 && !strings.HasPrefix(r.URL.Path, "/_archive/")
		if limited {
			g.rateLimited--
			g.limitedHits++
		}
		g.mu.Unlock()
		if limited {
			w.Header().Set("X-RateLimit-Limit", "5000")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"message":"API rate limit exceeded for installation."}`))
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func writeJSONResp(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (g *ghStandIn) comment(id string) *ghComment {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, cs := range g.comments {
		for _, c := range cs {
			if strconv.FormatInt(c.ID, 10) == id {
				return c
			}
		}
	}
	return nil
}

func (g *ghStandIn) git(args ...string) string {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = g.repo
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files into the repository and commits them; it returns the
// commit's SHA.
func (g *ghStandIn) commit(files map[string]string) string {
	g.t.Helper()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(g.repo, name), []byte(content), mode); err != nil {
			g.t.Fatal(err)
		}
	}
	g.git("add", "-A")
	g.git("commit", "-q", "-m", "change")
	return g.git("rev-parse", "HEAD")
}

func (g *ghStandIn) contents(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("ref")
	cmd := exec.Command("git", "show", ref+":"+r.PathValue("path"))
	cmd.Dir = g.repo
	out, err := cmd.Output()
	if err != nil {
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
		return
	}
	writeJSONResp(w, map[string]any{"type": "file", "encoding": "base64", "size": len(out), "name": filepath.Base(r.PathValue("path")),
		"path": r.PathValue("path"), "content": base64.StdEncoding.EncodeToString(out)})
}

func (g *ghStandIn) archive(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	cmd := exec.Command("git", "archive", "--format=tar.gz", fmt.Sprintf("--prefix=Codertocat-Hello-World-%.7s/", ref), ref)
	cmd.Dir = g.repo
	out, err := cmd.Output()
	if err != nil {
		http.Error(w, "no such ref", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-gzip")
	_, _ = w.Write(out)
}

// paddockComments are the PR's comments carrying paddock's marker.
func (g *ghStandIn) paddockComments(pr int) []ghComment {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []ghComment
	for _, c := range g.comments[pr] {
		if strings.Contains(c.Body, "<!-- paddock:pr-environment -->") {
			out = append(out, *c)
		}
	}
	return out
}

func (g *ghStandIn) body(pr int) string {
	cs := g.paddockComments(pr)
	if len(cs) == 0 {
		return ""
	}
	return cs[0].Body
}
