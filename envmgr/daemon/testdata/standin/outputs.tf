output "instance_id" {
  value = "i-${substr(replace(terraform_data.instance.id, "-", ""), 0, 17)}"
}

output "private_ip" {
  value = "10.20.0.10"
}

output "admin_url" {
  value = "http://10.20.0.10:${var.admin_port}"
}

output "security_group_id" {
  value = "sg-standin"
}

output "secrets_policy_json" {
  value = "{}"
}
