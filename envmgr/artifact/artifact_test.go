package artifact

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBuildsAreReproducible: one tree, checked out in two places, builds
// to the same bytes, so an artifact's SHA-256 identifies the commit's code
// (the pull-request chain audits it).
func TestBuildsAreReproducible(t *testing.T) {
	var sums []string
	for range 2 {
		dir := t.TempDir()
		src := filepath.Join(dir, "repo")
		if err := os.MkdirAll(filepath.Join(src, "strat"), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(src, "strat", "go.mod"), []byte("module example.com/strat\n\ngo 1.22\n"), 0o644)
		_ = os.WriteFile(filepath.Join(src, "strat", "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n"), 0o644)
		bin, err := Source{Dir: src, StateDir: filepath.Join(dir, "state")}.Strategy(t.Context(), "strat", filepath.Join(dir, "out"), Target{})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := SHA256(bin)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
	}
	if sums[0] != sums[1] {
		t.Fatalf("two builds of one tree differ: %s %s", sums[0], sums[1])
	}
}
