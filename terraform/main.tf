# recpipe on AWS: the shared buckets, key and code (always), and the three stages, each
# switched by a variable. `recpipe package` builds what the stages run into var.package_dir;
# its manifest.json gives the handlers, the Lambda architecture and the training set's columns.

locals {
  manifest = jsondecode(file("${var.package_dir}/manifest.json"))
}

module "shared" {
  source      = "./modules/shared"
  name        = var.name
  package_dir = var.package_dir
  manifest    = local.manifest
  vpc_id      = var.vpc_id
}

module "vector_db" {
  source                  = "./modules/vector-db"
  count                   = var.enable_vector_db ? 1 : 0
  name                    = var.name
  shared                  = module.shared
  subnet_ids              = var.subnet_ids
  instance_class          = var.db_instance_class
  allocated_storage_gb    = var.db_allocated_storage_gb
  multi_az                = var.db_multi_az
  backup_retention_days   = var.db_backup_retention_days
  deletion_protection     = var.db_deletion_protection
  performance_insights    = var.db_performance_insights
  load_catalog            = var.load_catalog_from_source
  source_url              = var.source_url
  source_secret_arn       = var.source_secret_arn
  log_retention_days      = var.log_retention_days
  loader_reserved_runners = 1
}

module "etl" {
  source                   = "./modules/etl"
  count                    = var.enable_etl ? 1 : 0
  name                     = var.name
  shared                   = module.shared
  vpc_id                   = var.vpc_id
  subnet_id                = var.subnet_ids[0]
  source_jdbc_url          = var.source_jdbc_url
  source_secret_arn        = var.source_secret_arn
  source_security_group_id = var.source_security_group_id
  schedule                 = var.etl_schedule
  workers                  = var.etl_workers
  layout                   = var.lake_layout
  log_retention_days       = var.log_retention_days
}

module "training" {
  source             = "./modules/training"
  count              = var.enable_training ? 1 : 0
  name               = var.name
  shared             = module.shared
  instance_type      = var.training_instance_type
  volume_gb          = var.training_volume_gb
  max_runtime_hours  = var.training_max_runtime_hours
  image_tags         = var.training_image_tags
  image_account      = var.training_image_account
  hyperparameters    = var.training_hyperparameters
  after_etl_job      = var.enable_etl ? module.etl[0].job_name : ""
  schedule           = var.training_schedule
  log_retention_days = var.log_retention_days
}

module "streaming_inference" {
  source                   = "./modules/streaming-inference"
  count                    = var.enable_streaming && var.enable_vector_db ? 1 : 0
  name                     = var.name
  shared                   = module.shared
  subnet_ids               = var.subnet_ids
  vectors_url              = module.vector_db[0].vectors_url
  vectors_secret_arn       = module.vector_db[0].master_secret_arn
  stream_arn               = var.stream_arn
  processor_buffer_mb      = var.processor_buffer_mb
  processor_buffer_seconds = var.processor_buffer_seconds
  s3_buffer_mb             = var.s3_buffer_mb
  s3_buffer_seconds        = var.s3_buffer_seconds
  inference_auth           = var.inference_auth
  lambda_memory_mb         = var.lambda_memory_mb
  log_retention_days       = var.log_retention_days
}
