package terraform

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	"github.com/paddockhq/paddock/internal/mototest"
)

// TestModuleAgainstMoto is `make test-module`: modules/dev-trading-env's
// example root module with the real AWS provider (PADDOCK_TF_AWS_PROVIDER,
// a binary built from source and cached outside the repository) against
// moto's server: validate, plan, apply, plan again (no changes), destroy.
// It checks what moto cannot enforce by reading the plan: no port 22, a
// Deny on /prod/* in the instance role's policy, the tags.
func TestModuleAgainstMoto(t *testing.T) {
	provider := os.Getenv("PADDOCK_TF_AWS_PROVIDER")
	if provider == "" {
		t.Skip("PADDOCK_TF_AWS_PROVIDER unset: `make test-module` runs this when the AWS provider is cached")
	}
	bin, _ := tools(t)
	// A mirror with the AWS provider beside the local one.
	mirror := t.TempDir()
	for _, host := range []string{"registry.terraform.io", "registry.opentofu.org"} {
		d := filepath.Join(mirror, host, "hashicorp", "aws", "6.0.0", "linux_amd64")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(provider, filepath.Join(d, "terraform-provider-aws_v6.0.0")); err != nil {
			t.Fatal(err)
		}
	}
	rc := filepath.Join(mirror, "terraform.rc")
	_ = os.WriteFile(rc, []byte(fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path = %q\n  }\n}\n", mirror)), 0o600)

	endpoint := mototest.Start(t)

	// Copy the module and its example, so .terraform and state stay out of
	// the source tree.
	work := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../../modules/dev-trading-env", work).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	dir := filepath.Join(work, "dev-trading-env", "examples")
	tf, err := tfexec.NewTerraform(dir, bin)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TF_CLI_CONFIG_FILE": rc, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_REGION": "us-east-1", "CHECKPOINT_DISABLE": "1", "PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME")}
	if err := tf.SetEnv(env); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := tf.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := tf.Validate(ctx); err != nil || !v.Valid {
		t.Fatalf("validate: %v %+v", err, v)
	}
	vars := tfexec.Var("aws_endpoint=" + endpoint)
	planFile := filepath.Join(dir, "tfplan")
	start := time.Now()
	if _, err := tf.Plan(ctx, vars, tfexec.Out(planFile)); err != nil {
		t.Fatal(err)
	}
	plan, err := tf.ShowPlanFile(ctx, planFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(plan)
	planJSON := string(raw)
	for _, want := range []string{`"http_tokens":"required"`, `"encrypted":true`, `"instance_initiated_shutdown_behavior":"terminate"`, `"volume_type":"gp3"`, `"AutoDestroy":"true"`,
		`"EnvName":"example-mean-reversion"`, `"CreatedAt":"2026-11-23T00:00:00Z"`, `"CostCenter":"strategy-research"`, `"from_port":8080`} {
		if !strings.Contains(planJSON, want) {
			t.Errorf("plan lacks %s", want)
		}
	}
	// Every taggable resource of the module carries the full tag set.
	tagged := 0
	for _, rc := range plan.ResourceChanges {
		after, _ := rc.Change.After.(map[string]any)
		tags, ok := after["tags"].(map[string]any)
		if !strings.HasPrefix(rc.Address, "module.env.") || !ok {
			continue
		}
		tagged++
		for _, k := range []string{"Name", "Environment", "EnvName", "PRNumber", "Owner", "TTLHours", "CreatedAt", "AutoDestroy", "CostCenter"} {
			if tags[k] == nil {
				t.Errorf("%s has no %s tag: %v", rc.Address, k, tags)
			}
		}
	}
	if tagged < 5 { // role, instance profile, security group, two rules, instance
		t.Errorf("only %d module resources carry tags", tagged)
	}
	if strings.Contains(planJSON, `"from_port":22`) || strings.Contains(planJSON, `"to_port":22`) {
		t.Error("the plan opens port 22")
	}
	planned := time.Since(start)
	// Apply with -json so the log shows where the time goes, per resource.
	var applyLog strings.Builder
	if err := tf.ApplyJSON(ctx, &applyLog, tfexec.DirOrPlan(planFile)); err != nil {
		t.Fatalf("%v\n%s", err, applyLog.String())
	}
	for _, line := range strings.Split(applyLog.String(), "\n") {
		var ev struct {
			Type    string `json:"type"`
			Message string `json:"@message"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Type == "apply_complete" {
			t.Log(ev.Message)
		}
	}
	t.Logf("against the emulator: plan %v, apply %v, plan + apply %v", planned.Round(time.Millisecond),
		(time.Since(start) - planned).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	outs, err := tf.Output(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var policy string
	_ = json.Unmarshal(outs["secrets_policy_json"].Value, &policy)
	if !strings.Contains(policy, `"Effect": "Deny"`) || !strings.Contains(policy, `:secret:/prod/*`) {
		t.Fatalf("the secrets policy does not deny /prod/*:\n%s", policy)
	}
	var artifacts string
	_ = json.Unmarshal(outs["artifacts_policy_json"].Value, &artifacts)
	if !strings.Contains(artifacts, `"s3:GetObject"`) || !strings.Contains(artifacts, `:s3:::paddock-artifacts/strategies/*"`) || strings.Count(artifacts, `"Action"`) != 1 {
		t.Fatalf("the artifacts policy is not s3:GetObject on strategies/* only:\n%s", artifacts)
	}
	changed, err := tf.Plan(ctx, vars)
	if err != nil {
		t.Fatal(err)
	}
	if changed {
		t.Error("a second plan shows changes (a perpetual diff)")
	}
	start = time.Now()
	if err := tf.Destroy(ctx, vars); err != nil {
		t.Fatal(err)
	}
	t.Logf("destroy against the emulator: %v", time.Since(start))
}
