# The instance half of modules/dev-trading-env, played offline: the test
# copies the real module's variables.tf and templates/ beside this file, so
# the manager drives exactly the real module's interface and the real user
# data template is rendered. Instead of an EC2 instance, local_file writes
# what the instance would boot with to instance.json in the environment's
# working directory; the test boots a node from it the way the user data
# does (secrets fetched by name from Secrets Manager) and stops that node
# when running turns false or the file is destroyed.

terraform {
  required_providers {
    local = {
      source = "hashicorp/local"
    }
  }
}

locals {
  secret_prefix = "/dev-envs/${var.env_name}/"
  tags = merge(var.extra_tags, {
    Name        = "paddock-${var.env_name}"
    Environment = "development"
    EnvName     = var.env_name
    PRNumber    = tostring(var.pr_number)
    Owner       = var.owner
    TTLHours    = tostring(var.ttl_hours)
    CreatedAt   = var.created_at
    AutoDestroy = "true"
  })
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
    api_key_secret    = "${local.secret_prefix}env-api-key"
    admin_key_secret  = "${local.secret_prefix}admin-api-key"
    tags              = local.tags
    user_data = templatefile("${path.module}/templates/user_data.sh.tftpl", {
      env_name          = var.env_name
      paddock_url       = var.paddock_url
      paddock_sha256    = var.paddock_sha256
      node_config_json  = var.node_config_json
      nats_creds_secret = var.nats_creds_secret
      api_key_secret    = "${local.secret_prefix}env-api-key"
      admin_key_secret  = "${local.secret_prefix}admin-api-key"
      admin_port        = var.admin_port
    })
  })
}
