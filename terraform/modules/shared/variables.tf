variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "package_dir" {
  description = "Output folder of `recpipe package`."
  type        = string
}

variable "manifest" {
  description = "The package's manifest.json, decoded."
  type        = any
}

variable "vpc_id" {
  description = "VPC of the Lambdas' security group."
  type        = string
}
