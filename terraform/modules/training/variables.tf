variable "name" {
  description = "Prefix of every resource name."
  type        = string
  validation {
    condition     = length(var.name) <= 24
    error_message = "A SageMaker training job's name is the prefix and the execution's name (36 characters): at most 63 in all."
  }
}

variable "shared" {
  description = "The shared module's outputs."
  type        = any
}

variable "instance_type" {
  description = "SageMaker instance type of the training job. A GPU type (ml.g*, ml.p*) takes the container's GPU image."
  type        = string
}

variable "volume_gb" {
  description = "Storage of the training instance: the lake when it is copied in (the lake channel), and the work."
  type        = number
}

variable "max_runtime_hours" {
  description = "A training job running longer is stopped."
  type        = number
}

variable "image_tags" {
  description = "Tags of SageMaker's PyTorch training image (pytorch-training) for CPU and GPU instance types."
  type        = object({ cpu = string, gpu = string })
}

variable "image_account" {
  description = "The AWS account that publishes SageMaker's framework images in this region (763104351884 in most regions)."
  type        = string
}

variable "hyperparameters" {
  description = "More `recpipe train` options by name (e.g. {\"max-epochs\" = \"20\", \"rating-baseline\" = \"true\"})."
  type        = map(string)
}

variable "after_etl_job" {
  description = "Name of the Glue job whose every successful run starts a training run (empty: none)."
  type        = string
}

variable "schedule" {
  description = "EventBridge schedule expression that starts a training run (empty: none)."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the runs' logs."
  type        = number
}
