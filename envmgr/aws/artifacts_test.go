package aws

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/envmgr/terraform"
	"github.com/paddockhq/paddock/internal/mototest"
)

// TestStrategyArtifactsAreContentAddressed runs against moto's S3: a Go
// strategy is cross-built for the node's platform (linux/amd64) and stored
// under strategies/<sha256 of its bytes>, its configuration likewise; a
// second provision of the same content uploads nothing; a path that leaves
// the checkout is refused before anything is built or stored.
func TestStrategyArtifactsAreContentAddressed(t *testing.T) {
	awsCfg, endpoint := mototest.AWSConfig(t)
	const bucket = "artifacts"
	p := &Provisioner{s3: newS3(awsCfg, endpoint)}
	if _, err := p.s3.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: sdkaws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	src, state := t.TempDir(), t.TempDir()
	p.cfg = Config{ArtifactBucket: bucket, SourceDir: src, StateDir: state, Terraform: terraform.Config{StateDir: filepath.Join(state, "terraform")},
		StrategyTarget: defaultTarget}
	write := func(rel, body string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, rel), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("strat/go.mod", "module strat\n\ngo 1.22\n")
	write("strat/main.go", "package main\n\nfunc main() {}\n")
	write("strat.yaml", "edge: 3\n")
	s := &spec.Spec{Strategy: spec.Strategy{Binary: "strat", Config: "strat.yaml"}}

	art, err := p.uploadStrategy(t.Context(), "e1", s)
	if err != nil {
		t.Fatal(err)
	}
	get := func(sha string) []byte {
		t.Helper()
		out, err := p.s3.GetObject(t.Context(), &s3.GetObjectInput{Bucket: sdkaws.String(bucket), Key: sdkaws.String(artifactKey(sha))})
		if err != nil {
			t.Fatalf("strategies/%s: %v", sha, err)
		}
		defer out.Body.Close()
		raw, _ := io.ReadAll(out.Body)
		if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != sha {
			t.Fatalf("strategies/%s holds content with another digest", sha)
		}
		return raw
	}
	bin := get(art.sha)
	f, err := elf.NewFile(strings.NewReader(string(bin)))
	if err != nil || f.Machine != elf.EM_X86_64 {
		t.Fatalf("the stored strategy is not a linux/amd64 executable: %v", err)
	}
	if string(get(art.configSHA)) != "edge: 3\n" {
		t.Fatal("the stored configuration differs")
	}

	// Same content again: nothing is uploaded (the object's ETag and
	// modification time are unchanged).
	before, err := p.s3.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: sdkaws.String(bucket), Key: sdkaws.String(artifactKey(art.sha))})
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.uploadStrategy(t.Context(), "e2", s)
	if err != nil || *again != *art {
		t.Fatalf("second upload: %+v %v", again, err)
	}
	after, _ := p.s3.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: sdkaws.String(bucket), Key: sdkaws.String(artifactKey(art.sha))})
	if !after.LastModified.Equal(*before.LastModified) {
		t.Fatal("an object already stored under its digest was uploaded again")
	}

	// A link out of the checkout is refused; nothing new is stored.
	if err := os.Symlink("/bin/sh", filepath.Join(src, "escape")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.uploadStrategy(t.Context(), "e3", &spec.Spec{Strategy: spec.Strategy{Binary: "escape"}}); err == nil || !strings.Contains(err.Error(), "outside the source directory") {
		t.Fatalf("a strategy outside the checkout: %v", err)
	}
	list, err := p.s3.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: sdkaws.String(bucket)})
	if err != nil || len(list.Contents) != 2 {
		t.Fatalf("%d objects stored, want the strategy and its configuration (%v)", len(list.Contents), err)
	}
}
