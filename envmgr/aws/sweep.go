package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/awsec2"
	"github.com/paddockhq/paddock/envmgr/awssecrets"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/envmgr/sweep"
	"github.com/paddockhq/paddock/envmgr/terraform"
)

// The kinds of resource an AWS environment has.
const (
	KindInstance = "ec2-instance"
	KindSecret   = "secret"
	KindArtifact = "artifact"
	KindS3State  = "tf-state-s3"
	KindNATSUser = "nats-user"
)

var _ sweep.Source = (*Provisioner)(nil)

// Terraform is the Terraform driver, itself a sweep.Source (working
// directories).
func (p *Provisioner) Terraform() *terraform.Provisioner { return p.tf }

// Kinds: instances tagged AutoDestroy=true, secrets under /dev-envs/,
// strategy artifacts, and (with an S3 backend) state keys.
func (p *Provisioner) Kinds() []string {
	return []string{KindInstance, KindSecret, KindArtifact, KindS3State, KindNATSUser}
}

// Expects: a provisioned environment has an instance (running or stopped),
// its secrets, and its state key when state lives in S3.
func (p *Provisioner) Expects(e envmgr.Environment) []string {
	switch e.State {
	case envmgr.StateReady, envmgr.StateDegraded, envmgr.StateStopped:
		if p.tf != nil && p.tf.Backend().S3Bucket != "" {
			return []string{KindInstance, KindSecret, KindS3State}
		}
		return []string{KindInstance, KindSecret}
	}
	return nil
}

// Inventory lists the AWS side: instances, secrets, artifacts (with the
// environments whose instances or saved variables name each digest), state
// keys.
func (p *Provisioner) Inventory(ctx context.Context) ([]sweep.Resource, error) {
	var out []sweep.Resource
	insts, err := awsec2.Find(ctx, p.ec2, "")
	if err != nil {
		return nil, err
	}
	users := map[string][]string{} // digest -> environments
	for _, in := range insts {
		out = append(out, sweep.Resource{Kind: KindInstance, ID: in.ID, Env: in.EnvName, Created: in.Launched.UTC(), Detail: in.State})
		for _, tag := range []string{"StrategySHA256", "StrategyConfigSHA256"} {
			if d := in.Tags[tag]; d != "" && in.EnvName != "" {
				users[d] = append(users[d], in.EnvName)
			}
		}
	}
	secrets, err := p.secrets.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range secrets {
		out = append(out, sweep.Resource{Kind: KindSecret, ID: s.Name, Env: s.Env, Created: s.Created.UTC()})
		if s.Env == "" || s.Name != awssecrets.NATSUsersName(s.Env) || p.cfg.Issuer == nil {
			continue
		}
		// The users the environment's credentials were issued to: any not
		// revoked is a NATS user (until its JWT expires).
		list, err := p.secrets.Get(ctx, s.Env, s.Name)
		if err != nil {
			return nil, err
		}
		for _, pub := range strings.Fields(list) {
			revoked, err := p.cfg.Issuer.Revoked(pub)
			if err != nil {
				return nil, err
			}
			if !revoked {
				out = append(out, sweep.Resource{Kind: KindNATSUser, ID: pub, Env: s.Env, Created: s.Created.UTC(), Detail: "not revoked"})
			}
		}
	}
	p.referenced(users)
	arts, err := p.listObjects(ctx, p.cfg.ArtifactBucket, "strategies/")
	if err != nil {
		return nil, err
	}
	for _, o := range arts {
		digest := strings.TrimPrefix(sdkaws.ToString(o.Key), "strategies/")
		used := users[digest]
		sort.Strings(used)
		out = append(out, sweep.Resource{Kind: KindArtifact, ID: sdkaws.ToString(o.Key), Created: sdkaws.ToTime(o.LastModified).UTC(),
			Shared: true, UsedBy: used, Detail: fmt.Sprintf("s3://%s, %d bytes", p.cfg.ArtifactBucket, sdkaws.ToInt64(o.Size))})
	}
	if b := p.stateBackend(); b.S3Bucket != "" {
		keys, err := p.listObjects(ctx, b.S3Bucket, b.S3KeyPrefix)
		if err != nil {
			return nil, err
		}
		for _, o := range keys {
			key := sdkaws.ToString(o.Key)
			rest, ok := strings.CutSuffix(strings.TrimPrefix(key, b.S3KeyPrefix), "/terraform.tfstate")
			if !ok {
				continue
			}
			env := rest
			if spec.CheckName(env) != nil {
				env = ""
			}
			out = append(out, sweep.Resource{Kind: KindS3State, ID: key, Env: env, Created: sdkaws.ToTime(o.LastModified).UTC(),
				Detail: "s3://" + b.S3Bucket + "/" + key})
		}
	}
	return out, nil
}

