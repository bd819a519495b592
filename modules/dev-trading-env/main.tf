resource "aws_security_group" "node" {
  name        = local.name
  description = "paddock sandbox node ${var.env_name}: admin API from the developer VPN only; no SSH"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

# The admin API, from the VPN only. There is deliberately no port 22 rule:
# operators use SSM Session Manager.
resource "aws_vpc_security_group_ingress_rule" "admin" {
  security_group_id = aws_security_group.node.id
  description       = "paddock node admin API from the developer VPN"
  ip_protocol       = "tcp"
  from_port         = var.admin_port
  to_port           = var.admin_port
  cidr_ipv4         = var.vpn_cidr
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.node.id
  description       = "NATS, the artifact store, Secrets Manager, SSM"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
  tags              = local.tags
}

resource "aws_instance" "node" {
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_id
  vpc_security_group_ids = [aws_security_group.node.id]
  iam_instance_profile   = aws_iam_instance_profile.node.name

  user_data_base64            = base64encode(local.user_data)
  user_data_replace_on_change = true

  # The dead man's switch: a node whose deadline passed with no extension
  # powers its machine off, and that ends the instance (and the bill) even
  # when no manager is there to destroy it.
  instance_initiated_shutdown_behavior = "terminate"

  metadata_options {
    http_tokens                 = "required" # IMDSv2 only
    http_endpoint               = "enabled"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 30
    iops        = 3000
    encrypted   = true
    tags        = local.tags
  }

  # The strategy's digests: the orphan sweeper keeps the artifacts a live
  # instance runs.
  tags = merge(local.tags, {
    StrategySHA256       = var.strategy_sha256
    StrategyConfigSHA256 = var.strategy_config_sha256
  })
  volume_tags = null
}

# Stop and start without destroying: an environment stop sets running=false.
resource "aws_ec2_instance_state" "node" {
  instance_id = aws_instance.node.id
  state       = var.running ? "running" : "stopped"
}
