package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/paddockhq/paddock/envmgr/artifact"
	"github.com/paddockhq/paddock/envmgr/spec"
)

// Where the user data installs the strategy and its configuration; the
// node's configuration points at them.
const (
	NodeStrategyPath       = "/var/lib/paddock/strategy"
	NodeStrategyConfigPath = "/var/lib/paddock/strategy-config"
)

// strategyArtifact is what an environment's node downloads: the digests,
// which are also the S3 keys under strategies/.
type strategyArtifact struct {
	sha, configSHA string
}

func artifactKey(sha string) string { return "strategies/" + sha }

// ArtifactURI is the S3 URI of a content-addressed artifact.
func ArtifactURI(bucket, sha string) string { return "s3://" + bucket + "/" + artifactKey(sha) }

func newS3(cfg sdkaws.Config, endpoint string) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = sdkaws.String(endpoint)
			o.UsePathStyle = true // emulators serve buckets by path
		}
	})
}

// uploadStrategy builds (or takes) the declared strategy for the node's
// platform and stores it, and its configuration, content-addressed. An
// object already stored under its digest is not uploaded again: the key is
// the content.
func (p *Provisioner) uploadStrategy(ctx context.Context, name string, s *spec.Spec) (*strategyArtifact, error) {
	return p.uploadStrategyFrom(ctx, name, s, p.cfg.SourceDir)
}

// uploadStrategyFrom builds and uploads the strategy from the checkout dir.
func (p *Provisioner) uploadStrategyFrom(ctx context.Context, name string, s *spec.Spec, srcDir string) (*strategyArtifact, error) {
	src := artifact.Source{Dir: srcDir, StateDir: p.cfg.StateDir}
	dir := filepath.Join(p.cfg.Terraform.StateDir, "artifacts", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	bin, err := src.Strategy(ctx, s.Strategy.Binary, filepath.Join(dir, "strategy"), p.cfg.StrategyTarget)
	if err != nil {
		return nil, err
	}
	art := &strategyArtifact{}
	if art.sha, err = p.putContentAddressed(ctx, bin); err != nil {
		return nil, err
	}
	if s.Strategy.Config != "" {
		cfg, err := src.Resolve(s.Strategy.Config)
		if err != nil {
			return nil, fmt.Errorf("config %w", err)
		}
		if art.configSHA, err = p.putContentAddressed(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return art, nil
}

// putContentAddressed stores the file at strategies/<sha256> unless it is
// there already, and returns the digest.
func (p *Provisioner) putContentAddressed(ctx context.Context, path string) (string, error) {
	sha, err := artifact.SHA256(path)
	if err != nil {
		return "", err
	}
	bucket, key := p.cfg.ArtifactBucket, artifactKey(sha)
	_, err = p.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	var missing *s3types.NotFound
	switch {
	case err == nil:
		return sha, nil
	case !errors.As(err, &missing):
		return "", fmt.Errorf("look up s3://%s/%s: %w", bucket, key, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if _, err := p.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: f, ContentLength: sdkaws.Int64(st.Size()),
		Metadata: map[string]string{"sha256": sha}}); err != nil {
		return "", fmt.Errorf("store s3://%s/%s: %w", bucket, key, err)
	}
	return sha, nil
}
