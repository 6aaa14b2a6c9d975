# One recpipe Lambda: code from lambda.zip (plus the layers the manifest lists for it), the
# handler the manifest names, in the VPC, with its own role, log group and dead-letter queue.

locals {
  s3      = var.shared.code["lambda.zip"]
  layers  = lookup(var.shared.manifest.layers, var.function, [])
  account = var.shared.account
  region  = var.shared.region
  arn     = var.shared.partition
  log_arn = "arn:${local.arn}:logs:${local.region}:${local.account}:log-group:/aws/lambda/${var.name}"
}

resource "aws_lambda_layer_version" "this" {
  for_each                 = toset(local.layers)
  layer_name               = "${var.name}-${trimsuffix(each.value, ".zip")}"
  s3_bucket                = var.shared.code[each.value].bucket
  s3_key                   = var.shared.code[each.value].key
  s3_object_version        = var.shared.code[each.value].version
  compatible_runtimes      = ["python${var.shared.manifest.python}"]
  compatible_architectures = [var.shared.manifest.architecture]
}

resource "aws_lambda_function" "this" {
  function_name                  = var.name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  runtime                        = "python${var.shared.manifest.python}"
  architectures                  = [var.shared.manifest.architecture]
  handler                        = var.shared.manifest.handlers[var.function]
  s3_bucket                      = local.s3.bucket
  s3_key                         = local.s3.key
  s3_object_version              = local.s3.version
  layers                         = [for l in local.layers : aws_lambda_layer_version.this[l].arn]
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.shared.kms_key_arn
  environment {
    variables = var.environment
  }
  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [var.shared.clients_security_group_id]
  }
  tracing_config {
    mode = "Active"
  }
  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letters.arn
  }
  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }
  #checkov:skip=CKV_AWS_272:code signing needs a signing profile in AWS Signer; the package's SHA-256 is checked on upload instead
  depends_on = [aws_iam_role_policy.this]
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.shared.kms_key_arn
}

resource "aws_sqs_queue" "dead_letters" {
  name                      = "${var.name}-dead-letters"
  kms_master_key_id         = var.shared.kms_key_arn
  message_retention_seconds = 1209600
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-runtime"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.runtime.json
}

resource "aws_iam_role_policy" "calls" {
  name   = "${var.name}-calls"
  role   = aws_iam_role.this.id
  policy = var.policy_json
}

data "aws_iam_policy_document" "runtime" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_arn}:*"]
  }
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letters.arn]
  }
  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.shared.kms_key_arn]
  }
  statement {
    sid     = "NetworkInterfaces"
    actions = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
    resources = concat(
      ["arn:${local.arn}:ec2:${local.region}:${local.account}:network-interface/*",
      "arn:${local.arn}:ec2:${local.region}:${local.account}:security-group/${var.shared.clients_security_group_id}"],
      [for s in var.subnet_ids : "arn:${local.arn}:ec2:${local.region}:${local.account}:subnet/${s}"],
    )
  }
  statement {
    sid       = "DescribeOnly" # these actions take no resource ARN
    actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}
