package terraform

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/spec"
)

// These tests drive a real Terraform CLI (tofu or terraform, as `make test`
// finds or builds it) against testdata/module, whose providers come from the
// filesystem mirror `make tf-tools` builds. Nothing is faked.

func tools(t testing.TB) (bin, mirror string) {
	bin, mirror = os.Getenv("PADDOCK_TF_BINARY"), os.Getenv("PADDOCK_TF_MIRROR")
	if bin == "" || mirror == "" {
		t.Skip("PADDOCK_TF_BINARY and PADDOCK_TF_MIRROR unset: run `make test` (or `make tf-tools` and export them)")
	}
	if _, err := os.Stat(filepath.Join(mirror, "registry.terraform.io")); err != nil {
		t.Skipf("no provider mirror at %s: run `make tf-tools`", mirror)
	}
	return bin, mirror
}

type rig struct {
	p      *Provisioner
	out    string
	mu     sync.Mutex
	slow   string
	events []Progress
	audit  []envmgr.AuditRecord
}

func newRig(t testing.TB, stateDir string, grace time.Duration) *rig {
	bin, mirror := tools(t)
	r := &rig{out: filepath.Join(stateDir, "out"), slow: "true"}
	_ = os.MkdirAll(r.out, 0o700)
	p, err := New(Config{Binary: bin, ModuleDir: "testdata/module", StateDir: stateDir, PluginMirror: mirror,
		InterruptGrace: grace,
		Outputs:        []string{"instance_id", "private_ip", "admin_url", "security_group_id", "state"},
		Vars: func(e envmgr.Environment, s *spec.Spec) (map[string]any, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			return map[string]any{"env_name": e.Name, "owner": e.Owner, "paddock_sha256": "feedface", "out_dir": r.out,
				"slow_command": r.slow}, nil
		},
		OnProgress: func(ev Progress) { r.mu.Lock(); r.events = append(r.events, ev); r.mu.Unlock() },
		Audit: func(_ context.Context, a envmgr.AuditRecord) {
			r.mu.Lock()
			r.audit = append(r.audit, a)
			r.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	return r
}

func (r *rig) setSlow(cmd string) { r.mu.Lock(); r.slow = cmd; r.mu.Unlock() }

func (r *rig) sawEvent(op, typ, resource string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Op == op && e.Type == typ && (resource == "" || strings.Contains(e.Resource, resource)) {
			return true
		}
	}
	return false
}

func env(name string) envmgr.Environment { return envmgr.Environment{Name: name, Owner: "alice"} }

func (r *rig) output(t *testing.T, name, key string) string {
	t.Helper()
	outs, err := r.p.Outputs(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	_ = json.Unmarshal(outs[key], &s)
	return s
}

// TestLifecycle: plan with JSON progress -> apply -> outputs; stop and start
// (running=false/true); a second provision changes nothing; destroy.
func TestLifecycle(t *testing.T) {
	r := newRig(t, t.TempDir(), 10*time.Second)
	ctx := t.Context()
	ep, err := r.p.Provision(ctx, env("life"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ep != "http://127.0.0.1:8080/life" {
		t.Fatalf("endpoint %q", ep)
	}
	for _, ev := range [][3]string{{"plan", "planned_change", "terraform_data.node"}, {"plan", "change_summary", ""},
		{"apply", "apply_start", "local_file.node_config"}, {"apply", "apply_complete", "terraform_data.slow"}} {
		if !r.sawEvent(ev[0], ev[1], ev[2]) {
			t.Errorf("no %s %s event for %q", ev[0], ev[1], ev[2])
		}
	}
	id := r.output(t, "life", "instance_id")
	raw, err := os.ReadFile(filepath.Join(r.out, "life.json"))
	if err != nil || !strings.Contains(string(raw), id) {
		t.Fatalf("node config %s %v", raw, err)
	}
	r.mu.Lock()
	var plan string
	for _, a := range r.audit {
		if a.Action == "terraform-plan" {
			plan = a.Detail
		}
	}
	r.mu.Unlock()
	if !strings.Contains(plan, "artifact feedface") || !strings.Contains(plan, "plan ") {
		t.Fatalf("audit of the plan: %q", plan)
	}
	if err := r.p.Stop(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	if s := r.output(t, "life", "state"); s != "stopped" {
		t.Fatalf("state after stop %q", s)
	}
	if _, err := r.p.Start(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	if s := r.output(t, "life", "state"); s != "running" || r.output(t, "life", "instance_id") != id {
		t.Fatal("start replaced the instance or did not run it")
	}
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
	if _, err := r.p.Provision(ctx, env("life"), nil); err != nil {
		t.Fatal(err)
	}
	if r.sawEvent("plan", "planned_change", "") {
		t.Fatal("a second provision planned changes")
	}
	if err := r.p.Destroy(ctx, "life"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.out, "life.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("destroy left the node config")
	}
	if _, err := os.Stat(r.p.Dir("life")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("destroy left the working directory")
	}
	if err := r.p.Destroy(ctx, "life"); err != nil {
		t.Fatalf("destroying twice: %v", err)
	}
}

// TestInterruptThenResume: cancelling mid-apply interrupts Terraform, which
// stops and saves state; the next provision completes without recreating
// what exists.
func TestInterruptThenResume(t *testing.T) {
	r := newRig(t, t.TempDir(), 20*time.Second)
	r.setSlow("sleep 30")
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { _, err := r.p.Provision(ctx, env("intr"), nil); errc <- err }()
	waitFor(t, "the slow resource to start", func() bool { return r.sawEvent("apply", "apply_start", "terraform_data.slow") })
	start := time.Now()
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("an interrupted apply succeeded")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("interrupt took %v", d)
	}
	state := stateList(t, r.p, "intr")
	if !strings.Contains(state, "terraform_data.node") || strings.Contains(state, "local_file") {
		t.Fatalf("state after the interrupt:\n%s", state)
	}
	id := r.output(t, "intr", "instance_id")
	r.setSlow("true")
	if _, err := r.p.Provision(t.Context(), env("intr"), nil); err != nil {
		t.Fatal(err)
	}
	if got := r.output(t, "intr", "instance_id"); got != id {
		t.Fatalf("resume replaced the instance: %s -> %s", id, got)
	}
	_ = r.p.Destroy(t.Context(), "intr")
}

// TestKillAfterGrace: a provisioner that ignores the interrupt keeps
// Terraform busy; after the grace period Terraform is killed, and the next
// provision still completes.
func TestKillAfterGrace(t *testing.T) {
	r := newRig(t, t.TempDir(), time.Second)
	r.setSlow("trap '' INT; sleep 20")
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { _, err := r.p.Provision(ctx, env("kill"), nil); errc <- err }()
	waitFor(t, "the slow resource to start", func() bool { return r.sawEvent("apply", "apply_start", "terraform_data.slow") })
	start := time.Now()
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a killed apply succeeded")
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("kill after a 1s grace took %v", d)
	}
	r.setSlow("true")
	if _, err := r.p.Provision(t.Context(), env("kill"), nil); err != nil {
		t.Fatalf("provision after a kill: %v", err)
	}
	_ = r.p.Destroy(t.Context(), "kill")
}

// TestCrashThenResume: the whole manager (this test binary in a child
// process, with Terraform and its providers) is killed mid-apply; a new
// manager on the same state directory provisions the environment without a
// second instance.
func TestCrashThenResume(t *testing.T) {
	if os.Getenv("PADDOCK_TF_CRASH_CHILD") != "" {
		return
	}
	tools(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), "PADDOCK_TF_CRASH_CHILD="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	started := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "SLOW-STARTED") {
			started = true
			break
		}
	}
	if !started {
		_ = cmd.Wait()
		t.Fatal("the child never reached the slow resource")
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the manager, Terraform and its plugins
	_ = cmd.Wait()
	r := newRig(t, dir, 10*time.Second)
	before := stateList(t, r.p, "crash")
	if !strings.Contains(before, "terraform_data.node") {
		t.Fatalf("state after the crash:\n%s", before)
	}
	// Root outputs are written when an apply completes; the crash came
	// first, so read the instance's id from the state itself.
	id := stateValue(t, r.p, "crash", "module.env.terraform_data.node", "id")
	if id == "" {
		t.Fatal("no instance id in the state after the crash")
	}
	if _, err := r.p.Provision(t.Context(), env("crash"), nil); err != nil {
		t.Fatalf("provision after the crash: %v", err)
	}
	if got := r.output(t, "crash", "instance_id"); got != id {
		t.Fatalf("resume created a second instance: %s -> %s", id, got)
	}
	if err := r.p.Destroy(t.Context(), "crash"); err != nil {
		t.Fatal(err)
	}
}

// TestCrashChild is the manager that TestCrashThenResume kills.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("PADDOCK_TF_CRASH_CHILD")
	if dir == "" {
		t.Skip("run by TestCrashThenResume")
	}
	r := newRig(t, dir, 10*time.Second)
	r.setSlow("sleep 60")
	var once sync.Once
	// Signal once the slow resource is being created and Terraform has
	// persisted the instance created before it (it writes state between
	// resources, not at a fixed moment): the crash then lands mid-apply
	// with the instance recorded, the case resume must not duplicate.
	statePath := filepath.Join(r.p.Dir("crash"), "terraform.tfstate")
	r.p.cfg.OnProgress = func(ev Progress) {
		if ev.Op == "apply" && ev.Type == "apply_start" && strings.Contains(ev.Resource, "terraform_data.slow") {
			once.Do(func() {
				go func() {
					for { // polls: Terraform writes the file from its own process
						if raw, err := os.ReadFile(statePath); err == nil && strings.Contains(string(raw), `"name": "node"`) {
							fmt.Println("SLOW-STARTED")
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				}()
			})
		}
	}
	_, _ = r.p.Provision(context.Background(), env("crash"), nil)
}

func stateList(t *testing.T, p *Provisioner, name string) string {
	t.Helper()
	tf, err := p.tf(name)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tf.Show(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	if st.Values != nil && st.Values.RootModule != nil {
		for _, c := range st.Values.RootModule.ChildModules {
			for _, r := range c.Resources {
				addrs = append(addrs, r.Address)
			}
		}
	}
	return strings.Join(addrs, "\n")
}

func stateValue(t *testing.T, p *Provisioner, name, addr, attr string) string {
	t.Helper()
	tf, err := p.tf(name)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tf.Show(t.Context())
	if err != nil || st.Values == nil {
		t.Fatal(err)
	}
	for _, c := range st.Values.RootModule.ChildModules {
		for _, r := range c.Resources {
			if r.Address == addr {
				v, _ := r.AttributeValues[attr].(string)
				return v
			}
		}
	}
	return ""
}

// waitFor polls: Terraform runs in other processes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
