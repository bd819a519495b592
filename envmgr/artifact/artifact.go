// Package artifact turns the strategy a .dev-env.yaml declares into the
// executable a node runs, for every provisioner: it confines the declared
// path to the source checkout (no symbolic link out of it, into .git or into
// the manager's state), builds a directory of Go code or takes an executable
// as is, and gives children of the manager (builds, nodes) a minimal
// environment. Values are immutable and safe for concurrent use.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Source is a checkout that .dev-env.yaml paths are relative to, and the
// manager's state directory, which they must never reach into.
type Source struct {
	Dir      string
	StateDir string
}

// Resolve resolves a path from a .dev-env.yaml to its real location, with
// every symbolic link followed, and refuses it unless it lies inside the
// source checkout, outside its .git and outside the state directory: a link
// in a checkout must not run /usr/bin/id or another environment's binary.
func (s Source) Resolve(rel string) (string, error) {
	root, err := filepath.EvalSymlinks(s.Dir)
	if err != nil {
		return "", fmt.Errorf("source directory %s: %w", s.Dir, err)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return "", fmt.Errorf("%s not found under %s: %w", rel, s.Dir, err)
	}
	if !within(root, real) {
		return "", fmt.Errorf("%s resolves to %s, outside the source directory %s", rel, real, root)
	}
	if within(filepath.Join(root, ".git"), real) {
		return "", fmt.Errorf("%s resolves into the repository's .git directory", rel)
	}
	if state, err := filepath.EvalSymlinks(s.StateDir); err == nil && within(state, real) {
		return "", fmt.Errorf("%s resolves into the manager's state directory %s", rel, state)
	}
	return real, nil
}

// within reports whether path is dir or below it (both cleaned, absolute).
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// Target is the platform a strategy is built for; the zero value is the
// manager's own (a local node).
type Target struct{ GOOS, GOARCH string }

// Strategy resolves the declared strategy: a directory of Go code is built
// into out (for target), an executable is returned as is.
func (s Source) Strategy(ctx context.Context, rel, out string, target Target) (string, error) {
	src, err := s.Resolve(rel)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		if st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s is neither a directory of Go code nor an executable", rel)
		}
		return src, nil
	}
	// -trimpath and -buildvcs=false: the same tree gives the same binary
	// wherever it is checked out (a PR commit's tarball or a clone), so its
	// SHA-256 names the code.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = BuildEnv()
	if target.GOOS != "" {
		cmd.Env = append(cmd.Env, "GOOS="+target.GOOS, "GOARCH="+target.GOARCH, "CGO_ENABLED=0")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", rel, err, b)
	}
	return out, nil
}

// SHA256 is the hex SHA-256 of the file at path.
func SHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// MinimalEnv is the environment every child the manager starts gets
// (nodes, strategy builds): no credentials or settings of the manager's own,
// such as AWS_SECRET_ACCESS_KEY, only what finding programs and a home
// directory need.
func MinimalEnv() []string {
	env := []string{"PATH=" + envOr("PATH", "/usr/local/bin:/usr/bin:/bin")}
	for _, k := range []string{"HOME", "TMPDIR", "TZ", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// BuildEnv is MinimalEnv plus the Go settings a build needs (its caches and
// module proxy), read once from `go env` with the manager's environment.
var BuildEnv = sync.OnceValue(func() []string {
	env := MinimalEnv()
	keys := []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOFLAGS", "GOTOOLCHAIN", "GOROOT"}
	out, err := exec.Command("go", append([]string{"env", "-json"}, keys...)...).Output()
	if err != nil {
		return env
	}
	var vals map[string]string
	if json.Unmarshal(out, &vals) != nil {
		return env
	}
	for _, k := range keys {
		if v := vals[k]; v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
})
