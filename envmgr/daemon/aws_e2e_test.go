package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/paddockhq/paddock/envmgr/aws"
	"github.com/paddockhq/paddock/sandbox/client"

	"github.com/nats-io/nats.go"
	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/api"
	"github.com/paddockhq/paddock/envmgr/awssecrets"
	"github.com/paddockhq/paddock/envmgr/terraform"
	"github.com/paddockhq/paddock/internal/mototest"
	"github.com/paddockhq/paddock/natsauth"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/sandbox"
)

// TestAWSProvisionerEndToEnd runs the manager with the AWS provisioner
// against real peers: moto's server for Secrets Manager, the real Terraform
// CLI driving a module with the real module's variables, locals and user
// data template (testdata/standin: the EC2 instance is played by a local file,
// since the AWS provider is not built in `make test`; `make test-module`
// runs the real module), and an operator-mode NATS server. The test plays
// the machine: when the "instance" runs, it boots a node the way the user
// data does, from secrets fetched by name. The manager must store the
// secrets, mint scoped NATS credentials, apply, wait for the node to report
// ready, stop and start it, fail an environment whose node never reports,
// and on destroy remove the resources, revoke the credentials and delete the
// secrets.
func TestAWSProvisionerEndToEnd(t *testing.T) {
	bin, mirror := os.Getenv("PADDOCK_TF_BINARY"), os.Getenv("PADDOCK_TF_MIRROR")
	if bin == "" || mirror == "" {
		t.Skip("PADDOCK_TF_BINARY and PADDOCK_TF_MIRROR unset: run `make test` (or `make tf-tools` and export them)")
	}
	awsCfg, endpoint := mototest.AWSConfig(t)
	dir := t.TempDir()
	module := standinModule(t, filepath.Join(dir, "module"))
	s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.BaseEndpoint = &endpoint; o.UsePathStyle = true })
	const bucket = "paddock-artifacts"
	if _, err := s3c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: sdkaws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	// The checkout the strategy is declared in: an executable (taken as is)
	// that leaves a mark in its working directory, and its configuration.
	src := filepath.Join(dir, "src")
	strategy := "#!/bin/sh\necho \"started with $PADDOCK_STRATEGY_CONFIG\" > started\nexec sleep 600\n"
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "s"), []byte(strategy), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "s.yaml"), []byte("edge: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	strategySHA := sha256.Sum256([]byte(strategy))

	ns, authDir := operatorNATS(t, dir)

	stateDir := filepath.Join(dir, "state")
	tokens, _ := api.NewTokens([]api.Token{{Name: "alice", Role: "developer", SHA256: api.HashToken("t")}})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{NoFeedCheck: true, NATSURL: ns.ClientURL(), Listen: "127.0.0.1:0", StateDir: stateDir, Tokens: tokens, AuthDir: authDir, SourceDir: src,
			ReconcileEvery: time.Hour, // only API changes drive the reconciler here
			AWS: &aws.Config{
				Terraform: terraform.Config{Binary: bin, ModuleDir: module, PluginMirror: mirror, InterruptGrace: 5 * time.Second},
				Region:    "us-east-1", Endpoint: endpoint, VPCID: "vpc-1", SubnetID: "subnet-1", VPNCIDR: "10.8.0.0/16",
				AMI: "ami-12345678", PaddockURL: "https://artifacts.example/paddock", PaddockSHA256: strings.Repeat("ab", 32),
				NodeNATSURL: ns.ClientURL(), NodeReadyTimeout: 8 * time.Second, ArtifactBucket: bucket,
			}}, nil, func(s Started) { started <- s.APIURL })
	}()
	var url string
	select {
	case url = <-started:
	case err := <-done:
		t.Fatal(err)
	}
	c := &api.Client{BaseURL: url, Token: "t"}
	secrets, err := awssecrets.New(awssecrets.NewClient(awsCfg, endpoint), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &machine{t: t, dir: filepath.Join(stateDir, "terraform", "aws1"), secrets: secrets, s3: s3c}
	go m.run(ctx)
	defer m.stop()

	watch := func(name string, until ...envmgr.State) envmgr.Environment {
		t.Helper()
		var last envmgr.Environment
		_ = c.Watch(ctx, name, func(e envmgr.Environment) bool {
			last = e
			for _, s := range until {
				if e.State == s {
					return false
				}
			}
			return true
		})
		return last
	}
	spec := func(name string) string {
		return "version: 1\nenvironment: {name: " + name + "}\n" +
			"exchanges: [{name: binance, type: spot, sandbox: true, instruments: [BTC/USDT]}]\n" +
			"market_data: {mode: live}\nrisk_config: {max_position_usd: 1000, max_drawdown_pct: 5, max_order_rate: 10}\nstrategy: {binary: s, config: s.yaml}\n"
	}

	// The node's snapshot requests (seen here as the feed sees them) must come back through the inbox its
	// credentials allow.
	mgr, err := nats.Connect(ns.ClientURL(), nats.UserCredentials(filepath.Join(authDir, natsauth.FeedCredsFile)))
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	snapSubj, _ := proto.SnapshotSubject("binance", "btcusdt")
	snaps, err := mgr.SubscribeSync(snapSubj)
	if err != nil {
		t.Fatal(err)
	}

	// Provision: secrets, credentials, apply, then ready only once the node
	// reported.
	if _, err := c.Create(ctx, api.CreateBody{SpecYAML: spec("aws1")}); err != nil {
		t.Fatal(err)
	}
	// No feed runs here, so the node that reported is up but its book is
	// never live: the heartbeat's health makes the environment degraded with
	// that reason, as a local one would be, not ready.
	e := watch("aws1", envmgr.StateReady, envmgr.StateDegraded, envmgr.StateFailed)
	if e.State != envmgr.StateDegraded || !strings.Contains(e.Reason, "book binance:btcusdt is not live") || e.Health == nil || e.Health.Books != 1 {
		t.Fatalf("aws1 %s: %s", e.State, e.Reason)
	}
	if e.Endpoint != "http://10.20.0.10:8080" {
		t.Fatalf("endpoint %q, want the module's admin_url", e.Endpoint)
	}
	if m.boots() != 1 {
		t.Fatalf("%d node boots before ready, want 1", m.boots())
	}
	req, err := snaps.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("the node asked for no book snapshot: %v", err)
	}
	if !strings.HasPrefix(req.Reply, natsauth.InboxPrefix("aws1")+".") {
		t.Fatalf("snapshot request replies to %q, outside the environment's inbox", req.Reply)
	}
	inst := m.instance()
	// The declared strategy runs on the machine, from the S3 artifact whose
	// key is its digest, with its configuration delivered the same way.
	if inst.StrategySHA256 != hex.EncodeToString(strategySHA[:]) || inst.ArtifactBucket != bucket {
		t.Fatalf("the module got strategy %q in %q, want the declared binary's digest %x in %s", inst.StrategySHA256, inst.ArtifactBucket, strategySHA, bucket)
	}
	for _, want := range []string{"s3://${artifact_bucket}/strategies/$1", "sha256sum -c", "refusing to start the node", "'" + inst.StrategySHA256 + "'",
		// The dead man's switch: exit status 3 is not restarted and powers
		// the machine off ($$ is systemd's escape for a literal $).
		"RestartPreventExitStatus=3", `if [ "$$EXIT_STATUS" = 3 ]; then exec /usr/bin/systemctl poweroff; fi`} {
		if !strings.Contains(inst.UserData, strings.ReplaceAll(want, "${artifact_bucket}", bucket)) {
			t.Errorf("the user data lacks %q", want)
		}
	}
	if got := m.waitStrategyStarted(); got != "started with "+m.strategyConfigPath()+"\n" {
		t.Fatalf("the strategy left %q", got)
	}

	// An extension re-issues the node's NATS credentials for real: stored in
	// its secret, fetched by the instance's timer (played here), loaded by
	// the running node, which reports the new expiry in its heartbeat. The
	// first wave audited "re-issued" and left the node on its old JWT.
	obs, err := nats.Connect(ns.ClientURL(), nats.UserCredentials(filepath.Join(authDir, natsauth.ObserverCredsFile)))
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	beats, err := obs.SubscribeSync(client.StatusSubject("aws1"))
	if err != nil {
		t.Fatal(err)
	}
	ext, err := c.Action(ctx, "aws1", "extend", 24)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; { // polls: the reconciler re-issues asynchronously
		a, err := c.Audit(ctx, "aws1")
		if err != nil {
			t.Fatal(err)
		}
		if hasAudit(a, "credentials", "re-issued until "+ext.ExpiresAt.Format(time.RFC3339)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no re-issue audited after the extension: %+v", a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	reissued := m.refreshCreds(ctx)
	if reissued == m.fetchedAll()[awssecrets.NATSCredsName("aws1")] {
		t.Fatal("the secret still holds the credentials the node booted with")
	}
	for {
		msg, err := beats.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("the node never reported credentials expiring at the new deadline %s: %v", ext.ExpiresAt, err)
		}
		var st client.NodeStatus
		if json.Unmarshal(msg.Data, &st) == nil && st.CredsExpireAt.Equal(ext.ExpiresAt.Truncate(time.Second)) {
			break
		}
	}
	for _, s := range []string{awssecrets.NATSCredsName("aws1"), awssecrets.APIKeyName("aws1"), awssecrets.AdminKeyName("aws1")} {
		if !strings.Contains(inst.UserData, "'"+s+"'") {
			t.Errorf("the user data does not fetch %s", s)
		}
	}
	creds := m.fetchedAll()[awssecrets.NATSCredsName("aws1")]
	for name, v := range m.fetchedAll() {
		if strings.Contains(inst.UserData, strings.TrimSpace(v)) || strings.Contains(m.rawState(), strings.TrimSpace(v)) {
			t.Errorf("the value of %s is in the user data or the Terraform state", name)
		}
	}
	if inst.Tags["CreatedAt"] != e.CreatedAt.UTC().Format(time.RFC3339) || inst.Tags["EnvName"] != "aws1" || inst.Tags["AutoDestroy"] != "true" {
		t.Errorf("tags %v", inst.Tags)
	}
	audit, err := c.Audit(ctx, "aws1")
	if err != nil {
		t.Fatal(err)
	}
	if !hasAudit(audit, "terraform-plan", "plan ") || !hasAudit(audit, "terraform-apply", "") {
		t.Errorf("audit has no plan id or apply: %+v", audit)
	}

	// Stop and start: the instance stops (the node with it); starting waits
	// for the node again.
	if _, err := c.Action(ctx, "aws1", "stop", 0); err != nil {
		t.Fatal(err)
	}
	if e := watch("aws1", envmgr.StateStopped, envmgr.StateFailed); e.State != envmgr.StateStopped {
		t.Fatalf("aws1 %s: %s", e.State, e.Reason)
	}
	if _, err := c.Action(ctx, "aws1", "start", 0); err != nil {
		t.Fatal(err)
	}
	if e := watch("aws1", envmgr.StateReady, envmgr.StateDegraded, envmgr.StateFailed); e.State != envmgr.StateDegraded {
		t.Fatalf("aws1 after start %s: %s", e.State, e.Reason)
	}
	if m.boots() != 2 {
		t.Fatalf("%d node boots after a stop and a start, want 2", m.boots())
	}

	// An artifact whose content no longer matches its digest (tampered in
	// the bucket) is refused at boot: no node starts, and the start fails
	// instead of reporting ready.
	if _, err := c.Action(ctx, "aws1", "stop", 0); err != nil {
		t.Fatal(err)
	}
	if e := watch("aws1", envmgr.StateStopped, envmgr.StateFailed); e.State != envmgr.StateStopped {
		t.Fatalf("aws1 %s: %s", e.State, e.Reason)
	}
	key := "strategies/" + inst.StrategySHA256
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: sdkaws.String(bucket), Key: &key, Body: strings.NewReader("#!/bin/sh\nexec /usr/bin/id\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Action(ctx, "aws1", "start", 0); err != nil {
		t.Fatal(err)
	}
	if e := watch("aws1", envmgr.StateReady, envmgr.StateDegraded, envmgr.StateFailed); e.State != envmgr.StateFailed || !strings.Contains(e.Reason, "did not report ready") {
		t.Fatalf("aws1 with a tampered strategy: %s (%s)", e.State, e.Reason)
	}
	if m.boots() != 2 || m.refusals() == 0 {
		t.Fatalf("%d boots and %d refusals with a tampered strategy, want no boot", m.boots(), m.refusals())
	}

	// An instance whose node never reports ready fails the environment
	// with the reason, instead of calling it ready.
	if _, err := c.Create(ctx, api.CreateBody{SpecYAML: spec("aws2")}); err != nil {
		t.Fatal(err)
	}
	if e := watch("aws2", envmgr.StateReady, envmgr.StateDegraded, envmgr.StateFailed); e.State != envmgr.StateFailed || !strings.Contains(e.Reason, "did not report ready") {
		t.Fatalf("aws2 with no node: %s (%s)", e.State, e.Reason)
	}

	// Destroy: resources gone, credentials revoked, secrets deleted.
	for _, name := range []string{"aws1", "aws2"} {
		if _, err := c.Action(ctx, name, "down", 0); err != nil {
			t.Fatal(err)
		}
		// aws2 starts out failed: only destroyed (or the test's deadline)
		// ends this wait.
		if e := watch(name, envmgr.StateDestroyed); e.State != envmgr.StateDestroyed {
			t.Fatalf("%s: %s (%s)", name, e.State, e.Reason)
		}
		if _, err := os.Stat(filepath.Join(stateDir, "terraform", name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: working directory left behind (%v)", name, err)
		}
		for _, s := range []string{awssecrets.NATSCredsName(name), awssecrets.APIKeyName(name), awssecrets.ExchangeConfig(name)} {
			if _, err := secrets.Get(ctx, name, s); err == nil {
				t.Errorf("secret %s survived the destroy", s)
			}
		}
	}
	for deadline := time.Now().Add(10 * time.Second); m.running(); { // polls: the machine watches the file every 20ms
		if time.Now().After(deadline) {
			t.Fatal("the node still runs after its instance was destroyed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Both users are revoked: the one the node booted with and the one an
	// extension re-issued.
	for i, v := range []string{creds, reissued} {
		credsFile := filepath.Join(dir, fmt.Sprintf("revoked%d.creds", i))
		_ = os.WriteFile(credsFile, []byte(v), 0o600)
		deadline := time.Now().Add(10 * time.Second)
		for { // polls: the revocation reaches the server's resolver asynchronously
			nc, err := nats.Connect(ns.ClientURL(), nats.UserCredentials(credsFile), nats.NoReconnect())
			if err != nil {
				break
			}
			nc.Close()
			if time.Now().After(deadline) {
				t.Fatalf("the destroyed environment's NATS credentials (user %d) still connect", i)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func hasAudit(rs []envmgr.AuditRecord, action, detail string) bool {
	for _, r := range rs {
		if r.Action == action && strings.Contains(r.Detail, detail) {
			return true
		}
	}
	return false
}

// standinModule assembles the stand-in: the real module's variables,
// locals and templates with testdata/standin's resources and outputs.
func standinModule(t *testing.T, dst string) string {
	t.Helper()
	real := filepath.Join("..", "..", "modules", "dev-trading-env")
	files := map[string]string{
		filepath.Join(real, "variables.tf"):                    "variables.tf",
		filepath.Join(real, "locals.tf"):                       "locals.tf",
		filepath.Join(real, "templates", "user_data.sh.tftpl"): filepath.Join("templates", "user_data.sh.tftpl"),
		filepath.Join("testdata", "standin", "main.tf"):        "main.tf",
		filepath.Join("testdata", "standin", "outputs.tf"):     "outputs.tf",
	}
	for src, rel := range files {
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, rel), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	abs, err := filepath.Abs(dst)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// instanceDoc is what the stand-in module writes for the "instance".
type instanceDoc struct {
	Running         bool              `json:"running"`
	NodeConfigJSON  string            `json:"node_config_json"`
	NATSCredsSecret string            `json:"nats_creds_secret"`
	APIKeySecret    string            `json:"api_key_secret"`
	AdminKeySecret  string            `json:"admin_key_secret"`
	UserData        string            `json:"user_data"`
	ArtifactBucket  string            `json:"artifact_bucket"`
	StrategySHA256  string            `json:"strategy_sha256"`
	StrategyConfig  string            `json:"strategy_config"`
	Tags            map[string]string `json:"tags"`
}

// machine plays aws1's EC2 instance: while the stand-in's instance.json
// says running, a node runs, booted as the user data boots it.
type machine struct {
	t       *testing.T
	dir     string // aws1's Terraform working directory
	secrets *awssecrets.Store
	s3      *s3.Client

	mu         sync.Mutex
	etc        string // the last boot's /etc/paddock and /var/lib/paddock
	refused    int    // boots refused because an artifact did not match its digest
	refusedRaw string // the instance document last refused (not retried until it changes)
	inst       instanceDoc
	values     map[string]string
	nboots     int
	stopper    func()
}

// run polls instance.json (written by Terraform in another process) and
// boots or stops the node to match it.
func (m *machine) run(ctx context.Context) {
	for ctx.Err() == nil {
		raw, err := os.ReadFile(filepath.Join(m.dir, "instance.json"))
		var doc instanceDoc
		want := err == nil && json.Unmarshal(raw, &doc) == nil && doc.Running
		if want && !m.running() && !m.refusedDoc(raw) {
			m.boot(ctx, doc, raw)
		} else if !want && m.running() {
			m.stop()
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// boot does what the user data does: fetch the secrets it names, write the
// node's configuration, start `paddock node`. Paths move from /etc/paddock
// to a temporary directory and the admin API to a free loopback port.
func (m *machine) boot(ctx context.Context, doc instanceDoc, raw []byte) {
	etc := m.t.TempDir()
	values := map[string]string{}
	for name, file := range map[string]string{doc.NATSCredsSecret: "node.creds", doc.APIKeySecret: "api-key", doc.AdminKeySecret: "admin-key"} {
		v, err := m.secrets.Get(ctx, "aws1", name)
		if err != nil {
			m.t.Errorf("boot: fetch %s: %v", name, err)
			return
		}
		values[name] = v
		if err := os.WriteFile(filepath.Join(etc, file), []byte(v), 0o600); err != nil {
			m.t.Error(err)
			return
		}
	}
	var c sandbox.Config
	if err := json.Unmarshal([]byte(doc.NodeConfigJSON), &c); err != nil {
		m.t.Errorf("boot: node config: %v", err)
		return
	}
	if c.NATSCreds != "/etc/paddock/node.creds" || c.APIKeyFile != "/etc/paddock/api-key" || c.AdminKeyFile != "/etc/paddock/admin-key" {
		m.t.Errorf("boot: the node config does not use the files the user data writes: %+v", c)
	}
	c.NATSCreds, c.APIKeyFile, c.AdminKeyFile = filepath.Join(etc, "node.creds"), filepath.Join(etc, "api-key"), filepath.Join(etc, "admin-key")
	// The strategy and its configuration: downloaded by digest, refused on
	// a mismatch, as the user data's artifact() does.
	if c.Strategy == nil || len(c.Strategy.Command) != 1 || c.Strategy.Command[0] != aws.NodeStrategyPath || c.Strategy.Config != aws.NodeStrategyConfigPath {
		m.t.Errorf("boot: the node config does not run the strategy the user data installs: %+v", c.Strategy)
		return
	}
	for sha, file := range map[string]string{doc.StrategySHA256: "strategy", doc.StrategyConfig: "strategy-config"} {
		if err := m.artifact(ctx, doc.ArtifactBucket, sha, filepath.Join(etc, file)); err != nil {
			m.mu.Lock()
			m.refused++
			m.refusedRaw = string(raw)
			m.mu.Unlock()
			return
		}
	}
	c.Strategy.Command, c.Strategy.Config, c.Strategy.Dir = []string{filepath.Join(etc, "strategy")}, filepath.Join(etc, "strategy-config"), etc
	c.AdminListen = "127.0.0.1:0"
	n, err := sandbox.Start(&c, nil)
	if err != nil {
		m.t.Errorf("boot: node: %v", err)
		return
	}
	nctx, stop := context.WithCancel(ctx)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		if err := n.Run(nctx); err != nil {
			m.t.Errorf("node: %v", err)
		}
	}()
	m.mu.Lock()
	m.inst, m.values, m.nboots, m.etc = doc, values, m.nboots+1, etc
	m.stopper = func() { stop(); <-ended }
	m.mu.Unlock()
}

func (m *machine) stop() {
	m.mu.Lock()
	s := m.stopper
	m.stopper = nil
	m.mu.Unlock()
	if s != nil {
		s()
	}
}

func (m *machine) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopper != nil
}

func (m *machine) boots() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nboots
}

func (m *machine) instance() instanceDoc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inst
}

func (m *machine) fetchedAll() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for k, v := range m.values {
		out[k] = v
	}
	return out
}

// rawState is aws1's Terraform state file as stored.
func (m *machine) rawState() string {
	f, err := os.Open(filepath.Join(m.dir, "terraform.tfstate"))
	if err != nil {
		m.t.Fatal(err)
	}
	defer f.Close()
	raw, _ := io.ReadAll(f)
	return string(raw)
}

// artifact downloads s3://bucket/strategies/<sha> to path and checks its
// digest, as the user data does; a mismatch is an error.
func (m *machine) artifact(ctx context.Context, bucket, sha, path string) error {
	out, err := m.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: sdkaws.String("strategies/" + sha)})
	if err != nil {
		m.t.Errorf("boot: download %s: %v", sha, err)
		return err
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(out.Body)
	if err != nil {
		return err
	}
	if got := sha256.Sum256(raw); hex.EncodeToString(got[:]) != sha {
		return fmt.Errorf("%s does not match its digest", path)
	}
	return os.WriteFile(path, raw, 0o755)
}

func (m *machine) refusedDoc(raw []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refusedRaw == string(raw)
}

func (m *machine) refusals() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refused
}

func (m *machine) strategyConfigPath() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return filepath.Join(m.etc, "strategy-config")
}

// waitStrategyStarted returns what the strategy wrote to its working
// directory once it has written it.
func (m *machine) waitStrategyStarted() string {
	m.mu.Lock()
	etc := m.etc
	m.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for { // polls: the node starts the strategy in another process
		raw, err := os.ReadFile(filepath.Join(etc, "started"))
		if err == nil && len(raw) > 0 && raw[len(raw)-1] == '\n' {
			return string(raw)
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("the strategy never started on the machine (%v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refreshCreds does what the instance's paddock-creds timer does: fetch the
// node's NATS credentials secret into the file the node reads.
func (m *machine) refreshCreds(ctx context.Context) string {
	m.mu.Lock()
	etc, name := m.etc, m.inst.NATSCredsSecret
	m.mu.Unlock()
	v, err := m.secrets.Get(ctx, "aws1", name)
	if err != nil {
		m.t.Fatalf("timer: fetch %s: %v", name, err)
	}
	tmp := filepath.Join(etc, "node.creds.new")
	if err := os.WriteFile(tmp, []byte(v), 0o600); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(etc, "node.creds")); err != nil {
		m.t.Fatal(err)
	}
	return v
}
