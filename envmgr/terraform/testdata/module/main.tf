# A stand-in for modules/dev-trading-env with the same interface, built
# only from providers that run offline here: terraform_data (built in) and
# hashicorp/local from the test mirror. terraform_data.node plays the
# instance (its id is a random UUID fixed at creation); local_file is the
# node's configuration; terraform_data.slow runs slow_command while
# applying, so tests can interrupt, kill and crash an apply midway.

terraform {
  required_providers {
    local = {
      source = "hashicorp/local"
    }
  }
}

variable "env_name" { type = string }
variable "owner" { type = string }
variable "paddock_sha256" { type = string }
variable "out_dir" { type = string }
variable "running" { type = bool }
variable "slow_command" {
  type    = string
  default = "true"
}

resource "terraform_data" "node" {
  input = { env_name = var.env_name, owner = var.owner }
}

resource "terraform_data" "state" {
  input = var.running ? "running" : "stopped"
}

resource "terraform_data" "slow" {
  depends_on       = [terraform_data.node]
  triggers_replace = [var.env_name]

  provisioner "local-exec" {
    command = var.slow_command
  }
}

resource "local_file" "node_config" {
  depends_on      = [terraform_data.slow]
  filename        = "${var.out_dir}/${var.env_name}.json"
  content         = jsonencode({ env = var.env_name, instance = terraform_data.node.id, artifact = var.paddock_sha256 })
  file_permission = "0600"
}

output "instance_id" { value = terraform_data.node.id }
output "private_ip" { value = "127.0.0.1" }
output "admin_url" { value = "http://127.0.0.1:8080/${var.env_name}" }
output "security_group_id" { value = "sg-${substr(terraform_data.node.id, 0, 8)}" }
output "state" { value = terraform_data.state.output }
