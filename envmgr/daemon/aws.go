package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/paddockhq/paddock/envmgr"
	"github.com/paddockhq/paddock/envmgr/awssecrets"
	"github.com/paddockhq/paddock/envmgr/node"
	"github.com/paddockhq/paddock/envmgr/spec"
	"github.com/paddockhq/paddock/envmgr/terraform"
	"github.com/paddockhq/paddock/risk"
)

// AWSConfig selects the Terraform/AWS provisioner: each environment a c6i
// node from modules/dev-trading-env, its secrets in Secrets Manager.
type AWSConfig struct {
	Terraform     terraform.Config // Binary, ModuleDir, PluginMirror, Backend, InterruptGrace
	Region        string
	Endpoint      string // an AWS API endpoint override (an emulator)
	VPCID         string
	SubnetID      string
	VPNCIDR       string
	AMI           string
	InstanceType  string // default c6i.2xlarge (the module's)
	PaddockURL    string // the node binary's artifact
	PaddockSHA256 string
	NodeNATSURL   string // how nodes in the VPC reach NATS
	RecoveryDays  int    // Secrets Manager recovery window on destroy (0 = at once)
	ExtraTags     map[string]string
	MintNATSCreds func(e envmgr.Environment, s *spec.Spec) ([]byte, error)
}

// awsProvisioner composes the secrets layer and the Terraform driver.
type awsProvisioner struct {
	cfg     AWSConfig
	tf      *terraform.Provisioner
	secrets *awssecrets.Store
}

func newAWSProvisioner(ctx context.Context, c AWSConfig, hub *envmgr.ProgressHub) (*awsProvisioner, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(c.Region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	store, err := awssecrets.New(awssecrets.NewClient(awsCfg, c.Endpoint), c.RecoveryDays, c.Terraform.Logger)
	if err != nil {
		return nil, err
	}
	p := &awsProvisioner{cfg: c, secrets: store}
	tc := c.Terraform
	tc.Vars = p.vars
	tc.OnProgress = hub.Publish
	if c.Endpoint != "" {
		if tc.Env == nil {
			tc.Env = map[string]string{}
		}
		tc.Env["AWS_ENDPOINT_URL"] = c.Endpoint
	}
	if p.tf, err = terraform.New(tc); err != nil {
		return nil, err
	}
	return p, nil
}

// moduleVars builds the module's variables. Only references to secrets go
// in; the node fetches values at boot with its instance role.
func moduleVars(c AWSConfig, e envmgr.Environment, s *spec.Spec) (map[string]any, error) {
	nc := node.Config{Name: e.Name, NATSURL: c.NodeNATSURL, NATSCreds: "/etc/paddock/node.creds", AdminListen: ":8080",
		APIKeyFile: "/etc/paddock/api-key", AdminKeyFile: "/etc/paddock/admin-key",
		Risk: node.RiskConfig{MaxPositionUSD: s.Risk.MaxPositionUSD.String(), MaxDrawdownPct: s.Risk.MaxDrawdownPct.String(),
			MaxOrderRate: s.Risk.MaxOrderRate.String(), StartingEquityUSD: s.Risk.StartingEquityUSD.String()}}
	for _, ex := range s.Exchanges {
		for _, in := range ex.Instruments {
			q, _ := risk.QuoteOf(in.Written)
			nc.Instruments = append(nc.Instruments, node.Instrument{Venue: ex.Venue, Symbol: in.Symbol, Quote: q})
		}
	}
	raw, err := json.Marshal(nc)
	if err != nil {
		return nil, err
	}
	created := e.CreatedAt
	if created.IsZero() {
		return nil, fmt.Errorf("environment %s has no creation time", e.Name)
	}
	v := map[string]any{
		"env_name": e.Name, "pr_number": e.PRNumber, "owner": e.Owner, "ttl_hours": e.TTLHours,
		"created_at": created.UTC().Format(time.RFC3339), "ami_id": c.AMI, "vpc_id": c.VPCID, "subnet_id": c.SubnetID,
		"vpn_cidr": c.VPNCIDR, "paddock_url": c.PaddockURL, "paddock_sha256": c.PaddockSHA256,
		"node_config_json": string(raw), "nats_creds_secret": awssecrets.NATSCredsName(e.Name),
		"extra_tags": c.ExtraTags,
	}
	if c.InstanceType != "" {
		v["instance_type"] = c.InstanceType
	}
	if c.ExtraTags == nil {
		v["extra_tags"] = map[string]string{}
	}
	return v, nil
}

func (p *awsProvisioner) vars(e envmgr.Environment, s *spec.Spec) (map[string]any, error) {
	return moduleVars(p.cfg, e, s)
}

// Provision stores the environment's secrets, then applies the module.
func (p *awsProvisioner) Provision(ctx context.Context, e envmgr.Environment, s *spec.Spec) (string, error) {
	var venues []string
	for _, ex := range s.Exchanges {
		venues = append(venues, ex.Venue)
	}
	if _, err := p.secrets.Provision(ctx, e.Name, venues); err != nil {
		return "", fmt.Errorf("provision %s: secrets: %w", e.Name, err)
	}
	if p.cfg.MintNATSCreds != nil {
		creds, err := p.cfg.MintNATSCreds(e, s)
		if err != nil {
			return "", fmt.Errorf("provision %s: NATS credentials: %w", e.Name, err)
		}
		if err := p.secrets.Put(ctx, e.Name, awssecrets.NATSCredsName(e.Name), string(creds)); err != nil {
			return "", err
		}
	}
	return p.tf.Provision(ctx, e, s)
}

func (p *awsProvisioner) Stop(ctx context.Context, name string) error { return p.tf.Stop(ctx, name) }
func (p *awsProvisioner) Start(ctx context.Context, name string) (string, error) {
	return p.tf.Start(ctx, name)
}

// Destroy destroys the resources first, then the secrets they read.
func (p *awsProvisioner) Destroy(ctx context.Context, name string) error {
	if err := p.tf.Destroy(ctx, name); err != nil {
		return err
	}
	return p.secrets.Destroy(ctx, name)
}
