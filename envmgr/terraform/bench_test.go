package terraform

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkOperation measures a no-change provision (init, plan to a file,
// apply of the plan, outputs) through the driver, and the same four
// Terraform CLI commands run directly in the same working directory, in one
// run: the difference is the driver's own overhead (target < 1 s).
func BenchmarkOperation(b *testing.B) {
	r := newRig(b, b.TempDir(), 10*time.Second)
	ctx := context.Background()
	if _, err := r.p.Provision(ctx, env("bench"), nil); err != nil {
		b.Fatal(err)
	}
	b.Run("driver=paddock", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.p.Provision(ctx, env("bench"), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("driver=cli", func(b *testing.B) {
		dir := r.p.Dir("bench")
		cli := func(args ...string) {
			cmd := exec.Command(r.p.cfg.Binary, args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+r.p.cli, "CHECKPOINT_DISABLE=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %v\n%s", args, err, out)
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			cli("init", "-input=false")
			cli("plan", "-input=false", "-json", "-out", filepath.Join(dir, "tfplan"))
			cli("apply", "-input=false", "-json", filepath.Join(dir, "tfplan"))
			cli("output", "-json")
		}
	})
}
