package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/paddockhq/paddock/envmgr/github"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/slack"
	"github.com/paddockhq/paddock/envmgr/spec"

	"github.com/paddockhq/paddock/envmgr/aws"

	"github.com/paddockhq/paddock/envmgr/api"
	"github.com/paddockhq/paddock/envmgr/daemon"
	"github.com/paddockhq/paddock/envmgr/terraform"
	"gopkg.in/yaml.v3"
)

func init() {
	commands["envmgr"] = command{"run the environment manager (API, reconciler; local or Terraform/AWS provisioner)", runEnvmgr}
}

func runEnvmgr(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("envmgr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats-url", envDefault("PADDOCK_NATS_URL", "nats://127.0.0.1:4222"), "NATS URL (the feed's embedded server by default) [PADDOCK_NATS_URL]")
	creds := fs.String("nats-creds", envDefault("PADDOCK_NATS_CREDS", ""), "NATS credentials file [PADDOCK_NATS_CREDS]")
	listen := fs.String("listen", envDefault("PADDOCK_ENVMGR_LISTEN", "127.0.0.1:8090"), "API listen address [PADDOCK_ENVMGR_LISTEN]")
	tokens := fs.String("tokens", envDefault("PADDOCK_TOKENS", ""), "API tokens file: tokens: [{name, role, sha256}] [PADDOCK_TOKENS]")
	stateDir := fs.String("state-dir", ".state", "local state: node directories")
	authDir := fs.String("auth-dir", envDefault("PADDOCK_NATS_AUTH_DIR", ""), "NATS authority directory (operator/JWT mode): the manager connects as its user and issues node credentials [PADDOCK_NATS_AUTH_DIR]")
	source := fs.String("source-dir", envDefault("PADDOCK_SOURCE_DIR", "."), "repository checkout that strategy paths in .dev-env.yaml are relative to [PADDOCK_SOURCE_DIR]")
	awsFile := fs.String("aws-config", envDefault("PADDOCK_AWS_CONFIG", ""), "provision on AWS with the Terraform module, as this YAML file describes (see README); default: local processes [PADDOCK_AWS_CONFIG]")
	replicas := fs.Int("replicas", 1, "JetStream replicas of the environment store (3 on a production cluster)")
	every := fs.Duration("reconcile-every", 10*time.Second, "expiry and supervision interval")
	workers := fs.Int("reconcile-workers", 4, "environments worked on at once")
	level := fs.String("log-level", envDefault("PADDOCK_LOG_LEVEL", "info"), "debug, info, warn or error")
	auditAge := fs.Duration("audit-max-age", defaultAuditMaxAge, "keep audit records at most this long (0: forever)")
	auditBytes := fs.Int64("audit-max-bytes", defaultAuditMaxBytes, "keep at most this many bytes of audit records, oldest dropped first (0: unlimited)")
	auditPerEnv := fs.Int64("audit-max-per-env", defaultAuditMaxPerEnv, "keep at most this many audit records per environment (0: unlimited)")
	githubFile := fs.String("github", envDefault("PADDOCK_GITHUB", ""), "pull-request integration YAML: webhook secret, app or token, repos (see README) [PADDOCK_GITHUB]")
	lifecycleFile := fs.String("lifecycle", envDefault("PADDOCK_LIFECYCLE", ""), "lifecycle YAML: expiry warnings, Slack notifications and slash command, node grace, orphan sweeper (see README) [PADDOCK_LIFECYCLE]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *workers < 1 || *workers > 1024 {
		return usageError{"paddock envmgr: -reconcile-workers must be 1 to 1024"}
	}
	if *auditAge < 0 || *auditBytes < 0 || *auditPerEnv < 0 {
		return usageError{"paddock envmgr: -audit-max-age, -audit-max-bytes and -audit-max-per-env must not be negative"}
	}
	if *tokens == "" {
		return usageError{"paddock envmgr: -tokens is required (hash a token with `paddock env token-hash <token>`)"}
	}
	log, err := newLogger(*level, stderr)
	if err != nil {
		return err
	}
	t, err := api.LoadTokens(*tokens)
	if err != nil {
		return err
	}
	var lc daemon.Lifecycle
	if *lifecycleFile != "" {
		if lc, err = loadLifecycle(*lifecycleFile); err != nil {
			return err
		}
	}
	var ghCfg *github.Config
	if *githubFile != "" {
		if ghCfg, err = loadGitHub(*githubFile); err != nil {
			return err
		}
	}
	var awsCfg *aws.Config
	if *awsFile != "" {
		if awsCfg, err = loadAWSConfig(*awsFile); err != nil {
			return err
		}
	}
	return daemon.Run(ctx, daemon.Config{AWS: awsCfg, NATSURL: *natsURL, NATSCreds: *creds, Listen: *listen, StateDir: *stateDir, Tokens: t, ReconcileEvery: *every, AuthDir: *authDir, Replicas: *replicas, SourceDir: *source,
		AuditMaxAge: *auditAge, AuditMaxBytes: *auditBytes, AuditMaxPerEnv: *auditPerEnv, Workers: *workers, Lifecycle: lc, GitHub: ghCfg}, log,
		func(s daemon.Started) { fmt.Fprintf(stderr, "environment manager API on %s\n", s.APIURL) })
}

