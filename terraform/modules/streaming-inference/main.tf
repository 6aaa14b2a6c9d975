# The streaming path and the inference service: Kinesis -> Firehose, whose processor is the
# transformation Lambda (recommendations added to each event), -> the recs bucket under
# YYYY/MM/dd/HH/ (failures under processing-failed/); and the same FastAPI app as a Lambda
# behind a Function URL. Both read RDS's password from Secrets Manager when they start.
# The transformation also writes each batch's clicks to the session store, the table
# recent_activity on the same RDS database (created on its first write), which the inference
# service reads: Firehose's processor buffer interval bounds how fresh it is.

locals {
  stream_arn = var.stream_arn != "" ? var.stream_arn : aws_kinesis_stream.events[0].arn
  stream     = element(split("/", local.stream_arn), 1)
  recs       = var.shared.bucket_arns["recs"]
  environment = {
    RECPIPE_ARTIFACTS_URL  = var.shared.artifacts_url
    RECPIPE_VECTORS_URL    = var.vectors_url
    RECPIPE_VECTORS_SECRET = var.vectors_secret_arn
  }
  firehose_log_group = "/aws/kinesisfirehose/${var.name}-recommendations"
}

resource "aws_kinesis_stream" "events" {
  count            = var.stream_arn == "" ? 1 : 0
  name             = "${var.name}-events"
  retention_period = 24
  encryption_type  = "KMS"
  kms_key_id       = var.shared.kms_key_arn
  stream_mode_details {
    stream_mode = "ON_DEMAND"
  }
}

module "transform" {
  source               = "../function"
  name                 = "${var.name}-transform"
  description          = "recpipe: Firehose transformation, recommendations added to each event"
  function             = "transform"
  shared               = var.shared
  subnet_ids           = var.subnet_ids
  memory_mb            = var.lambda_memory_mb
  timeout_seconds      = 300 # Firehose waits up to 5 minutes for a processor
  reserved_concurrency = 20
  log_retention_days   = var.log_retention_days
  policy_json          = data.aws_iam_policy_document.serving.json
  environment          = local.environment
}

module "inference" {
  source               = "../function"
  name                 = "${var.name}-inference"
  description          = "recpipe: the inference service (FastAPI) behind a Function URL"
  function             = "inference"
  shared               = var.shared
  subnet_ids           = var.subnet_ids
  memory_mb            = var.lambda_memory_mb
  timeout_seconds      = 30
  reserved_concurrency = 50
  log_retention_days   = var.log_retention_days
  policy_json          = data.aws_iam_policy_document.inference.json
  # its answers are logged to the recs bucket under served/ (impressions; `recpipe etl events` reads them)
  environment = merge(local.environment, { RECPIPE_RECOMMENDATIONS_URL = var.shared.recommendations_url })
}

resource "aws_lambda_function_url" "inference" {
  function_name      = module.inference.name
  authorization_type = var.inference_auth
  #checkov:skip=CKV_AWS_258:AWS_IAM is the default (variable inference_auth); NONE is the user's explicit choice, with RECPIPE_API_KEY
}

data "aws_iam_policy_document" "serving" {
  source_policy_documents = [var.shared.read_artifacts_policy]
  statement {
    sid       = "VectorsSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.vectors_secret_arn]
  }
}

data "aws_iam_policy_document" "inference" {
  source_policy_documents = [data.aws_iam_policy_document.serving.json]
  statement {
    sid       = "ImpressionLog"
    actions   = ["s3:PutObject"]
    resources = ["${local.recs}/served/*"]
  }
  statement {
    sid       = "ImpressionLogKey"
    actions   = ["kms:GenerateDataKey", "kms:Encrypt"]
    resources = [var.shared.kms_key_arn]
  }
}

resource "aws_cloudwatch_log_group" "firehose" {
  name              = local.firehose_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.shared.kms_key_arn
}

resource "aws_cloudwatch_log_stream" "firehose" {
  name           = "S3Delivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

resource "aws_kinesis_firehose_delivery_stream" "recommendations" {
  name        = "${var.name}-recommendations"
  destination = "extended_s3"
  kinesis_source_configuration {
    kinesis_stream_arn = local.stream_arn
    role_arn           = aws_iam_role.firehose.arn
  }
  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose.arn
    bucket_arn          = local.recs
    prefix              = "!{timestamp:yyyy/MM/dd/HH}/"
    error_output_prefix = "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
    buffering_size      = var.s3_buffer_mb
    buffering_interval  = var.s3_buffer_seconds
    kms_key_arn         = var.shared.kms_key_arn
    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose.name
    }
    processing_configuration {
      enabled = true
      processors {
        type = "Lambda"
        parameters {
          parameter_name  = "LambdaArn"
          parameter_value = "${module.transform.arn}:$LATEST"
        }
        parameters {
          parameter_name  = "BufferSizeInMBs"
          parameter_value = tostring(var.processor_buffer_mb)
        }
        parameters {
          parameter_name  = "BufferIntervalInSeconds"
          parameter_value = tostring(var.processor_buffer_seconds)
        }
      }
    }
  }
  #checkov:skip=CKV_AWS_240:with a Kinesis source, Firehose takes no server-side encryption of its own; the stream is KMS-encrypted
  #checkov:skip=CKV_AWS_241:as CKV_AWS_240; objects in S3 are encrypted with the stack's key (kms_key_arn)
}

resource "aws_iam_role" "firehose" {
  name               = "${var.name}-firehose"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
}

data "aws_iam_policy_document" "firehose_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.shared.account]
    }
  }
}

resource "aws_iam_role_policy" "firehose" {
  name   = "${var.name}-firehose"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

data "aws_iam_policy_document" "firehose" {
  statement {
    sid       = "ReadStream"
    actions   = ["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"]
    resources = [local.stream_arn]
  }
  statement {
    sid       = "Transform"
    actions   = ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"]
    resources = [module.transform.arn, "${module.transform.arn}:*"]
  }
  statement {
    sid       = "Deliver"
    actions   = ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject"]
    resources = [local.recs, "${local.recs}/*"]
  }
  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.shared.kms_key_arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:*"]
  }
}
