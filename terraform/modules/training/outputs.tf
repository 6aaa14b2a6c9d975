output "state_machine_arn" {
  description = "The state machine that runs one training job per execution (aws stepfunctions start-execution --state-machine-arn ...)."
  value       = aws_sfn_state_machine.train.arn
}

output "role_arn" {
  description = "The role the training jobs run as."
  value       = aws_iam_role.job.arn
}

output "image" {
  description = "The training image the jobs run."
  value       = local.image
}
