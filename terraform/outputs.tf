output "lake_url" {
  description = "RECPIPE_LAKE_URL for `recpipe train` and `recpipe etl show` from any machine."
  value       = module.shared.lake_url
}

output "artifacts_url" {
  description = "RECPIPE_ARTIFACTS_URL: `recpipe train` publishes here, which starts the vectors loader."
  value       = module.shared.artifacts_url
}

output "recommendations_url" {
  description = "Where Firehose writes the enriched events (YYYY/MM/dd/HH/)."
  value       = module.shared.recommendations_url
}

output "stream_url" {
  description = "RECPIPE_STREAM_URL for `recpipe stream produce`."
  value       = try(module.streaming_inference[0].stream_url, null)
}

output "inference_url" {
  description = "The inference service's Function URL."
  value       = try(module.streaming_inference[0].inference_url, null)
}

output "glue_job" {
  description = "Name of the ETL job (aws glue start-job-run --job-name ...)."
  value       = try(module.etl[0].job_name, null)
}

output "training_state_machine" {
  description = "Starts a training run (aws stepfunctions start-execution --state-machine-arn ...); the ETL's runs start one too."
  value       = try(module.training[0].state_machine_arn, null)
}

output "vectors_loader" {
  description = "Name of the vectors loader function (aws lambda invoke --function-name ... out.json)."
  value       = try(module.vector_db[0].loader_name, null)
}

output "vectors_url" {
  description = "The vector database as RECPIPE_VECTORS_URL, without password (it stays in Secrets Manager)."
  value       = try(module.vector_db[0].vectors_url, null)
}

output "vectors_secret_arn" {
  description = "RECPIPE_VECTORS_SECRET: RDS's managed secret with the master user and password."
  value       = try(module.vector_db[0].master_secret_arn, null)
}
