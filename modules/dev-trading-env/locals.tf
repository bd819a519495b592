# Values derived from the variables, shared by the resources. The
# environment manager's tests render the user data from this file too, so
# what they boot is what an instance boots.
locals {
  name = "paddock-${var.env_name}"

  # Every resource carries these; CreatedAt comes from a variable set once
  # by the manager, so a second plan shows no changes.
  tags = merge(var.extra_tags, {
    Name        = local.name
    Environment = "development"
    EnvName     = var.env_name
    PRNumber    = tostring(var.pr_number)
    Owner       = var.owner
    TTLHours    = tostring(var.ttl_hours)
    CreatedAt   = var.created_at
    AutoDestroy = "true"
  })

  secret_prefix    = "/dev-envs/${var.env_name}/"
  api_key_secret   = "${local.secret_prefix}env-api-key"
  admin_key_secret = "${local.secret_prefix}admin-api-key"

  # Secrets go in by name only; the node fetches them at boot.
  user_data = templatefile("${path.module}/templates/user_data.sh.tftpl", {
    env_name          = var.env_name
    paddock_url       = var.paddock_url
    paddock_sha256    = var.paddock_sha256
    node_config_json  = var.node_config_json
    nats_creds_secret = var.nats_creds_secret
    api_key_secret    = local.api_key_secret
    admin_key_secret  = local.admin_key_secret
    admin_port        = var.admin_port
    artifact_bucket   = var.artifact_bucket
    strategy_sha256   = var.strategy_sha256
    strategy_config   = var.strategy_config_sha256
  })
}
