# An example root module: one sandbox environment in a development VPC.
# `make test-module` plans, applies, re-plans (no changes) and destroys it
# against an AWS emulator; the manager generates the same call per
# environment.

variable "aws_endpoint" {
  description = "An AWS API endpoint override (an emulator); empty for AWS itself."
  type        = string
  default     = ""
}

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = var.aws_endpoint != ""
  skip_requesting_account_id  = var.aws_endpoint != ""
  skip_metadata_api_check     = var.aws_endpoint != ""

  dynamic "endpoints" {
    for_each = var.aws_endpoint == "" ? [] : [1]
    content {
      ec2            = var.aws_endpoint
      iam            = var.aws_endpoint
      sts            = var.aws_endpoint
      secretsmanager = var.aws_endpoint
    }
  }
}

resource "aws_vpc" "dev" {
  cidr_block = "10.42.0.0/16"
  tags       = { Name = "paddock-dev" }
}

resource "aws_subnet" "dev" {
  vpc_id     = aws_vpc.dev.id
  cidr_block = "10.42.1.0/24"
  tags       = { Name = "paddock-dev" }
}

module "env" {
  source = "../"

  env_name          = "example-mean-reversion"
  pr_number         = 42
  owner             = "alice"
  ttl_hours         = 48
  created_at        = "2026-11-23T00:00:00Z"
  ami_id            = "ami-12c6146b"
  vpc_id            = aws_vpc.dev.id
  subnet_id         = aws_subnet.dev.id
  vpn_cidr          = "10.8.0.0/16"
  paddock_url       = "https://artifacts.example.internal/paddock/v0.1.0/paddock-linux-amd64"
  paddock_sha256    = "0000000000000000000000000000000000000000000000000000000000000000"
  nats_creds_secret = "/dev-envs/example-mean-reversion/nats-creds"
  artifact_bucket   = "paddock-artifacts"
  strategy_sha256   = "1111111111111111111111111111111111111111111111111111111111111111"
  node_config_json = jsonencode({
    name        = "example-mean-reversion"
    nats_url    = "nats://nats.dev.internal:4222"
    nats_creds  = "/etc/paddock/node.creds"
    instruments = [{ venue = "binance", symbol = "btcusdt", quote = "USDT" }]
    risk        = { max_position_usd = "1000", max_drawdown_pct = "5", max_order_rate = "10" }
  })
  extra_tags = { CostCenter = "strategy-research" }
}

output "instance_id" { value = module.env.instance_id }
output "admin_url" { value = module.env.admin_url }
output "security_group_id" { value = module.env.security_group_id }
output "secrets_policy_json" { value = module.env.secrets_policy_json }
output "artifacts_policy_json" { value = module.env.artifacts_policy_json }
