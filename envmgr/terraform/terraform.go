// Package terraform provisions environments with a Terraform module (by
// default modules/dev-trading-env: a sandbox node on AWS), driven through
// hashicorp/terraform-exec. It implements the manager's Provisioner beside
// the local provisioner.
//
// Each environment has its own working directory under the state directory,
// a generated root module that calls the module with the environment's
// variables, and its own state (a local file there, or an S3 key per
// environment). Every operation is plan -> apply (or destroy) with -json
// output turned into progress events. Operations on one environment are
// serialized; cancelling the context interrupts Terraform (SIGINT) and a
// second deadline kills it. Terraform persists state as it goes, so an
// operation cut short (cancelled, killed, or the manager itself crashing)
// is resumed by the next one: it plans against what was recorded.
package terraform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/spec"
)

// Config configures the driver.
type Config struct {
	// Binary is the terraform or tofu executable; empty looks up tofu, then
	// terraform, on PATH.
	Binary string
	// ModuleDir is the module each environment instantiates.
	ModuleDir string
	// StateDir holds one working directory per environment.
	StateDir string
	// PluginMirror is a filesystem provider mirror; when set, providers come
	// only from it (air-gapped installs).
	PluginMirror string
	// Backend is where state lives; the zero value is a local file in the
	// environment's working directory.
	Backend Backend
	// Vars returns the module's variables for an environment. The driver
	// adds running (true, or false while stopped).
	Vars func(e envmgr.Environment, s *spec.Spec) (map[string]any, error)
	// Outputs are the module outputs passed through; EndpointOutput names the
	// node's admin URL among them (default admin_url).
	Outputs        []string
	EndpointOutput string
	// Env is added to Terraform's environment (AWS endpoint overrides for
	// an emulator, say).
	Env map[string]string
	// InterruptGrace is how long Terraform may take to stop after an
	// interrupt before it is killed; default 30s.
	InterruptGrace time.Duration
	// OnProgress receives every progress event, on the operation's goroutine.
	OnProgress func(Progress)
	// Audit records each plan and apply (plan id, artifact SHA).
	Audit  func(ctx context.Context, r envmgr.AuditRecord)
	Logger *slog.Logger
}

// Backend selects remote state.
type Backend struct {
	S3Bucket    string // empty: local state
	S3Region    string
	S3KeyPrefix string // the key is <prefix><env>/terraform.tfstate
	S3Endpoint  string // an emulator
}

// Progress is one event of a running operation, from Terraform's -json
// stream.
type Progress = envmgr.ProgressEvent

// Errors.
var (
	ErrNoBinary = errors.New("terraform: neither tofu nor terraform found")
	ErrConfig   = errors.New("terraform: invalid configuration")
)

// Provisioner runs the module for environments: provision, stop, start and
// destroy, each an init/plan/apply. It is the Terraform part of the AWS
// provisioner (envmgr/daemon), which adds secrets and the node's ready wait
// and implements envmgr.Provisioner. Safe for concurrent use; operations on
// one environment are serialized.
type Provisioner struct {
	cfg   Config
	log   *slog.Logger
	locks envmgr.EnvLocks
	cli   string // the CLI config file, when a mirror is set
}

// FindBinary returns cfg's binary, or tofu or terraform from PATH.
func FindBinary(configured string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrNoBinary, configured, err)
		}
		return configured, nil
	}
	for _, name := range []string{"tofu", "terraform"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBinary
}

