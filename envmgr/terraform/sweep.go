package terraform

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/envmgr/sweep"
)

// KindWorkdir is an environment's Terraform working directory (its root
// module, saved variables, and local state when there is no S3 backend).
const KindWorkdir = "tf-workdir"

var _ sweep.Source = (*Provisioner)(nil)

// Kinds: working directories.
func (p *Provisioner) Kinds() []string { return []string{KindWorkdir} }

// Expects: a provisioned environment has its working directory here.
func (p *Provisioner) Expects(e envmgr.Environment) []string {
	switch e.State {
	case envmgr.StateReady, envmgr.StateDegraded, envmgr.StateStopped:
		return []string{KindWorkdir}
	}
	return nil
}

// Inventory lists the working directories under StateDir.
func (p *Provisioner) Inventory(context.Context) ([]sweep.Resource, error) {
	entries, err := os.ReadDir(p.cfg.StateDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list Terraform working directories: %w", err)
	}
	var out []sweep.Resource
	for _, de := range entries {
		info, err := de.Info()
		if !de.IsDir() || err != nil {
			continue
		}
		env, detail := de.Name(), "no saved variables: nothing was applied from it"
		if spec.CheckName(env) != nil {
			env = ""
		}
		if _, err := os.Stat(filepath.Join(p.cfg.StateDir, de.Name(), "vars.json")); err == nil {
			detail = "holds saved variables: deleting it runs terraform destroy first"
		}
		out = append(out, sweep.Resource{Kind: KindWorkdir, ID: filepath.Join(p.cfg.StateDir, de.Name()), Env: env, Created: info.ModTime().UTC(), Detail: detail})
	}
	return out, nil
}

// Delete destroys what the working directory's state holds (terraform
// destroy with its saved variables), then removes the directory: removing
// only the directory would lose the state, and with it the way to destroy
// what leaked.
func (p *Provisioner) Delete(ctx context.Context, r sweep.Resource) error {
	if r.Kind != KindWorkdir {
		return fmt.Errorf("terraform: unknown kind %q", r.Kind)
	}
	root, _ := filepath.Abs(p.cfg.StateDir)
	abs, err := filepath.Abs(r.ID)
	if err != nil || filepath.Dir(abs) != root {
		return fmt.Errorf("%s is not a working directory under %s", r.ID, root)
	}
	if r.Env != "" {
		if err := p.Destroy(ctx, r.Env); err != nil {
			return err
		}
	}
	return os.RemoveAll(abs)
}

// SavedVars are the variables last applied for name (nil, error when it
// was never provisioned here).
func (p *Provisioner) SavedVars(name string) (map[string]any, error) { return p.savedVars(name) }

// Backend is the configured state backend.
func (p *Provisioner) Backend() Backend { return p.cfg.Backend }
