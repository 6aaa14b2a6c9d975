output "account" {
  description = "AWS account id."
  value       = local.account
}

output "region" {
  description = "AWS region."
  value       = local.region
}

output "partition" {
  description = "AWS partition (aws, aws-cn, ...)."
  value       = local.arn
}

output "kms_key_arn" {
  description = "The stack's KMS key."
  value       = aws_kms_key.this.arn
}

output "buckets" {
  description = "Bucket names by role: data, recs, code, logs."
  value       = { for k, b in aws_s3_bucket.this : k => b.id }
}

output "bucket_arns" {
  description = "Bucket ARNs by role."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}

output "lake_prefix" {
  description = "Key prefix of the lake in the data bucket."
  value       = local.lake
}

output "lake_url" {
  description = "RECPIPE_LAKE_URL."
  value       = "s3://${aws_s3_bucket.this["data"].id}/${local.lake}"
}

output "artifacts_prefix" {
  description = "Key prefix of the model artifacts in the data bucket."
  value       = local.artifacts
}

output "artifacts_url" {
  description = "RECPIPE_ARTIFACTS_URL."
  value       = "s3://${aws_s3_bucket.this["data"].id}/${local.artifacts}"
}

output "read_artifacts_policy" {
  description = "IAM policy JSON that reads the model artifacts."
  value       = data.aws_iam_policy_document.read_artifacts.json
}

output "recommendations_url" {
  description = "RECPIPE_RECOMMENDATIONS_URL (Firehose's output)."
  value       = "s3://${aws_s3_bucket.this["recs"].id}"
}

output "code" {
  description = "Uploaded code by package path: bucket, key, version."
  value       = { for k, o in aws_s3_object.code : k => { bucket = o.bucket, key = o.key, version = o.version_id } }
}

output "glue_wheel" {
  description = "Package path of the recpipe wheel for Glue."
  value       = local.glue_wheel
}

output "package_dir" {
  description = "Output folder of `recpipe package`."
  value       = var.package_dir
}

output "manifest" {
  description = "The package's manifest."
  value       = var.manifest
}

output "clients_security_group_id" {
  description = "Security group of every recpipe Lambda."
  value       = aws_security_group.clients.id
}
