package terraform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/artifact"
	"github.com/paddockhq/paddock/envmgr/spec"
)

// Provision creates (or completes) the environment's resources and returns
// the node's admin URL.
func (p *Provisioner) Provision(ctx context.Context, e envmgr.Environment, s *spec.Spec) (string, error) {
	defer p.lock(e.Name)()
	vars, err := p.cfg.Vars(e, s)
	if err != nil {
		return "", fmt.Errorf("terraform vars %s: %w", e.Name, err)
	}
	vars["running"] = true
	if err := os.MkdirAll(p.Dir(e.Name), 0o700); err != nil {
		return "", err
	}
	raw, err := json.Marshal(vars)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(p.varsPath(e.Name), raw, 0o600); err != nil {
		return "", err
	}
	return p.apply(ctx, e.Name, vars)
}

// Stop applies running=false: the instance stops, everything else stays.
func (p *Provisioner) Stop(ctx context.Context, name string) error {
	defer p.lock(name)()
	vars, err := p.savedVars(name)
	if err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	vars["running"] = false
	_, err = p.apply(ctx, name, vars)
	return err
}

// Start applies running=true again.
func (p *Provisioner) Start(ctx context.Context, name string) (string, error) {
	defer p.lock(name)()
	vars, err := p.savedVars(name)
	if err != nil {
		return "", fmt.Errorf("start %s: %w", name, err)
	}
	vars["running"] = true
	return p.apply(ctx, name, vars)
}

func (p *Provisioner) savedVars(name string) (map[string]any, error) {
	raw, err := os.ReadFile(p.varsPath(name))
	if err != nil {
		return nil, fmt.Errorf("not provisioned: %w", err)
	}
	var vars map[string]any
	return vars, json.Unmarshal(raw, &vars)
}

// Destroy destroys every resource of the environment, then removes its
// working directory. Destroying what was never provisioned is a no-op.
func (p *Provisioner) Destroy(ctx context.Context, name string) error {
	defer p.lock(name)()
	vars, err := p.savedVars(name)
	if err != nil {
		return nil // never provisioned here
	}
	if err := p.writeRoot(name, vars); err != nil {
		return err
	}
	tf, err := p.tf(name)
	if err != nil {
		return err
	}
	if err := p.init(ctx, tf, name); err != nil {
		return err
	}
	pw := p.progress(name, "destroy")
	err = tf.DestroyJSON(ctx, pw)
	pw.Close()
	if err != nil {
		return fmt.Errorf("terraform destroy %s: %w", name, pw.fail(err))
	}
	p.audit(ctx, envmgr.AuditRecord{Env: name, Action: "terraform-destroy", Detail: pw.summary})
	return os.RemoveAll(p.Dir(name))
}

func (p *Provisioner) init(ctx context.Context, tf *tfexec.Terraform, name string) error {
	if err := tf.Init(ctx, tfexec.Upgrade(false)); err != nil {
		return fmt.Errorf("terraform init %s: %w", name, err)
	}
	return nil
}

// apply is plan -> apply of a saved plan -> outputs. The plan id (the
// SHA-256 of the plan file) and the artifact SHA go to the audit log.
func (p *Provisioner) apply(ctx context.Context, name string, vars map[string]any) (string, error) {
	if err := p.writeRoot(name, vars); err != nil {
		return "", err
	}
	tf, err := p.tf(name)
	if err != nil {
		return "", err
	}
	if err := p.init(ctx, tf, name); err != nil {
		return "", err
	}
	planFile := filepath.Join(p.Dir(name), "tfplan")
	pw := p.progress(name, "plan")
	_, err = tf.PlanJSON(ctx, pw, tfexec.Out(planFile))
	pw.Close()
	if err != nil {
		return "", fmt.Errorf("terraform plan %s: %w", name, pw.fail(err))
	}
	planID, err := artifact.SHA256(planFile)
	if err != nil {
		return "", err
	}
	artifact, _ := vars["paddock_sha256"].(string)
	p.audit(ctx, envmgr.AuditRecord{Env: name, Action: "terraform-plan",
		Detail: fmt.Sprintf("plan %s; artifact %s; %s", planID[:16], orNone(artifact), pw.summary)})
	aw := p.progress(name, "apply")
	err = tf.ApplyJSON(ctx, aw, tfexec.DirOrPlan(planFile))
	aw.Close()
	_ = os.Remove(planFile)
	if err != nil {
		// State is persisted as Terraform goes; the next operation resumes.
		p.audit(ctx, envmgr.AuditRecord{Env: name, Action: "terraform-apply", Detail: fmt.Sprintf("plan %s failed: %v", planID[:16], aw.fail(err))})
		return "", fmt.Errorf("terraform apply %s: %w", name, aw.fail(err))
	}
	p.audit(ctx, envmgr.AuditRecord{Env: name, Action: "terraform-apply", Detail: fmt.Sprintf("plan %s applied; %s", planID[:16], aw.summary)})
	outs, err := tf.Output(ctx)
	if err != nil {
		return "", fmt.Errorf("terraform output %s: %w", name, err)
	}
	var endpoint string
	if o, ok := outs[p.cfg.EndpointOutput]; ok {
		_ = json.Unmarshal(o.Value, &endpoint)
	}
	return endpoint, nil
}

