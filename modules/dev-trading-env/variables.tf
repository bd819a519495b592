variable "env_name" {
  description = "The environment's name (a DNS label from .dev-env.yaml); part of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", var.env_name))
    error_message = "env_name must be a DNS label of at most 40 characters."
  }
}

variable "pr_number" {
  description = "The pull request that declared the environment (0 if none)."
  type        = number
  default     = 0
}

variable "owner" {
  description = "Who owns the environment (the developer's login)."
  type        = string
}

variable "ttl_hours" {
  description = "The environment's time to live; the manager tears it down when it expires."
  type        = number
}

variable "created_at" {
  description = "When the environment was created (RFC 3339). Passed in once by the manager, not timestamp(), so plans have no perpetual diff."
  type        = string
}

variable "instance_type" {
  description = "The sandbox node's instance type."
  type        = string
  default     = "c6i.2xlarge"
}

variable "ami_id" {
  description = "The AMI to boot (an Amazon Linux 2023 or Debian image with the SSM agent)."
  type        = string
}

variable "vpc_id" {
  description = "The shared development VPC."
  type        = string
}

variable "subnet_id" {
  description = "The shared development subnet the node runs in."
  type        = string
}

variable "vpn_cidr" {
  description = "The developer VPN's CIDR: the only source allowed to reach the node's admin API."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpn_cidr, 0))
    error_message = "vpn_cidr must be a CIDR block such as 10.8.0.0/16."
  }
}

variable "admin_port" {
  description = "The node's admin API port."
  type        = number
  default     = 8080
}

variable "running" {
  description = "false stops the instance (an environment stop) without destroying it."
  type        = bool
  default     = true
}

variable "paddock_url" {
  description = "Where user data downloads the paddock binary (an artifact URL the instance can reach)."
  type        = string
}

variable "paddock_sha256" {
  description = "The SHA-256 of that artifact; user data refuses any other."
  type        = string
}

variable "artifact_bucket" {
  description = "The S3 bucket holding strategy artifacts under strategies/<sha256> (content-addressed); empty when the node runs no strategy."
  type        = string
  default     = ""
  validation {
    condition     = var.artifact_bucket == "" || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.artifact_bucket))
    error_message = "artifact_bucket must be an S3 bucket name."
  }
}

variable "strategy_sha256" {
  description = "The SHA-256 of the strategy executable, which is also its key (strategies/<sha256>); user data refuses to start the node on any other content. Empty: no strategy."
  type        = string
  default     = ""
  validation {
    condition     = var.strategy_sha256 == "" || can(regex("^[0-9a-f]{64}$", var.strategy_sha256))
    error_message = "strategy_sha256 must be 64 lower-case hex digits."
  }
}

variable "strategy_config_sha256" {
  description = "The SHA-256 (and key) of the strategy's configuration file, delivered like the executable. Empty: none."
  type        = string
  default     = ""
  validation {
    condition     = var.strategy_config_sha256 == "" || can(regex("^[0-9a-f]{64}$", var.strategy_config_sha256))
    error_message = "strategy_config_sha256 must be 64 lower-case hex digits."
  }
}

variable "node_config_json" {
  description = "The node's configuration (envmgr/node.Config as JSON): instruments, risk limits, NATS URL. It holds references, never secret values."
  type        = string
}

variable "nats_creds_secret" {
  description = "The Secrets Manager name of the node's NATS credentials (under /dev-envs/<env>/)."
  type        = string
}

variable "extra_tags" {
  description = "Tags added to every resource, e.g. for cost allocation."
  type        = map(string)
  default     = {}
}
