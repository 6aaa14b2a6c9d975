output "vectors_url" {
  description = "RECPIPE_VECTORS_URL without password."
  value       = local.vectors_url
}

output "master_secret_arn" {
  description = "RDS's managed secret with the master user and password."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "loader_name" {
  description = "The vectors loader function."
  value       = module.loader.name
}
