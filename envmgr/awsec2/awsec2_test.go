package awsec2

import (
	"fmt"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/paddockhq/paddock/internal/mototest"
)

// TestFindByTags runs against moto's server (a real EC2 API emulator),
// started here when moto_server is on PATH.
func TestFindByTags(t *testing.T) {
	cfg, url := mototest.AWSConfig(t)
	ctx := t.Context()
	cl := NewClient(cfg, url)
	run := func(tags map[string]string) string {
		var ts []ec2types.Tag
		for k, v := range tags {
			ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		out, err := cl.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			InstanceType:      ec2types.InstanceTypeC6i2xlarge,
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: ts}}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Instances[0].InstanceId)
	}
	node := func(env string) map[string]string {
		return map[string]string{"Name": "paddock-" + env, "Environment": "development", "EnvName": env, "AutoDestroy": "true"}
	}
	a1, a2 := run(node("alpha")), run(node("alpha"))
	b := run(node("beta"))
	run(map[string]string{"Name": "prod-box", "Environment": "production"})
	gone := run(node("gamma"))
	if _, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{gone}}); err != nil {
		t.Fatal(err)
	}
	all, err := Find(ctx, cl, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range all {
		ids = append(ids, i.ID)
	}
	sort.Strings(ids)
	want := []string{a1, a2, b}
	sort.Strings(want)
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("found %v, want %v (not the production box, not the terminated one)", ids, want)
	}
	alpha, err := Find(ctx, cl, "alpha")
	if err != nil || len(alpha) != 2 || alpha[0].EnvName != "alpha" || alpha[0].Type != "c6i.2xlarge" || alpha[0].State == "" {
		t.Fatalf("alpha: %+v %v", alpha, err)
	}
}
