output "stream_url" {
  description = "RECPIPE_STREAM_URL."
  value       = "kinesis://${local.stream}"
}

output "inference_url" {
  description = "The inference service's Function URL."
  value       = aws_lambda_function_url.inference.function_url
}

output "delivery_stream" {
  description = "The Firehose delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.recommendations.name
}