// New checks the configuration and finds the binary.
func New(c Config) (*Provisioner, error) {
	if c.ModuleDir == "" || c.StateDir == "" || c.Vars == nil {
		return nil, fmt.Errorf("%w: ModuleDir, StateDir and Vars are required", ErrConfig)
	}
	bin, err := FindBinary(c.Binary)
	if err != nil {
		return nil, err
	}
	c.Binary = bin
	if c.ModuleDir, err = filepath.Abs(c.ModuleDir); err != nil {
		return nil, err
	}
	if c.StateDir, err = filepath.Abs(c.StateDir); err != nil {
		return nil, err
	}
	if c.EndpointOutput == "" {
		c.EndpointOutput = "admin_url"
	}
	if len(c.Outputs) == 0 {
		c.Outputs = []string{"instance_id", "private_ip", "admin_url", "security_group_id"}
	}
	if c.InterruptGrace <= 0 {
		c.InterruptGrace = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return nil, err
	}
	p := &Provisioner{cfg: c, log: c.Logger.With("component", "provisioner", "backend", "terraform")}
	if c.PluginMirror != "" {
		mirror, err := filepath.Abs(c.PluginMirror)
		if err != nil {
			return nil, err
		}
		// Providers from the mirror only: nothing is fetched from a registry.
		p.cli = filepath.Join(c.StateDir, "terraform.rc")
		rc := fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path = %q\n  }\n}\n", mirror)
		if err := os.WriteFile(p.cli, []byte(rc), 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Provisioner) lock(name string) func() { return p.locks.Lock(name) }

// Dir is an environment's working directory.
func (p *Provisioner) Dir(name string) string { return filepath.Join(p.cfg.StateDir, name) }

func (p *Provisioner) varsPath(name string) string { return filepath.Join(p.Dir(name), "vars.json") }

// tf prepares terraform-exec for an environment's directory.
func (p *Provisioner) tf(name string) (*tfexec.Terraform, error) {
	tf, err := tfexec.NewTerraform(p.Dir(name), p.cfg.Binary)
	if err != nil {
		return nil, err
	}
	env := map[string]string{"CHECKPOINT_DISABLE": "1"}
	for k, v := range p.cfg.Env {
		env[k] = v
	}
	// An explicit CLI config, so a machine-wide one (or a missing one named
	// by the environment) never changes where providers come from.
	env["TF_CLI_CONFIG_FILE"] = p.cli
	if p.cli == "" {
		env["TF_CLI_CONFIG_FILE"] = os.DevNull
	}
	for k, v := range osEnv() {
		if _, set := env[k]; !set {
			env[k] = v
		}
	}
	if err := tf.SetEnv(env); err != nil {
		return nil, err
	}
	// Graceful cancellation: SIGINT when the context ends, kill after grace.
	if err := tf.SetWaitDelay(p.cfg.InterruptGrace); err != nil {
		return nil, err
	}
	return tf, nil
}

// osEnv passes the manager's environment through (PATH, HOME, AWS_*),
// except variables terraform-exec manages itself.
func osEnv() map[string]string {
	out := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TF_") {
			continue
		}
		out[k] = v
	}
	return out
}

// writeRoot writes the environment's root module: the backend, one call to
// the module with vars, and the outputs passed through.
func (p *Provisioner) writeRoot(name string, vars map[string]any) error {
	dir := p.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	src, err := filepath.Rel(dir, p.cfg.ModuleDir)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(src, ".") {
		src = "./" + src
	}
	mod := map[string]any{"source": src}
	for k, v := range vars {
		mod[k] = v
	}
	backend := map[string]any{"local": map[string]any{"path": "terraform.tfstate"}}
	if b := p.cfg.Backend; b.S3Bucket != "" {
		s3 := map[string]any{"bucket": b.S3Bucket, "key": b.S3KeyPrefix + name + "/terraform.tfstate", "region": b.S3Region}
		if b.S3Endpoint != "" {
			s3["endpoints"] = map[string]any{"s3": b.S3Endpoint}
			s3["use_path_style"] = true
			s3["skip_credentials_validation"] = true
			s3["skip_requesting_account_id"] = true
		}
		backend = map[string]any{"s3": s3}
	}
	outputs := map[string]any{}
	for _, o := range p.cfg.Outputs {
		outputs[o] = map[string]any{"value": "${module.env." + o + "}"}
	}
	root := map[string]any{"terraform": map[string]any{"backend": backend}, "module": map[string]any{"env": mod}, "output": outputs}
	raw, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "main.tf.json"), raw, 0o600)
}
