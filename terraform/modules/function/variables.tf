variable "name" {
  description = "Function name."
  type        = string
}

variable "description" {
  description = "What the function does."
  type        = string
}

variable "shared" {
  description = "The shared module's outputs (key, buckets, code, security group, manifest)."
  type        = any
}

variable "function" {
  description = "The function's key in the package manifest's handlers (transform, inference, vectors_load)."
  type        = string
}

variable "environment" {
  description = "RECPIPE_* settings of the function, as the CLI reads them."
  type        = map(string)
}

variable "subnet_ids" {
  description = "Private subnets the function runs in."
  type        = list(string)
}

variable "memory_mb" {
  description = "Memory, MB."
  type        = number
}

variable "timeout_seconds" {
  description = "Timeout, s."
  type        = number
}

variable "reserved_concurrency" {
  description = "Most concurrent runs (-1: unreserved)."
  type        = number
}

variable "policy_json" {
  description = "IAM policy with what the function itself calls (beyond logs, network and tracing)."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the function's logs."
  type        = number
}
