package terraform

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/internal/mototest"
)

// TestS3Backend: with an S3 backend, each environment's state is its own
// key in the bucket, and a second manager on an empty state directory sees
// the same state (no second instance). S3 is moto's, started here.
func TestS3Backend(t *testing.T) {
	bin, mirror := tools(t)
	endpoint := mototest.Start(t)
	req, _ := http.NewRequest("PUT", endpoint+"/paddock-state", nil) // create the bucket
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("create bucket: %v %v", err, resp)
	}
	out := t.TempDir()
	newP := func() *Provisioner {
		p, err := New(Config{Binary: bin, ModuleDir: "testdata/module", StateDir: t.TempDir(), PluginMirror: mirror,
			Backend: Backend{S3Bucket: "paddock-state", S3Region: "us-east-1", S3KeyPrefix: "envs/", S3Endpoint: endpoint},
			Env:     map[string]string{"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
			Outputs: []string{"instance_id", "admin_url"},
			Vars: func(e envmgr.Environment, _ *spec.Spec) (map[string]any, error) {
				return map[string]any{"env_name": e.Name, "owner": "alice", "paddock_sha256": "x", "out_dir": out}, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1 := newP()
	if _, err := p1.Provision(t.Context(), env("s3env"), nil); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(endpoint + "/paddock-state?list-type=2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "envs/s3env/terraform.tfstate") {
		t.Fatalf("bucket listing lacks the environment's key:\n%s", body)
	}
	if _, err := os.Stat(p1.Dir("s3env") + "/terraform.tfstate"); err == nil {
		t.Fatal("state written locally despite the S3 backend")
	}
	outs1, _ := p1.Outputs(t.Context(), "s3env")
	// A second manager with an empty state directory: the same state.
	p2 := newP()
	start := time.Now()
	if _, err := p2.Provision(t.Context(), env("s3env"), nil); err != nil {
		t.Fatal(err)
	}
	outs2, _ := p2.Outputs(t.Context(), "s3env")
	if string(outs1["instance_id"]) != string(outs2["instance_id"]) {
		t.Fatalf("second manager created another instance: %s vs %s", outs1["instance_id"], outs2["instance_id"])
	}
	t.Logf("no-change provision on S3 state: %v", time.Since(start))
	if err := p2.Destroy(t.Context(), "s3env"); err != nil {
		t.Fatal(err)
	}
}
