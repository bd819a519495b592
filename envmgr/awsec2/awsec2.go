// Package awsec2 finds sandbox nodes on EC2 by the tags the dev-trading-env
// module sets (EnvName, AutoDestroy=true, ...), for the manager's status
// checks and, later, orphan cleanup: an instance the manager's state does
// not know is found by its tags, not by memory.
package awsec2

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// API is the part of the EC2 client used here; *ec2.Client has it.
type API interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, opts ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
}

// Instance is a sandbox node as EC2 reports it.
type Instance struct {
	ID        string
	EnvName   string
	State     string // pending, running, stopping, stopped, shutting-down
	PrivateIP string
	Type      string
	Launched  time.Time
	Tags      map[string]string
}

// NewClient builds an EC2 client from an AWS configuration (the standard
// chain, loaded once by the caller), with an optional endpoint override for
// an emulator.
func NewClient(cfg aws.Config, endpoint string) *ec2.Client {
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

// Find lists paddock's live sandbox nodes (AutoDestroy=true, not
// terminated); env, when not empty, narrows it to one environment.
func Find(ctx context.Context, api API, env string) ([]Instance, error) {
	filters := []ec2types.Filter{
		{Name: aws.String("tag:AutoDestroy"), Values: []string{"true"}},
		{Name: aws.String("tag:Environment"), Values: []string{"development"}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}
	if env != "" {
		filters = append(filters, ec2types.Filter{Name: aws.String("tag:EnvName"), Values: []string{env}})
	}
	var out []Instance
	p := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				in := Instance{ID: aws.ToString(i.InstanceId), PrivateIP: aws.ToString(i.PrivateIpAddress),
					Type: string(i.InstanceType), Launched: aws.ToTime(i.LaunchTime), Tags: map[string]string{}}
				if i.State != nil {
					in.State = string(i.State.Name)
				}
				for _, t := range i.Tags {
					in.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
				}
				in.EnvName = in.Tags["EnvName"]
				out = append(out, in)
			}
		}
	}
	return out, nil
}