// Outputs returns the environment's current outputs.
func (p *Provisioner) Outputs(ctx context.Context, name string) (map[string]json.RawMessage, error) {
	defer p.lock(name)()
	tf, err := p.tf(name)
	if err != nil {
		return nil, err
	}
	outs, err := tf.Output(ctx)
	if err != nil {
		return nil, err
	}
	m := map[string]json.RawMessage{}
	for k, v := range outs {
		m[k] = v.Value
	}
	return m, nil
}

func (p *Provisioner) audit(ctx context.Context, r envmgr.AuditRecord) {
	if p.cfg.Audit != nil {
		r.Actor, r.At = "terraform", time.Now()
		p.cfg.Audit(ctx, r)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// progressWriter turns Terraform's -json lines into Progress events and
// keeps the error diagnostics and the change summary.
type progressWriter struct {
	p       *Provisioner
	env, op string
	buf     bytes.Buffer
	errs    []string
	summary string
}

func (p *Provisioner) progress(env, op string) *progressWriter {
	return &progressWriter{p: p, env: env, op: op}
}

func (w *progressWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	for {
		line, err := w.buf.ReadBytes('\n')
		if err != nil {
			w.buf.Write(line) // incomplete: keep for the next write
			return len(b), nil
		}
		w.line(line)
	}
}

// Close handles a last line without a newline.
func (w *progressWriter) Close() {
	if w.buf.Len() > 0 {
		w.line(w.buf.Bytes())
		w.buf.Reset()
	}
}

func (w *progressWriter) line(line []byte) {
	var m struct {
		Level   string `json:"@level"`
		Message string `json:"@message"`
		Type    string `json:"type"`
		Hook    struct {
			Resource struct {
				Addr string `json:"addr"`
			} `json:"resource"`
			Action  string  `json:"action"`
			Elapsed float64 `json:"elapsed_seconds"`
		} `json:"hook"`
		Change struct {
			Resource struct {
				Addr string `json:"addr"`
			} `json:"resource"`
			Action string `json:"action"`
		} `json:"change"`
		Diagnostic struct {
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
			Detail   string `json:"detail"`
		} `json:"diagnostic"`
	}
	if json.Unmarshal(bytes.TrimSpace(line), &m) != nil || m.Type == "" {
		return
	}
	ev := Progress{Env: w.env, Op: w.op, Type: m.Type, Level: m.Level, Message: m.Message, Time: time.Now(),
		Resource: m.Hook.Resource.Addr, Action: m.Hook.Action, ElapsedMS: int64(m.Hook.Elapsed * 1000)}
	if ev.Resource == "" {
		ev.Resource, ev.Action = m.Change.Resource.Addr, m.Change.Action
	}
	switch {
	case m.Type == "diagnostic" && m.Diagnostic.Severity == "error":
		w.errs = append(w.errs, strings.TrimSpace(m.Diagnostic.Summary+": "+m.Diagnostic.Detail))
	case m.Type == "change_summary":
		w.summary = m.Message
	}
	if w.p.cfg.OnProgress != nil {
		w.p.cfg.OnProgress(ev)
	}
}

// fail adds Terraform's error diagnostics to err.
func (w *progressWriter) fail(err error) error {
	if len(w.errs) == 0 {
		return err
	}
	return fmt.Errorf("%w: %s", err, strings.Join(w.errs, "; "))
}
