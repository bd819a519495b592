data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  secrets_arn = "arn:${data.aws_partition.current.partition}:secretsmanager:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:secret:"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

# The node may read sandbox exchange keys and its own environment's secrets,
# and nothing under /prod/, even if a broader Allow is attached elsewhere:
# an explicit Deny wins over any Allow.
data "aws_iam_policy_document" "secrets" {
  statement {
    sid       = "ReadSandboxAndOwnSecrets"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = ["${local.secrets_arn}/sandbox/*", "${local.secrets_arn}/dev-envs/${var.env_name}/*"]
  }

  statement {
    sid       = "NeverProduction"
    effect    = "Deny"
    actions   = ["secretsmanager:*"]
    resources = ["${local.secrets_arn}/prod/*"]
  }
}

# Strategy artifacts: read-only, and only the content-addressed prefix.
data "aws_iam_policy_document" "artifacts" {
  count = var.artifact_bucket == "" ? 0 : 1
  statement {
    sid       = "ReadStrategyArtifacts"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${var.artifact_bucket}/strategies/*"]
  }
}

resource "aws_iam_role_policy" "artifacts" {
  count  = var.artifact_bucket == "" ? 0 : 1
  name   = "${local.name}-artifacts"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.artifacts[0].json
}

resource "aws_iam_role" "node" {
  name               = local.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "secrets" {
  name   = "${local.name}-secrets"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.secrets.json
}

# SSM Session Manager instead of SSH.
resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "node" {
  name = local.name
  role = aws_iam_role.node.name
  tags = local.tags
}
