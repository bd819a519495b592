package github

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	gh "github.com/google/go-github/v88/github"

	"github.com/paddockhq/paddock/envmgr"
)

// Limits of a source tarball: a strategy's repository, not a monorepo.
const (
	maxTarball   = 256 << 20
	maxFiles     = 50_000
	maxExtracted = 1 << 30
)

// Sources fetches a commit's tree (its tarball, through the API) into a
// cache directory, once per commit, and answers where it is: the local
// provisioner builds a pull request's strategy from it. Safe for
// concurrent use.
type Sources struct {
	client *gh.Client
	http   *http.Client
	dir    string
	mu     sync.Mutex
	locks  map[string]*sync.Mutex
}

// For is local.Config.SourceFor: a pull request's environment's commit
// tree; "" for other environments (they build from the manager's checkout).
func (s *Sources) For(ctx context.Context, e envmgr.Environment) (string, error) {
	if e.Repo == "" || e.CommitSHA == "" {
		return "", nil
	}
	return s.Fetch(ctx, e.Repo, e.CommitSHA)
}

// Fetch returns the directory holding repo's tree at sha, downloading and
// extracting it the first time.
func (s *Sources) Fetch(ctx context.Context, repo, sha string) (string, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || !hexSHA(sha) {
		return "", fmt.Errorf("source %s@%s: want owner/name and a hex commit SHA", repo, sha)
	}
	key := strings.ReplaceAll(repo, "/", "_") + "@" + sha
	dir := filepath.Join(s.dir, key)
	s.mu.Lock()
	if s.locks == nil {
		s.locks = map[string]*sync.Mutex{}
	}
	l := s.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		s.locks[key] = l
	}
	s.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return filepath.Join(dir, "src"), nil
	}
	link, _, err := s.client.Repositories.GetArchiveLink(ctx, owner, name, gh.Tarball, &gh.RepositoryContentGetOptions{Ref: sha}, 3)
	if err != nil {
		return "", fmt.Errorf("tarball link of %s@%s: %w", repo, sha, err)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", link.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s@%s: %w", repo, sha, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s@%s: %s", repo, sha, resp.Status)
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := extract(io.LimitReader(resp.Body, maxTarball), filepath.Join(dir, "src")); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("extract %s@%s: %w", repo, sha, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o600); err != nil {
		return "", err
	}
	return filepath.Join(dir, "src"), nil
}

func hexSHA(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// extract unpacks a GitHub tarball (one top-level directory) into dst:
// regular files and directories only, every path inside dst, bounded in
// count and size. Links and devices are skipped: a tree from a pull
// request is untrusted.
func extract(r io.Reader, dst string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	var files int
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		// Strip the top-level <owner>-<repo>-<sha>/ directory.
		_, rel, ok := strings.Cut(filepath.ToSlash(h.Name), "/")
		if !ok || rel == "" {
			continue
		}
		clean := filepath.Clean(filepath.FromSlash(rel))
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%q leaves the tree", h.Name)
		}
		path := filepath.Join(dst, clean)
		if files++; files > maxFiles {
			return fmt.Errorf("more than %d files", maxFiles)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if total += h.Size; total > maxExtracted {
				return fmt.Errorf("more than %d bytes", maxExtracted)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			mode := os.FileMode(0o600)
			if h.Mode&0o111 != 0 {
				mode = 0o700
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, io.LimitReader(tr, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
