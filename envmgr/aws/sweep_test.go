package aws

import (
	"slices"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/nats-io/nats.go"

	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/awsec2"
	"github.com/paddockhq/paddock/envmgr/awssecrets"
	"github.com/paddockhq/paddock/envmgr/natskv"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/envmgr/sweep"
	"github.com/paddockhq/paddock/envmgr/terraform"
	"github.com/paddockhq/paddock/internal/clock"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/mototest"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/natsauth"
)

// TestOrphanSweepOnAWS leaks one of every AWS kind on moto (EC2, Secrets
// Manager, S3), with NATS users issued by a real operator-mode server: an
// instance, secrets, a NATS user and a state key of an environment with no
// record, an artifact nobody references, and a state key that still tracks
// resources. Beside them, a live environment's instance, secrets, artifact
// and state. The dry run lists exactly the leaks; the cleanup deletes them
// (the instance terminated, the user revoked) but refuses the state that
// still tracks resources, and leaves the live environment whole.
func TestOrphanSweepOnAWS(t *testing.T) {
	awsCfg, endpoint := mototest.AWSConfig(t)
	authDir := t.TempDir()
	ns, err := natsauth.StartServer(authDir, embednats.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	auth, err := natsauth.LoadOrCreate(authDir)
	if err != nil {
		t.Fatal(err)
	}
	sys := natstest.Connect(t, ns.ClientURL(), nats.UserCredentials(authDir+"/"+natsauth.SystemCredsFile))
	issuer := natsauth.NewIssuer(auth, sys)
	mgrNC := natstest.Connect(t, ns.ClientURL(), nats.UserCredentials(authDir+"/"+natsauth.ManagerCredsFile), nats.CustomInboxPrefix(natsauth.ManagerInbox))
	store, err := natskv.Open(t.Context(), mgrNC, natskv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := awssecrets.New(awssecrets.NewClient(awsCfg, endpoint), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ec := awsec2.NewClient(awsCfg, endpoint)
	p := &Provisioner{cfg: Config{ArtifactBucket: "artifacts", Issuer: issuer,
		Terraform: terraform.Config{Backend: terraform.Backend{S3Bucket: "tfstate", S3KeyPrefix: "envs/"}}},
		ec2: ec, s3: newS3(awsCfg, endpoint), secrets: secrets, artifacts: map[string]*strategyArtifact{}}
	ctx := t.Context()
	for _, b := range []string{"artifacts", "tfstate"} {
		if _, err := p.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: sdkaws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(bucket, key, body string) {
		if _, err := p.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: sdkaws.String(bucket), Key: sdkaws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	used, unused := strings.Repeat("a", 64), strings.Repeat("b", 64)
	put("artifacts", "strategies/"+used, "live strategy")
	put("artifacts", "strategies/"+unused, "leaked strategy")
	put("tfstate", "envs/live/terraform.tfstate", `{"resources":[{"type":"aws_instance"}]}`)
	put("tfstate", "envs/gone/terraform.tfstate", `{"version":4,"resources":[]}`)
	put("tfstate", "envs/stuck/terraform.tfstate", `{"resources":[{"type":"aws_iam_role"},{"type":"aws_security_group"}]}`)
	liveID := taggedInstance(t, ec, "live", used)
	goneID := taggedInstance(t, ec, "gone", "")
	for _, env := range []string{"live", "gone"} {
		if _, err := secrets.Provision(ctx, env, nil); err != nil {
			t.Fatal(err)
		}
	}
	s, err := spec.Parse([]byte("version: 1\nenvironment: {name: gone}\nexchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]\nmarket_data: {mode: live}\nrisk_config: {max_position_usd: 1, max_drawdown_pct: 1, max_order_rate: 1}\nstrategy: {binary: s}\n"),
		spec.Options{Now: time.Now(), TTLApproved: true})
	if err != nil {
		t.Fatal(err)
	}
	_, goneUser, _, err := issuer.Issue("gone", s, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := secrets.Put(ctx, "gone", awssecrets.NATSUsersName("gone"), goneUser); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := store.Create(ctx, envmgr.Environment{Name: "live", Owner: "alice", State: envmgr.StateReady, Desired: envmgr.WantRunning, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}

	clk := clock.NewFake(now)
	sw := sweep.New(sweep.Config{Store: store, Sources: []sweep.Source{p}, Grace: time.Hour, Clock: clk})
	rep, err := sw.Find(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, o := range rep.Orphans {
		if o.Env == "live" || slices.Contains(o.UsedBy, "live") {
			t.Errorf("a live environment's %s %s is called an orphan: %s", o.Kind, o.ID, o.Why)
		}
		found = append(found, o.Kind+" "+o.ID)
	}
	want := []string{KindArtifact + " strategies/" + unused, KindInstance + " " + goneID, KindNATSUser + " " + goneUser}
	for _, n := range []string{"admin-api-key", "env-api-key", "exchange-config", "nats-users"} {
		want = append(want, KindSecret+" /dev-envs/gone/"+n)
	}
	want = append(want, KindS3State+" envs/gone/terraform.tfstate", KindS3State+" envs/stuck/terraform.tfstate")
	slices.Sort(want)
	slices.Sort(found)
	if !slices.Equal(found, want) {
		t.Fatalf("orphans\n got %v\nwant %v", found, want)
	}
	if len(rep.Missing) != 0 || len(rep.Errors) != 0 {
		t.Fatalf("missing %+v, errors %v", rep.Missing, rep.Errors)
	}

	clk.Advance(2 * time.Hour)
	rep, err = sw.Clean(ctx, "admin")
	if err == nil || len(rep.Failed) != 1 || !strings.Contains(rep.Failed[0], "envs/stuck/terraform.tfstate") || !strings.Contains(rep.Failed[0], "still tracks 2 resources") {
		t.Fatalf("clean: %v, failed %v", err, rep.Failed)
	}
	if len(rep.Deleted) != len(want)-1 {
		t.Fatalf("deleted %d, want %d", len(rep.Deleted), len(want)-1)
	}
	// The instance is terminated, the user revoked, the live side intact.
	insts, err := awsec2.Find(ctx, ec, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 || insts[0].ID != liveID {
		t.Fatalf("instances after the cleanup: %+v", insts)
	}
	if revoked, _ := issuer.Revoked(goneUser); !revoked {
		t.Fatal("the leaked NATS user was not revoked")
	}
	if _, err := p.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: sdkaws.String("artifacts"), Key: sdkaws.String("strategies/" + used)}); err != nil {
		t.Fatalf("the live strategy's artifact: %v", err)
	}
	sm := awssecrets.NewClient(awsCfg, endpoint)
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: sdkaws.String(awssecrets.APIKeyName("live"))}); err != nil {
		t.Fatalf("the live environment's secret: %v", err)
	}
	rep, _ = sw.Find(ctx)
	if len(rep.Orphans) != 1 || rep.Orphans[0].ID != "envs/stuck/terraform.tfstate" {
		t.Fatalf("after the cleanup: %+v", rep.Orphans)
	}
}

// taggedInstance runs an instance tagged as the module tags a node.
func taggedInstance(t *testing.T, ec *ec2.Client, env, strategy string) string {
	t.Helper()
	var tags []ec2types.Tag
	for k, v := range map[string]string{"Name": "paddock-" + env, "Environment": "development", "EnvName": env, "AutoDestroy": "true", "StrategySHA256": strategy} {
		tags = append(tags, ec2types.Tag{Key: sdkaws.String(k), Value: sdkaws.String(v)})
	}
	out, err := ec.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: sdkaws.String("ami-12c6146b"), MinCount: sdkaws.Int32(1), MaxCount: sdkaws.Int32(1),
		InstanceType: ec2types.InstanceTypeC6i2xlarge, TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}}})
	if err != nil {
		t.Fatal(err)
	}
	return sdkaws.ToString(out.Instances[0].InstanceId)
}
