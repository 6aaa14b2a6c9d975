# The ETL stage as a Glue 5.0 job (Spark 3.5, Python 3.11) running the package's own entry
# (glue/glue_etl.py, i.e. recpipe.jobs.glue_etl) with the package installed from its wheel. It
# reads the source through a Glue JDBC connection whose credentials stay in Secrets Manager,
# publishes ratings_ml_training to the lake (var.layout: the contract's customerNumber=<n>/
# partitions, or compact files with customerNumber a column), and in the partitioned layout a
# crawler then adds the new partitions to the
# catalog table (whose columns come from the package manifest, i.e. the dataset contract).

locals {
  code        = var.shared.code
  data        = var.shared.bucket_arns["data"]
  dataset     = var.shared.manifest.dataset
  location    = "${var.shared.lake_url}/${local.dataset.name}/"
  account     = var.shared.account
  region      = var.shared.region
  arn         = var.shared.partition
  glue_arn    = "arn:${local.arn}:glue:${local.region}:${local.account}"
  log_arn     = "arn:${local.arn}:logs:${local.region}:${local.account}:log-group:/aws-glue/*"
  partitioned = var.layout == "partitioned"
  wheel       = "s3://${local.code[var.shared.glue_wheel].bucket}/${local.code[var.shared.glue_wheel].key}"
}

data "aws_subnet" "job" {
  id = var.subnet_id
}

resource "aws_security_group" "job" {
  name        = "${var.name}-etl"
  description = "recpipe Glue job: its workers talk to each other and out to the source and AWS"
  vpc_id      = var.vpc_id
  #checkov:skip=CKV2_AWS_5:attached through the Glue connection (physical_connection_requirements)
}

resource "aws_vpc_security_group_ingress_rule" "workers" {
  security_group_id            = aws_security_group.job.id
  description                  = "Glue workers of the same job (Glue requires it)"
  ip_protocol                  = "tcp"
  from_port                    = 0
  to_port                      = 65535
  referenced_security_group_id = aws_security_group.job.id
  #checkov:skip=CKV_AWS_24:the source is this security group itself (Glue's workers), not 0.0.0.0/0
  #checkov:skip=CKV_AWS_25:as CKV_AWS_24
  #checkov:skip=CKV_AWS_260:as CKV_AWS_24
}

