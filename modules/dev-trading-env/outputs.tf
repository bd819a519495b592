output "instance_id" {
  description = "The sandbox node's EC2 instance id."
  value       = aws_instance.node.id
}

output "private_ip" {
  description = "The node's private IP in the development subnet."
  value       = aws_instance.node.private_ip
}

output "admin_url" {
  description = "The node's admin API, reachable from the developer VPN."
  value       = "http://${aws_instance.node.private_ip}:${var.admin_port}"
}

output "security_group_id" {
  description = "The node's security group."
  value       = aws_security_group.node.id
}

output "secrets_policy_json" {
  description = "The rendered secrets policy, for review and tests (it must deny /prod/*)."
  value       = data.aws_iam_policy_document.secrets.json
}

output "artifacts_policy_json" {
  description = "The rendered strategy-artifact policy (s3:GetObject on <bucket>/strategies/* only), or empty without an artifact bucket."
  value       = var.artifact_bucket == "" ? "" : data.aws_iam_policy_document.artifacts[0].json
}
