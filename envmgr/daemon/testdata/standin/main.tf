# The instance half of modules/dev-trading-env, played offline: the test
# copies the real module's variables.tf, locals.tf and templates/ beside
# this file, so the manager drives exactly the real module's interface and
# the user data is rendered by the real module's own expression. Instead
# of an EC2 instance, local_file writes what the instance would boot with
# to instance.json in the environment's working directory; the test boots a
# node from it the way the user data does (secrets fetched by name from
# Secrets Manager, the strategy from S3 and checked against its digest) and stops that node when running turns false or the file
# is destroyed.

terraform {
  required_providers {
    local = {
      source = "hashicorp/local"
    }
  }
}

resource "terraform_data" "instance" {
  input = { env_name = var.env_name, ami_id = var.ami_id, instance_type = var.instance_type }
}

resource "local_file" "instance" {
  filename        = "${path.root}/instance.json"
  file_permission = "0600"
  content = jsonencode({
    instance_id       = terraform_data.instance.id
    running           = var.running
    node_config_json  = var.node_config_json
    nats_creds_secret = var.nats_creds_secret
    api_key_secret    = local.api_key_secret
    admin_key_secret  = local.admin_key_secret
    artifact_bucket   = var.artifact_bucket
    strategy_sha256   = var.strategy_sha256
    strategy_config   = var.strategy_config_sha256
    tags              = local.tags
    user_data         = local.user_data
  })
}
