variable "name" {
  description = "Prefix of every resource name, and the stack tag."
  type        = string
  default     = "recpipe"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "Use 2-21 lowercase letters, digits and hyphens, starting with a letter (bucket names derive from it)."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Tags added to every resource, beside project and stack."
  type        = map(string)
  default     = {}
}

variable "package_dir" {
  description = "Output folder of `recpipe package` (lambda.zip, arrow-layer.zip, glue/, manifest.json)."
  type        = string
  default     = "../dist/aws"
}

variable "vpc_id" {
  description = "Existing VPC for the database, the Lambdas and the Glue job."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of var.vpc_id in at least two availability zones, with a NAT route (Glue installs the package's dependencies from PyPI; the Lambdas reach S3 and Secrets Manager)."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two availability zones."
  }
}

variable "enable_etl" {
  description = "Deploy the ETL stage: the Glue job from the source MySQL to the training set."
  type        = bool
  default     = true
}

variable "enable_training" {
  description = "Deploy the training stage: SageMaker training jobs of `recpipe train`, started after each ETL run and/or on training_schedule."
  type        = bool
  default     = true
}

variable "training_instance_type" {
  description = "SageMaker instance of a training run (bigger shops: more memory, see docs/scale.md; ml.g* and ml.p* take the GPU image)."
  type        = string
  default     = "ml.m5.2xlarge"
}

variable "training_volume_gb" {
  description = "Storage of the training instance, in GB."
  type        = number
  default     = 50
}

variable "training_max_runtime_hours" {
  description = "A training run taking longer is stopped."
  type        = number
  default     = 6
}

variable "training_image_tags" {
  description = "Tags of SageMaker's PyTorch training image (Python 3.11) for CPU and GPU instances."
  type        = object({ cpu = string, gpu = string })
  default     = { cpu = "2.5.1-cpu-py311-ubuntu22.04-sagemaker", gpu = "2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker" }
}

variable "training_image_account" {
  description = "Account that publishes SageMaker's framework images in the region (763104351884 in most; see AWS's Deep Learning Containers list)."
  type        = string
  default     = "763104351884"
}

variable "training_hyperparameters" {
  description = "More `recpipe train` options for the training runs, by name, e.g. { \"max-epochs\" = \"20\" }."
  type        = map(string)
  default     = {}
}

variable "training_schedule" {
  description = "EventBridge schedule expression that also starts a training run, e.g. cron(0 4 * * ? *). Empty: only after the ETL."
  type        = string
  default     = ""
}

variable "enable_vector_db" {
  description = "Deploy the vector database (RDS PostgreSQL + pgvector) and its loader."
  type        = bool
  default     = true
}

variable "enable_streaming" {
  description = "Deploy the streaming path (Kinesis, Firehose, the transformation) and the inference service; needs enable_vector_db."
  type        = bool
  default     = true
}

variable "source_jdbc_url" {
  description = "JDBC URL of the source MySQL, e.g. jdbc:mysql://shop.xxxx.us-east-1.rds.amazonaws.com:3306/classicmodels."
  type        = string
  default     = ""
  validation {
    condition     = var.source_jdbc_url == "" || can(regex("^jdbc:(mysql|mariadb)://[^/]+/[^/?]+", var.source_jdbc_url))
    error_message = "Use jdbc:mysql://host:3306/database."
  }
}

variable "source_url" {
  description = "The same source as a recpipe URL without password (mysql+pymysql://user@host:3306/classicmodels), for the vectors loader's catalog; the password comes from source_secret_arn."
  type        = string
  default     = ""
}

variable "source_secret_arn" {
  description = "Secrets Manager secret with the source database's {\"username\", \"password\"} (JSON)."
  type        = string
  default     = ""
}

variable "source_security_group_id" {
  description = "Security group of the source database; if set, the Glue job and the loader are allowed in on 3306. Empty: manage access to the source yourself."
  type        = string
  default     = ""
}

variable "etl_schedule" {
  description = "Glue cron expression for the ETL job, e.g. cron(0 2 * * ? *). Empty: run it on demand."
  type        = string
  default     = ""
}

variable "lake_layout" {
  description = "Layout of the training dataset the ETL publishes: partitioned (the contract's customerNumber=<n>/, one file per customer) or compact (files of about a million ratings; big shops, docs/scale.md)."
  type        = string
  default     = "partitioned"
}

variable "etl_workers" {
  description = "G.1X workers of the Glue job (2 or more)."
  type        = number
  default     = 2
}

variable "load_catalog_from_source" {
  description = "The vectors loader also loads the product catalog and purchases from the source (needs source_url and source_secret_arn)."
  type        = bool
  default     = false
}

variable "db_instance_class" {
  description = "RDS instance class of the vector database."
  type        = string
  default     = "db.t4g.small"
}

variable "db_allocated_storage_gb" {
  description = "Storage of the vector database, GiB."
  type        = number
  default     = 20
}

variable "db_multi_az" {
  description = "Run the vector database in two availability zones."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days of automated backups of the vector database."
  type        = number
  default     = 7
}

variable "db_deletion_protection" {
  description = "Refuse to delete the vector database (set false before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "db_performance_insights" {
  description = "Performance Insights on the vector database."
  type        = bool
  default     = true
}

variable "stream_arn" {
  description = "ARN of an existing Kinesis stream of events. Empty: an on-demand stream is created."
  type        = string
  default     = ""
}

variable "processor_buffer_mb" {
  description = "Firehose buffers this much before invoking the transformation Lambda (0.2-3 MB)."
  type        = number
  default     = 1
}

variable "processor_buffer_seconds" {
  description = "...or this long (0-900 s). It bounds how fresh the session store is: a click reaches /recommendations about this long plus a second after it is put (docs/sessions.md)."
  type        = number
  default     = 5
}

variable "s3_buffer_mb" {
  description = "Firehose buffers this much before writing an object to S3 (64-128 MiB with a processor)."
  type        = number
  default     = 64
}

variable "s3_buffer_seconds" {
  description = "...or this long (0-900 s)."
  type        = number
  default     = 300
}

variable "inference_auth" {
  description = "Auth of the inference service's Function URL: AWS_IAM (signed requests) or NONE (public; then set an API key)."
  type        = string
  default     = "AWS_IAM"
  validation {
    condition     = contains(["AWS_IAM", "NONE"], var.inference_auth)
    error_message = "Use AWS_IAM or NONE."
  }
}

variable "lambda_memory_mb" {
  description = "Memory of the transformation and inference Lambdas, MB (CPU grows with it)."
  type        = number
  default     = 1024
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the logs of every function and job."
  type        = number
  default     = 365
}
