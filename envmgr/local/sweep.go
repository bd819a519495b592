package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/envmgr/sweep"
)

// The kinds of resource the local provisioner leaves behind.
const (
	KindNodeDir     = "node-dir"
	KindNodeProcess = "node-process"
	KindNATSUser    = "nats-user"
)

var _ sweep.Source = (*Provisioner)(nil)

// Kinds: node directories, node processes and (with an Issuer) the NATS
// users recorded in node directories.
func (p *Provisioner) Kinds() []string { return []string{KindNodeDir, KindNodeProcess, KindNATSUser} }

// Expects: a running environment has a directory and a process; a stopped
// one its directory.
func (p *Provisioner) Expects(e envmgr.Environment) []string {
	switch e.State {
	case envmgr.StateReady, envmgr.StateDegraded:
		return []string{KindNodeDir, KindNodeProcess}
	case envmgr.StateStopped:
		return []string{KindNodeDir}
	}
	return nil
}

// Inventory lists node directories under StateDir, node processes running
// a configuration under StateDir (found in /proc, so a process whose
// directory is gone is found too), and unrevoked NATS users recorded in
// the directories.
func (p *Provisioner) Inventory(ctx context.Context) ([]sweep.Resource, error) {
	var out []sweep.Resource
	entries, err := os.ReadDir(p.cfg.StateDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list node directories: %w", err)
	}
	for _, de := range entries {
		if !de.IsDir() {
			continue
		}
		name := de.Name()
		info, err := de.Info()
		if err != nil {
			continue
		}
		env := name
		if spec.CheckName(name) != nil {
			env = "" // not a directory the provisioner made
		}
		out = append(out, sweep.Resource{Kind: KindNodeDir, ID: filepath.Join(p.cfg.StateDir, name), Env: env, Created: info.ModTime().UTC()})
		if p.cfg.Issuer == nil || env == "" {
			continue
		}
		raw, err := os.ReadFile(p.usersPath(name))
		if err != nil {
			continue
		}
		ui, _ := os.Stat(p.usersPath(name))
		for _, pub := range strings.Fields(string(raw)) {
			revoked, err := p.cfg.Issuer.Revoked(pub)
			if err != nil {
				return nil, fmt.Errorf("NATS user %s: %w", pub, err)
			}
			if !revoked {
				out = append(out, sweep.Resource{Kind: KindNATSUser, ID: pub, Env: env, Created: ui.ModTime().UTC(), Detail: "not revoked"})
			}
		}
	}
	procs, err := p.nodeProcesses()
	if err != nil {
		return nil, err
	}
	return append(out, procs...), nil
}

// nodeProcesses finds processes whose command line names a node.json under
// StateDir.
func (p *Provisioner) nodeProcesses() ([]sweep.Resource, error) {
	root, err := filepath.Abs(p.cfg.StateDir)
	if err != nil {
		return nil, err
	}
	prefix := []byte(root + string(filepath.Separator))
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []sweep.Resource
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil {
			continue
		}
		for _, arg := range bytes.Split(cmdline, []byte{0}) {
			if !bytes.HasPrefix(arg, prefix) || !bytes.HasSuffix(arg, []byte("/node.json")) {
				continue
			}
			rel := strings.TrimSuffix(string(arg[len(prefix):]), "/node.json")
			env := rel
			if strings.Contains(rel, "/") || spec.CheckName(rel) != nil {
				env = ""
			}
			var started time.Time
			if fi, err := os.Stat("/proc/" + d.Name()); err == nil {
				started = fi.ModTime().UTC()
			}
			out = append(out, sweep.Resource{Kind: KindNodeProcess, ID: strconv.Itoa(pid), Env: env, Created: started, Detail: string(arg)})
			break
		}
	}
	return out, nil
}

// Delete removes one orphan: a process is stopped (TERM, then KILL), a
// directory removed (after its node is stopped), a NATS user revoked.
func (p *Provisioner) Delete(ctx context.Context, r sweep.Resource) error {
	switch r.Kind {
	case KindNodeProcess:
		pid, err := strconv.Atoi(r.ID)
		if err != nil || pid <= 1 {
			return fmt.Errorf("bad pid %q", r.ID)
		}
		// Only a process still running a configuration under StateDir.
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(cmdline, []byte(r.Detail)) {
			return nil // gone, or the pid was reused
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(5 * time.Second)
		for running(pid) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		return nil
	case KindNodeDir:
		root, _ := filepath.Abs(p.cfg.StateDir)
		abs, err := filepath.Abs(r.ID)
		if err != nil || filepath.Dir(abs) != root {
			return fmt.Errorf("%s is not a node directory under %s", r.ID, root)
		}
		if r.Env != "" {
			defer p.lock(r.Env)()
			if err := p.stop(ctx, r.Env); err != nil {
				return err
			}
		}
		return os.RemoveAll(abs)
	case KindNATSUser:
		if p.cfg.Issuer == nil {
			return errors.New("no NATS issuer")
		}
		return p.cfg.Issuer.Revoke(ctx, r.ID)
	}
	return fmt.Errorf("local: unknown kind %q", r.Kind)
}
