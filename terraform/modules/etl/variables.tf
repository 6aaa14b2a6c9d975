variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "shared" {
  description = "The shared module's outputs."
  type        = any
}

variable "vpc_id" {
  description = "VPC of the Glue connection."
  type        = string
}

variable "subnet_id" {
  description = "Private subnet the Glue job runs in (with a NAT route: it installs the package's dependencies from PyPI)."
  type        = string
}

variable "source_jdbc_url" {
  description = "JDBC URL of the source MySQL."
  type        = string
  validation {
    condition     = var.source_jdbc_url != ""
    error_message = "The ETL stage needs source_jdbc_url (and source_secret_arn), or enable_etl = false."
  }
}

variable "source_secret_arn" {
  description = "Secret with the source's username and password."
  type        = string
}

variable "source_security_group_id" {
  description = "The source database's security group, to let the job in (empty: managed elsewhere)."
  type        = string
}

variable "schedule" {
  description = "Glue cron expression (empty: on demand)."
  type        = string
}

variable "workers" {
  description = "G.1X workers."
  type        = number
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the job's logs."
  type        = number
}

variable "layout" {
  description = "Layout of the training dataset: partitioned (customerNumber=<n>/, the contract's) or compact (few files, customerNumber a column)."
  type        = string
  validation {
    condition     = contains(["partitioned", "compact"], var.layout)
    error_message = "layout is partitioned or compact."
  }
}
