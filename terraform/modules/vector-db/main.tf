# PostgreSQL 16 + pgvector on RDS in private subnets, reachable only from the recpipe Lambdas'
# security group; the master password is RDS-managed in Secrets Manager. The loader runs
# `recpipe vectors load` when training publishes model/manifest.json, and on demand.

locals {
  database    = "recpipe"
  vectors_url = "postgresql://${aws_db_instance.this.address}:${aws_db_instance.this.port}/${local.database}?sslmode=require"
  catalog     = var.load_catalog && var.source_url != "" && var.source_secret_arn != ""
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-vectors"
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "db" {
  name        = "${var.name}-vectors"
  description = "recpipe vector database: PostgreSQL from the recpipe Lambdas only"
  vpc_id      = data.aws_subnet.first.vpc_id
}

data "aws_subnet" "first" {
  id = var.subnet_ids[0]
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the recpipe Lambdas"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = var.shared.clients_security_group_id
}

resource "aws_db_parameter_group" "this" {
  name   = "${var.name}-vectors"
  family = "postgres16"
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
}

resource "aws_db_instance" "this" {
  identifier                            = "${var.name}-vectors"
  engine                                = "postgres"
  engine_version                        = "16"
  instance_class                        = var.instance_class
  allocated_storage                     = var.allocated_storage_gb
  storage_type                          = "gp3"
  db_name                               = local.database
  username                              = "recpipe"
  manage_master_user_password           = true
  master_user_secret_kms_key_id         = var.shared.kms_key_arn
  storage_encrypted                     = true
  kms_key_id                            = var.shared.kms_key_arn
  db_subnet_group_name                  = aws_db_subnet_group.this.name
  vpc_security_group_ids                = [aws_security_group.db.id]
  parameter_group_name                  = aws_db_parameter_group.this.name
  publicly_accessible                   = false
  multi_az                              = var.multi_az
  backup_retention_period               = var.backup_retention_days
  deletion_protection                   = var.deletion_protection
  skip_final_snapshot                   = false
  final_snapshot_identifier             = "${var.name}-vectors-final"
  copy_tags_to_snapshot                 = true
  auto_minor_version_upgrade            = true
  iam_database_authentication_enabled   = true
  performance_insights_enabled          = var.performance_insights
  performance_insights_kms_key_id       = var.performance_insights ? var.shared.kms_key_arn : null
  performance_insights_retention_period = var.performance_insights ? 7 : null
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  #checkov:skip=CKV_AWS_157:multi-AZ is a variable (db_multi_az), off by default: a standby doubles the cost and the vectors can be reloaded
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-vectors-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring.json
}

data "aws_iam_policy_document" "monitoring" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${var.shared.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

module "loader" {
  source               = "../function"
  name                 = "${var.name}-vectors-load"
  description          = "recpipe vectors load: the published artifacts into PostgreSQL + pgvector"
  function             = "vectors_load"
  shared               = var.shared
  subnet_ids           = var.subnet_ids
  memory_mb            = 2048
  timeout_seconds      = 900
  reserved_concurrency = var.loader_reserved_runners
  log_retention_days   = var.log_retention_days
  policy_json          = data.aws_iam_policy_document.loader.json
  environment = merge({
    RECPIPE_ARTIFACTS_URL  = var.shared.artifacts_url
    RECPIPE_VECTORS_URL    = local.vectors_url
    RECPIPE_VECTORS_SECRET = aws_db_instance.this.master_user_secret[0].secret_arn
    }, local.catalog ? {
    RECPIPE_SOURCE_URL    = var.source_url
    RECPIPE_SOURCE_SECRET = var.source_secret_arn
  } : {})
}

data "aws_iam_policy_document" "loader" {
  source_policy_documents = [var.shared.read_artifacts_policy]
  statement {
    sid       = "Secrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = compact([aws_db_instance.this.master_user_secret[0].secret_arn, local.catalog ? var.source_secret_arn : ""])
  }
}

resource "aws_lambda_permission" "artifacts" {
  statement_id   = "ArtifactsPublished"
  action         = "lambda:InvokeFunction"
  function_name  = module.loader.name
  principal      = "s3.amazonaws.com"
  source_arn     = var.shared.bucket_arns["data"]
  source_account = var.shared.account
}

# training publishes model/manifest.json last: the model is whole when it is written
resource "aws_s3_bucket_notification" "artifacts" {
  bucket = var.shared.buckets["data"]
  lambda_function {
    lambda_function_arn = module.loader.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = "${var.shared.artifacts_prefix}/model/"
    filter_suffix       = "manifest.json"
  }
  depends_on = [aws_lambda_permission.artifacts]
}
