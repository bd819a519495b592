package aws

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/paddockhq/paddock/envmgr/awsec2"
	"github.com/paddockhq/paddock/internal/embednats"
	"github.com/paddockhq/paddock/internal/mototest"
	"github.com/paddockhq/paddock/internal/natstest"
	"github.com/paddockhq/paddock/sandbox/client"
)

// TestHeartbeatsSupervise: an AWS node's heartbeats are its status. No beat
// yet is no news; a running beat carries the node's health; a node silent
// past NodeBeatTimeout is reported not ready with that reason (not
// restarted); a stopping beat means not running, so the reconciler starts
// it again. On the first wave's code AWS nodes had no status at all.
func TestHeartbeatsSupervise(t *testing.T) {
	ns := natstest.Server(t, embednats.Options{})
	nc := natstest.Connect(t, ns.ClientURL())
	awsCfg, endpoint := mototest.AWSConfig(t)
	ec := awsec2.NewClient(awsCfg, endpoint)
	p := &Provisioner{cfg: Config{NodeBeatTimeout: 200 * time.Millisecond}, nc: nc, beats: map[string]beat{}, ec2: ec, startedAt: time.Now()}
	var err error
	if p.beatsSub, err = nc.Subscribe(client.StatusSubject("*"), p.onBeat); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pub := natstest.Connect(t, ns.ClientURL())
	send := func(st client.NodeStatus) {
		raw, _ := json.Marshal(st)
		if err := pub.Publish(client.StatusSubject(st.Env), raw); err != nil {
			t.Fatal(err)
		}
		_ = pub.Flush()
		_ = nc.Flush() // the subscriber has processed what was sent before its PONG
	}
	status := func() (bool, []string, bool) {
		st, err := p.Status(t.Context(), "n1")
		if err != nil {
			t.Fatal(err)
		}
		if st.Health == nil {
			return st.Running, nil, false
		}
		return st.Running, st.Health.Reasons, st.Health.Ready
	}
	if running, reasons, _ := status(); !running || reasons != nil {
		t.Fatalf("before any beat: running %v, reasons %v", running, reasons)
	}
	send(client.NodeStatus{Env: "n1", State: client.NodeRunning, Health: &client.Health{Ready: true, Books: 1, BooksLive: 1}})
	waitFor(t, func() bool { _, _, ready := status(); return ready })
	// Another environment's beat on n1's subject is ignored.
	raw, _ := json.Marshal(client.NodeStatus{Env: "n2", State: client.NodeStopping})
	_ = pub.Publish(client.StatusSubject("n1"), raw)
	_ = pub.Flush()
	if running, _, ready := status(); !running || !ready {
		t.Fatal("a beat about n2 on n1's subject changed n1")
	}
	// Silence, with the instance running (as EC2 reports it by its tags):
	// degraded, with the instance named, not re-created.
	id := runInstance(t, ec, "n1")
	waitFor(t, func() bool {
		running, reasons, ready := status()
		return running && !ready && len(reasons) > 0 && strings.HasPrefix(reasons[0], "no heartbeat from the node for") &&
			strings.Contains(reasons[0], "instance "+id+" is running")
	})
	// Silence with the instance stopped behind the manager's back, then
	// terminated: not running, so the reconciler applies it again. On the
	// first wave's code a terminated instance went unnoticed.
	if _, err := ec.StopInstances(t.Context(), &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { running, _, _ := status(); return !running })
	if _, err := ec.TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if running, _, _ := status(); running {
		t.Fatal("a silent node whose instance is terminated is reported running")
	}
	send(client.NodeStatus{Env: "n1", State: client.NodeRunning, Health: &client.Health{Ready: true, Books: 1, BooksLive: 1}})
	waitFor(t, func() bool { _, _, ready := status(); return ready }) // beating again: EC2 is not asked
	// Stopping.
	send(client.NodeStatus{Env: "n1", State: client.NodeStopping})
	waitFor(t, func() bool { running, _, _ := status(); return !running })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond) // heartbeats arrive asynchronously
	}
}

// runInstance starts a moto EC2 instance tagged as the module tags env's node.
func runInstance(t *testing.T, ec *ec2.Client, env string) string {
	t.Helper()
	var tags []ec2types.Tag
	for k, v := range map[string]string{"Name": "paddock-" + env, "Environment": "development", "EnvName": env, "AutoDestroy": "true"} {
		tags = append(tags, ec2types.Tag{Key: sdkaws.String(k), Value: sdkaws.String(v)})
	}
	out, err := ec.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: sdkaws.String("ami-12c6146b"), MinCount: sdkaws.Int32(1), MaxCount: sdkaws.Int32(1),
		InstanceType: ec2types.InstanceTypeC6i2xlarge, TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}}})
	if err != nil {
		t.Fatal(err)
	}
	return sdkaws.ToString(out.Instances[0].InstanceId)
}