// Audit retention defaults: a quarter of history, 1 GiB, 10,000 records
// per environment.
const (
	defaultAuditMaxAge    = 90 * 24 * time.Hour
	defaultAuditMaxBytes  = 1 << 30
	defaultAuditMaxPerEnv = 10_000
)

// awsFile is the -aws-config file.
type awsFile struct {
	TerraformBinary string            `yaml:"terraform_binary"` // default: tofu or terraform on PATH
	Module          string            `yaml:"module"`           // default modules/dev-trading-env
	PluginMirror    string            `yaml:"plugin_mirror"`
	S3Bucket        string            `yaml:"state_s3_bucket"` // default: local state under -state-dir
	S3KeyPrefix     string            `yaml:"state_s3_key_prefix"`
	Region          string            `yaml:"region"`
	Endpoint        string            `yaml:"endpoint"`
	VPCID           string            `yaml:"vpc_id"`
	SubnetID        string            `yaml:"subnet_id"`
	VPNCIDR         string            `yaml:"vpn_cidr"`
	AMI             string            `yaml:"ami_id"`
	InstanceType    string            `yaml:"instance_type"`
	PaddockURL      string            `yaml:"paddock_url"`
	ArtifactBucket  string            `yaml:"artifact_bucket"` // strategies/<sha256> objects the nodes download
	PaddockSHA256   string            `yaml:"paddock_sha256"`
	NodeNATSURL     string            `yaml:"node_nats_url"`
	RecoveryDays    int               `yaml:"secrets_recovery_days"`
	NodeReady       string            `yaml:"node_ready_timeout"` // a Go duration; default 10m, "-1s" does not wait
	Tags            map[string]string `yaml:"tags"`
}