// referenced adds the digests of artifacts uploaded for an environment and
// not yet applied, and those in the saved variables of every working
// directory here.
func (p *Provisioner) referenced(users map[string][]string) {
	p.artMu.Lock()
	for env, a := range p.artifacts {
		for _, d := range []string{a.sha, a.configSHA} {
			if d != "" {
				users[d] = append(users[d], env)
			}
		}
	}
	p.artMu.Unlock()
	if p.tf == nil {
		return
	}
	inv, _ := p.tf.Inventory(context.Background())
	for _, r := range inv {
		if r.Env == "" {
			continue
		}
		vars, err := p.tf.SavedVars(r.Env)
		if err != nil {
			continue
		}
		for _, k := range []string{"strategy_sha256", "strategy_config_sha256"} {
			if d, _ := vars[k].(string); d != "" {
				users[d] = append(users[d], r.Env)
			}
		}
	}
}

func (p *Provisioner) stateBackend() terraform.Backend {
	if p.tf == nil {
		return p.cfg.Terraform.Backend
	}
	return p.tf.Backend()
}

func (p *Provisioner) listObjects(ctx context.Context, bucket, prefix string) ([]s3types.Object, error) {
	var out []s3types.Object
	pg := s3.NewListObjectsV2Paginator(p.s3, &s3.ListObjectsV2Input{Bucket: sdkaws.String(bucket), Prefix: sdkaws.String(prefix)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		out = append(out, page.Contents...)
	}
	return out, nil
}

// Delete removes one orphan: an instance is terminated, a secret deleted
// (with the recovery window), an artifact deleted, a state key deleted once
// the state holds nothing (a working directory with its variables is
// destroyed first; a state that still holds resources is refused, so that
// nothing it tracks is lost track of).
func (p *Provisioner) Delete(ctx context.Context, r sweep.Resource) error {
	switch r.Kind {
	case KindInstance:
		if !strings.HasPrefix(r.ID, "i-") {
			return fmt.Errorf("bad instance id %q", r.ID)
		}
		// Only an instance still tagged as paddock's (AutoDestroy=true).
		insts, err := awsec2.Find(ctx, p.ec2, r.Env)
		if err != nil {
			return err
		}
		for _, in := range insts {
			if in.ID == r.ID {
				_, err := p.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{r.ID}})
				if err != nil {
					return fmt.Errorf("terminate %s: %w", r.ID, err)
				}
				return nil
			}
		}
		return nil
	case KindSecret:
		return p.secrets.DeleteSecret(ctx, r.ID)
	case KindNATSUser:
		if p.cfg.Issuer == nil {
			return errors.New("no NATS issuer")
		}
		return p.cfg.Issuer.Revoke(ctx, r.ID)
	case KindArtifact:
		if !strings.HasPrefix(r.ID, "strategies/") {
			return fmt.Errorf("bad artifact key %q", r.ID)
		}
		_, err := p.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: sdkaws.String(p.cfg.ArtifactBucket), Key: sdkaws.String(r.ID)})
		return err
	case KindS3State:
		b := p.stateBackend()
		if b.S3Bucket == "" || !strings.HasPrefix(r.ID, b.S3KeyPrefix) || !strings.HasSuffix(r.ID, "/terraform.tfstate") {
			return fmt.Errorf("bad state key %q", r.ID)
		}
		if r.Env != "" && p.tf != nil {
			if _, err := p.tf.SavedVars(r.Env); err == nil {
				if err := p.tf.Destroy(ctx, r.Env); err != nil {
					return err
				}
			}
		}
		n, err := p.stateResources(ctx, b.S3Bucket, r.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("state %s still tracks %d resources and no working directory here can destroy them; destroy them (terraform destroy with the environment's variables) before its state is deleted", r.ID, n)
		}
		_, err = p.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: sdkaws.String(b.S3Bucket), Key: sdkaws.String(r.ID)})
		return err
	}
	return fmt.Errorf("aws: unknown kind %q", r.Kind)
}

// stateResources counts the resources a state object tracks.
func (p *Provisioner) stateResources(ctx context.Context, bucket, key string) (int, error) {
	out, err := p.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: sdkaws.String(bucket), Key: sdkaws.String(key)})
	if err != nil {
		var nk *s3types.NoSuchKey
		if errors.As(err, &nk) {
			return 0, nil
		}
		return 0, fmt.Errorf("read state %s: %w", key, err)
	}
	defer out.Body.Close()
	var st struct {
		Resources []json.RawMessage `json:"resources"`
	}
	if err := json.NewDecoder(io.LimitReader(out.Body, 64<<20)).Decode(&st); err != nil {
		return 0, fmt.Errorf("read state %s: %w", key, err)
	}
	return len(st.Resources), nil
}