resource "aws_vpc_security_group_egress_rule" "workers" {
  security_group_id            = aws_security_group.job.id
  description                  = "Glue workers of the same job"
  ip_protocol                  = "tcp"
  from_port                    = 0
  to_port                      = 65535
  referenced_security_group_id = aws_security_group.job.id
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.job.id
  description       = "S3, Glue, Secrets Manager and PyPI through the subnet's NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "source" {
  security_group_id = aws_security_group.job.id
  description       = "the source MySQL"
  ip_protocol       = "tcp"
  from_port         = 3306
  to_port           = 3306
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "source" {
  count                        = var.source_security_group_id == "" ? 0 : 1
  security_group_id            = var.source_security_group_id
  description                  = "recpipe's Glue job reads the source"
  ip_protocol                  = "tcp"
  from_port                    = 3306
  to_port                      = 3306
  referenced_security_group_id = aws_security_group.job.id
}

resource "aws_glue_connection" "source" {
  name            = "${var.name}-source"
  connection_type = "JDBC"
  connection_properties = {
    JDBC_CONNECTION_URL = var.source_jdbc_url
    SECRET_ID           = var.source_secret_arn
    JDBC_ENFORCE_SSL    = "false"
  }
  physical_connection_requirements {
    availability_zone      = data.aws_subnet.job.availability_zone
    subnet_id              = var.subnet_id
    security_group_id_list = [aws_security_group.job.id]
  }
}

resource "aws_glue_security_configuration" "this" {
  name = "${var.name}-etl"
  encryption_configuration {
    cloudwatch_encryption {
      cloudwatch_encryption_mode = "SSE-KMS"
      kms_key_arn                = var.shared.kms_key_arn
    }
    job_bookmarks_encryption {
      job_bookmarks_encryption_mode = "CSE-KMS"
      kms_key_arn                   = var.shared.kms_key_arn
    }
    s3_encryption {
      s3_encryption_mode = "SSE-KMS"
      kms_key_arn        = var.shared.kms_key_arn
    }
  }
}

resource "aws_cloudwatch_log_group" "job" {
  name              = "/aws-glue/${var.name}-etl"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.shared.kms_key_arn
}

resource "aws_glue_job" "etl" {
  name                   = "${var.name}-etl"
  description            = "recpipe etl run (engine spark): the source into ratings_ml_training"
  role_arn               = aws_iam_role.job.arn
  glue_version           = "5.0"
  worker_type            = "G.1X"
  number_of_workers      = var.workers
  timeout                = 120
  connections            = [aws_glue_connection.source.name]
  security_configuration = aws_glue_security_configuration.this.name
  command {
    name            = "glueetl"
    python_version  = "3"
    script_location = "s3://${local.code["glue/glue_etl.py"].bucket}/${local.code["glue/glue_etl.py"].key}"
  }
  default_arguments = {
    "--additional-python-modules"        = join(",", concat([local.wheel], var.shared.manifest.glue_modules))
    "--connection_name"                  = aws_glue_connection.source.name
    "--lake_url"                         = var.shared.lake_url
    "--layout"                           = var.layout
    "--recommendations_url"              = var.shared.recommendations_url # delivered and served lines -> events, impressions
    "--continuous-log-logGroup"          = aws_cloudwatch_log_group.job.name
    "--enable-continuous-cloudwatch-log" = "true"
    "--enable-metrics"                   = "true"
    "--TempDir"                          = "s3://${var.shared.buckets["data"]}/glue-temp/"
  }
  execution_property {
    max_concurrent_runs = 1 # the lake's publish takes a lock; a second run would wait for it
  }
}

resource "aws_glue_trigger" "schedule" {
  count    = var.schedule == "" ? 0 : 1
  name     = "${var.name}-etl-schedule"
  type     = "SCHEDULED"
  schedule = var.schedule
  actions {
    job_name = aws_glue_job.etl.name
  }
}

resource "aws_glue_catalog_database" "this" {
  name        = replace(var.name, "-", "_")
  description = "recpipe's lake"
}

resource "aws_glue_catalog_table" "training" {
  name          = local.dataset.name
  database_name = aws_glue_catalog_database.this.name
  table_type    = "EXTERNAL_TABLE"
  parameters = {
    classification = "parquet"
  }
  dynamic "partition_keys" {
    for_each = local.partitioned ? [local.dataset.partition_key] : []
    content {
      name = partition_keys.value.name
      type = partition_keys.value.type
    }
  }
  storage_descriptor {
    location      = local.location
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }
    dynamic "columns" {
      for_each = local.partitioned ? local.dataset.columns : concat([local.dataset.partition_key], local.dataset.columns)
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

# after each successful run: new customers' partitions into the catalog; the columns stay the contract's
resource "aws_glue_crawler" "partitions" {
  count                  = local.partitioned ? 1 : 0
  name                   = "${var.name}-etl-partitions"
  role                   = aws_iam_role.job.arn
  database_name          = aws_glue_catalog_database.this.name
  security_configuration = aws_glue_security_configuration.this.name
  catalog_target {
    database_name = aws_glue_catalog_database.this.name
    tables        = [aws_glue_catalog_table.training.name]
  }
  schema_change_policy {
    delete_behavior = "LOG"
    update_behavior = "LOG"
  }
  configuration = jsonencode({
    Version       = 1.0
    CrawlerOutput = { Partitions = { AddOrUpdateBehavior = "InheritFromTable" } }
  })
}

resource "aws_glue_trigger" "crawl" {
  count = local.partitioned ? 1 : 0
  name  = "${var.name}-etl-crawl"
  type  = "CONDITIONAL"
  predicate {
    conditions {
      job_name = aws_glue_job.etl.name
      state    = "SUCCEEDED"
    }
  }
  actions {
    crawler_name = aws_glue_crawler.partitions[0].name
  }
}

resource "aws_iam_role" "job" {
  name               = "${var.name}-etl"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "job" {
  name   = "${var.name}-etl"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}

data "aws_iam_policy_document" "job" {
  statement {
    sid       = "Code"
    actions   = ["s3:GetObject"]
    resources = [for f in ["glue/glue_etl.py", var.shared.glue_wheel] : "${var.shared.bucket_arns["code"]}/${f}"]
  }
  statement {
    sid       = "Lake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.data}/${var.shared.lake_prefix}/*", "${local.data}/glue-temp/*"]
  }
  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket"]
    resources = [local.data]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.shared.lake_prefix}/*", "glue-temp/*"]
    }
  }
  statement {
    sid       = "ReadRecommendations" # the online datasets: what Firehose delivered and the service logged
    actions   = ["s3:GetObject"]
    resources = ["${var.shared.bucket_arns["recs"]}/*"]
  }
  statement {
    sid       = "ListRecommendations"
    actions   = ["s3:ListBucket"]
    resources = [var.shared.bucket_arns["recs"]]
  }
  statement {
    sid       = "SourceSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.source_secret_arn]
  }
  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.shared.kms_key_arn]
  }
  statement {
    sid     = "Catalog"
    actions = ["glue:GetConnection", "glue:GetDatabase", "glue:GetTable", "glue:GetPartitions", "glue:BatchCreatePartition", "glue:BatchGetPartition", "glue:UpdateTable", "glue:UpdatePartition", "glue:GetSecurityConfiguration"]
    resources = [
      "${local.glue_arn}:catalog",
      "${local.glue_arn}:database/${aws_glue_catalog_database.this.name}",
      "${local.glue_arn}:table/${aws_glue_catalog_database.this.name}/*",
      "${local.glue_arn}:connection/${aws_glue_connection.source.name}",
      "${local.glue_arn}:securityConfiguration/${aws_glue_security_configuration.this.name}",
    ]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"]
    resources = [local.log_arn, "${local.log_arn}:*"]
  }
  statement {
    sid       = "Metrics" # takes no resource ARN; limited to Glue's namespace
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["Glue"]
    }
  }
  statement {
    sid       = "NetworkInterfaces"
    actions   = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:CreateTags", "ec2:DeleteTags"]
    resources = ["arn:${local.arn}:ec2:${local.region}:${local.account}:network-interface/*", "arn:${local.arn}:ec2:${local.region}:${local.account}:subnet/${var.subnet_id}", "arn:${local.arn}:ec2:${local.region}:${local.account}:security-group/${aws_security_group.job.id}"]
  }
  statement {
    sid       = "DescribeOnly" # these actions take no resource ARN
    actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs", "ec2:DescribeVpcEndpoints", "ec2:DescribeRouteTables", "ec2:DescribeVpcAttribute"]
    resources = ["*"]
  }
}
