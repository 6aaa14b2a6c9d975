output "name" {
  description = "Function name."
  value       = aws_lambda_function.this.function_name
}

output "arn" {
  description = "Function ARN."
  value       = aws_lambda_function.this.arn
}

output "role_name" {
  description = "The function's IAM role."
  value       = aws_iam_role.this.name
}
