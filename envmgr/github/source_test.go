package github

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func tarball(t testing.TB, entries []entry) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)), Linkname: e.link}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			_, _ = tw.Write([]byte(e.body))
		}
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}

// TestExtractRefusesHostileTrees: a pull request's tree is untrusted. Its
// files land under the destination or the extraction fails; links and
// devices are not created.
func TestExtractRefusesHostileTrees(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		wantErr string
		want    map[string]string // files that must exist, with content
		absent  []string
	}{
		{"a normal tree", []entry{{name: "o-r-abc/", typ: tar.TypeDir}, {name: "o-r-abc/.dev-env.yaml", body: "v: 1", typ: tar.TypeReg, mode: 0o644},
			{name: "o-r-abc/s/run.sh", body: "#!/bin/sh", typ: tar.TypeReg, mode: 0o755}}, "", map[string]string{".dev-env.yaml": "v: 1", "s/run.sh": "#!/bin/sh"}, nil},
		{"a path out of the tree", []entry{{name: "o-r-abc/../../evil", body: "x", typ: tar.TypeReg}}, "leaves the tree", nil, []string{"../evil"}},
		{"an absolute path", []entry{{name: "o-r-abc//etc/evil", body: "x", typ: tar.TypeReg}}, "leaves the tree", nil, nil},
		{"a symlink out", []entry{{name: "o-r-abc/link", link: "/etc/passwd", typ: tar.TypeSymlink}, {name: "o-r-abc/link", body: "x", typ: tar.TypeReg}},
			"", map[string]string{"link": "x"}, nil},
		{"a hard link", []entry{{name: "o-r-abc/h", link: "/etc/passwd", typ: tar.TypeLink}}, "", nil, []string{"h"}},
		{"a device", []entry{{name: "o-r-abc/dev", typ: tar.TypeChar}}, "", nil, []string{"dev"}},
		{"a file twice", []entry{{name: "o-r-abc/a", body: "1", typ: tar.TypeReg}, {name: "o-r-abc/a", body: "2", typ: tar.TypeReg}}, "exists", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dst := filepath.Join(root, "src")
			err := extract(bytes.NewReader(tarball(t, tc.entries)), dst)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			for name, body := range tc.want {
				raw, err := os.ReadFile(filepath.Join(dst, name))
				if err != nil || string(raw) != body {
					t.Fatalf("%s: %q %v", name, raw, err)
				}
			}
			for _, name := range tc.absent {
				if _, err := os.Lstat(filepath.Join(dst, name)); err == nil {
					t.Fatalf("%s was created", name)
				}
			}
			if _, err := os.Lstat(filepath.Join(root, "evil")); err == nil {
				t.Fatal("a file escaped the tree")
			}
		})
	}
}

// FuzzExtract: any gzip stream extracts under the destination or fails;
// nothing escapes it and nothing panics.
func FuzzExtract(f *testing.F) {
	f.Add(tarball(f, []entry{{name: "o-r-abc/a", body: "1", typ: tar.TypeReg}}))
	f.Add(tarball(f, []entry{{name: "o-r-abc/../x", body: "1", typ: tar.TypeReg}}))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		root := t.TempDir()
		_ = extract(bytes.NewReader(b), filepath.Join(root, "src"))
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if e.Name() != "src" {
				t.Fatalf("%s was created outside the tree", e.Name())
			}
		}
	})
}