func loadAWSConfig(path string) (*aws.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f awsFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for name, v := range map[string]string{"vpc_id": f.VPCID, "subnet_id": f.SubnetID, "vpn_cidr": f.VPNCIDR, "ami_id": f.AMI,
		"paddock_url": f.PaddockURL, "paddock_sha256": f.PaddockSHA256, "node_nats_url": f.NodeNATSURL, "region": f.Region, "artifact_bucket": f.ArtifactBucket} {
		if v == "" {
			return nil, fmt.Errorf("%s: %s is required", path, name)
		}
	}
	if f.Module == "" {
		f.Module = "modules/dev-trading-env"
	}
	var ready time.Duration
	if f.NodeReady != "" {
		if ready, err = time.ParseDuration(f.NodeReady); err != nil || ready == 0 {
			return nil, fmt.Errorf("%s: node_ready_timeout %q: want a non-zero duration such as 10m", path, f.NodeReady)
		}
	}
	return &aws.Config{
		Terraform: terraform.Config{Binary: f.TerraformBinary, ModuleDir: f.Module, PluginMirror: f.PluginMirror,
			Backend: terraform.Backend{S3Bucket: f.S3Bucket, S3KeyPrefix: f.S3KeyPrefix, S3Region: f.Region, S3Endpoint: f.Endpoint}},
		Region: f.Region, Endpoint: f.Endpoint, VPCID: f.VPCID, SubnetID: f.SubnetID, VPNCIDR: f.VPNCIDR, AMI: f.AMI,
		InstanceType: f.InstanceType, PaddockURL: f.PaddockURL, PaddockSHA256: f.PaddockSHA256, NodeNATSURL: f.NodeNATSURL,
		RecoveryDays: f.RecoveryDays, ExtraTags: f.Tags, NodeReadyTimeout: ready, ArtifactBucket: f.ArtifactBucket,
	}, nil
}

// lifecycleFile is the -lifecycle file.
type lifecycleFile struct {
	WarnBefore   []time.Duration `yaml:"warn_before"` // default [4h, 1h]
	DestroyRetry struct {
		Min time.Duration `yaml:"min"`
		Max time.Duration `yaml:"max"`
	} `yaml:"destroy_retry"`
	NodeGrace     time.Duration `yaml:"node_grace"`
	Notifications *slack.Config `yaml:"notifications"`
	Orphans       struct {
		Grace time.Duration `yaml:"grace"`
		Every time.Duration `yaml:"every"` // negative: on demand only
	} `yaml:"orphans"`
}

// loadLifecycle reads and checks a -lifecycle file: every value it accepts
// works, or it is refused here with the field named.
func loadLifecycle(path string) (daemon.Lifecycle, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return daemon.Lifecycle{}, err
	}
	var f lifecycleFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return daemon.Lifecycle{}, fmt.Errorf("%s: %w", path, err)
	}
	bad := func(format string, a ...any) (daemon.Lifecycle, error) {
		return daemon.Lifecycle{}, fmt.Errorf("%s: "+format, append([]any{path}, a...)...)
	}
	for _, d := range f.WarnBefore {
		if d <= 0 || d > time.Duration(spec.MaxApprovedTTLHours)*time.Hour {
			return bad("warn_before %s: want a positive duration of at most %dh", d, spec.MaxApprovedTTLHours)
		}
	}
	if f.DestroyRetry.Min < 0 || f.DestroyRetry.Max < 0 || (f.DestroyRetry.Max > 0 && f.DestroyRetry.Min > f.DestroyRetry.Max) {
		return bad("destroy_retry: min and max must be positive, min at most max")
	}
	if f.NodeGrace < 0 || f.NodeGrace > 7*24*time.Hour {
		return bad("node_grace %s: want 0 (15m) to 168h", f.NodeGrace)
	}
	if f.Orphans.Grace < 0 {
		return bad("orphans.grace must not be negative")
	}
	if n := f.Notifications; n != nil {
		if err := n.Check(); err != nil {
			return bad("notifications: %v", err)
		}
		// A message is given up on before its warning's claim lapses, so
		// that two senders never hold one warning (envmgr.Lifecycle).
		if n.GiveUpAfter >= envmgr.DefaultLease {
			return bad("notifications.give_up_after %s: must be below %s", n.GiveUpAfter, envmgr.DefaultLease)
		}
	}
	return daemon.Lifecycle{WarnBefore: f.WarnBefore, DestroyRetryMin: f.DestroyRetry.Min, DestroyRetryMax: f.DestroyRetry.Max,
		NodeGrace: f.NodeGrace, Notify: f.Notifications, OrphanGrace: f.Orphans.Grace, OrphanEvery: f.Orphans.Every}, nil
}

// loadGitHub reads the -github file (github.Config; its secrets are read
// and checked when the manager starts).
func loadGitHub(path string) (*github.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c github.Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}
