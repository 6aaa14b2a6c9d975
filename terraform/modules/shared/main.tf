# What every stage shares: one KMS key, the buckets (data = lake + artifacts, recs = enriched
# events, code = what `recpipe package` built, logs = the buckets' access logs), the uploaded
# code, and the security group the Lambdas connect from.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

data "aws_vpc" "this" {
  id = var.vpc_id
}

locals {
  account = data.aws_caller_identity.current.account_id
  region  = data.aws_region.current.name
  arn     = data.aws_partition.current.partition
  buckets = {
    data = "${var.name}-data-${local.account}-${local.region}"
    recs = "${var.name}-recs-${local.account}-${local.region}"
    code = "${var.name}-code-${local.account}-${local.region}"
    logs = "${var.name}-logs-${local.account}-${local.region}"
  }
  logged     = { for k, v in local.buckets : k => v if k != "logs" }
  lake       = "lake"
  artifacts  = "${local.lake}/ml-artifacts" # RECPIPE_ARTIFACTS_URL's default under the lake
  glue_wheel = one([for path, _ in var.manifest.files : path if startswith(path, "glue/recpipe-")])
  code_files = toset(concat(["lambda.zip", "arrow-layer.zip", "glue/glue_etl.py", "sagemaker/sourcedir.tar.gz"], [local.glue_wheel]))
}

resource "aws_kms_key" "this" {
  description         = "${var.name}: buckets, logs, secrets, stream, database"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:a key policy: Resource "*" is this key, administered by the account as in AWS's default key policy
  #checkov:skip=CKV_AWS_111:as CKV_AWS_109
  #checkov:skip=CKV_AWS_356:as CKV_AWS_109
  statement {
    sid       = "AccountAdministers" # a key policy's Resource "*" is this key
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.arn}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsEncrypt"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.arn}:logs:${local.region}:${local.account}:log-group:*"]
    }
  }
}

resource "aws_s3_bucket" "this" {
  for_each      = local.buckets
  bucket        = each.value
  force_destroy = each.key == "code" || each.key == "logs"
  #checkov:skip=CKV_AWS_144:one region; the data can be rebuilt from the source (ETL) and the lake (training)
  #checkov:skip=CKV2_AWS_62:only the data bucket has a consumer of its events (the vectors loader, in vector-db)
  #checkov:skip=CKV_AWS_18:access logs go to the logs bucket, which cannot log to itself
  #checkov:skip=CKV_AWS_145:only the logs bucket uses SSE-S3: S3 delivers server access logs to no other encryption
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = local.buckets
  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  rule {
    # S3 server access logs can only be delivered to a bucket encrypted with S3-managed keys
    apply_server_side_encryption_by_default {
      sse_algorithm     = each.key == "logs" ? "AES256" : "aws:kms"
      kms_master_key_id = each.key == "logs" ? null : aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  rule {
    id     = "tidy"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
  }
}

resource "aws_s3_bucket_logging" "this" {
  for_each      = local.logged
  bucket        = aws_s3_bucket.this[each.key].id
  target_bucket = aws_s3_bucket.this["logs"].id
  target_prefix = "${each.key}/"
}

resource "aws_s3_bucket_policy" "this" {
  for_each = local.buckets
  bucket   = aws_s3_bucket.this[each.key].id
  policy   = data.aws_iam_policy_document.bucket[each.key].json
}

data "aws_iam_policy_document" "bucket" {
  for_each = local.buckets
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this[each.key].arn, "${aws_s3_bucket.this[each.key].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
  dynamic "statement" {
    for_each = each.key == "logs" ? [1] : []
    content {
      sid       = "ServerAccessLogs"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.this["logs"].arn}/*"]
      principals {
        type        = "Service"
        identifiers = ["logging.s3.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account]
      }
    }
  }
}

# what reads the model: the vectors loader and both serving Lambdas
data "aws_iam_policy_document" "read_artifacts" {
  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this["data"].arn}/${local.artifacts}/*"]
  }
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this["data"].arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.artifacts}/*"]
    }
  }
}

# what `recpipe package` built; a changed file (new hash) is uploaded again
resource "aws_s3_object" "code" {
  for_each    = local.code_files
  bucket      = aws_s3_bucket.this["code"].id
  key         = each.value
  source      = "${var.package_dir}/${each.value}"
  source_hash = var.manifest.files[each.value].sha256
}

resource "aws_security_group" "clients" {
  name        = "${var.name}-clients"
  description = "recpipe Lambdas: out to the vector database, the source and AWS APIs"
  vpc_id      = var.vpc_id
  #checkov:skip=CKV2_AWS_5:attached to every Lambda by modules/function (vpc_config), through this module's output
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.clients.id
  description       = "AWS APIs (S3, Secrets Manager, Kinesis) through the subnets' NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "databases" {
  for_each          = { postgres = 5432, mysql = 3306 }
  security_group_id = aws_security_group.clients.id
  description       = "the vector database and the source, inside the VPC"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
  cidr_ipv4         = data.aws_vpc.this.cidr_block
}
