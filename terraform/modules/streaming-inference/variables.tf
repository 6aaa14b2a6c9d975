variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "shared" {
  description = "The shared module's outputs."
  type        = any
}

variable "subnet_ids" {
  description = "Private subnets of the Lambdas."
  type        = list(string)
}

variable "vectors_url" {
  description = "RECPIPE_VECTORS_URL without password."
  type        = string
}

variable "vectors_secret_arn" {
  description = "Secret with the vector database's username and password."
  type        = string
}

variable "stream_arn" {
  description = "An existing Kinesis stream (empty: one is created, on demand)."
  type        = string
}

variable "processor_buffer_mb" {
  description = "Firehose's buffer before the transformation, MB."
  type        = number
}

variable "processor_buffer_seconds" {
  description = "Firehose's buffer before the transformation, s."
  type        = number
}

variable "s3_buffer_mb" {
  description = "Firehose's buffer before S3, MiB."
  type        = number
}

variable "s3_buffer_seconds" {
  description = "Firehose's buffer before S3, s."
  type        = number
}

variable "inference_auth" {
  description = "Function URL auth: AWS_IAM or NONE."
  type        = string
}

variable "lambda_memory_mb" {
  description = "Memory of both Lambdas, MB."
  type        = number
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps logs."
  type        = number
}
