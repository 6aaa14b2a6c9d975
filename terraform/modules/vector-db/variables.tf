variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "shared" {
  description = "The shared module's outputs."
  type        = any
}

variable "subnet_ids" {
  description = "Private subnets (two AZs or more) of the database and the loader."
  type        = list(string)
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "allocated_storage_gb" {
  description = "Storage, GiB."
  type        = number
}

variable "multi_az" {
  description = "A standby in a second availability zone."
  type        = bool
}

variable "backup_retention_days" {
  description = "Days of automated backups."
  type        = number
}

variable "deletion_protection" {
  description = "Refuse to delete the database."
  type        = bool
}

variable "performance_insights" {
  description = "Performance Insights on."
  type        = bool
}

variable "load_catalog" {
  description = "The loader also loads the catalog and purchases from the source."
  type        = bool
}

variable "source_url" {
  description = "The source as a recpipe URL without password."
  type        = string
}

variable "source_secret_arn" {
  description = "Secret with the source's username and password."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps logs."
  type        = number
}

variable "loader_reserved_runners" {
  description = "Concurrent loads (vectors load takes a lock; more would queue)."
  type        = number
}
