# The training stage as Amazon SageMaker training jobs. SageMaker's PyTorch training container
# runs `recpipe train` in script mode from sagemaker/sourcedir.tar.gz (`recpipe package`: the
# wheel and recpipe.jobs.sagemaker_train), reading the lake from S3 and publishing to the
# artifacts URL, where the vectors loader picks the model up. A training job is one run, not a
# resource Terraform can hold: a Step Functions state machine starts one per execution and
# waits for it, and EventBridge starts an execution after each successful ETL run and/or on a
# schedule.

locals {
  account   = var.shared.account
  region    = var.shared.region
  arn       = var.shared.partition
  data      = var.shared.bucket_arns["data"]
  sourcedir = var.shared.code["sagemaker/sourcedir.tar.gz"]
  gpu       = can(regex("^ml\\.(g|p)[0-9]", var.instance_type))
  image     = "${var.image_account}.dkr.ecr.${local.region}.amazonaws.com/pytorch-training:${local.gpu ? var.image_tags.gpu : var.image_tags.cpu}"
  output    = "sagemaker-output"
  log_group = "arn:${local.arn}:logs:${local.region}:${local.account}:log-group:/aws/sagemaker/TrainingJobs"
  jobs      = "arn:${local.arn}:sagemaker:${local.region}:${local.account}:training-job/${var.name}-*"
  hyperparameters = merge(var.hyperparameters, {
    sagemaker_program          = "train.py"
    sagemaker_submit_directory = "s3://${local.sourcedir.bucket}/${local.sourcedir.key}"
    sagemaker_region           = local.region
    lake-url                   = var.shared.lake_url
    artifacts-url              = var.shared.artifacts_url
  })
}

resource "aws_sfn_state_machine" "train" {
  name     = "${var.name}-train"
  role_arn = aws_iam_role.machine.arn
  definition = jsonencode({
    Comment = "recpipe train as a SageMaker training job; the execution waits for it"
    StartAt = "Train"
    States = {
      Train = {
        Type     = "Task"
        Resource = "arn:${local.arn}:states:::sagemaker:createTrainingJob.sync"
        Parameters = {
          "TrainingJobName.$" = "States.Format('${var.name}-{}', $$.Execution.Name)"
          RoleArn             = aws_iam_role.job.arn
          AlgorithmSpecification = {
            TrainingImage     = local.image
            TrainingInputMode = "File"
            # recpipe.jobs.sagemaker_train prints one line per figure
            MetricDefinitions = [for m in ["recall_at_10", "ndcg_at_10", "popularity_recall_at_10", "cold_start_recall_at_10"] :
            { Name = m, Regex = "metric ${m}=([0-9.]+)" }]
          }
          HyperParameters = local.hyperparameters
          ResourceConfig = {
            InstanceType   = var.instance_type
            InstanceCount  = 1
            VolumeSizeInGB = var.volume_gb
            VolumeKmsKeyId = var.shared.kms_key_arn
          }
          OutputDataConfig = {
            S3OutputPath = "s3://${var.shared.buckets["data"]}/${local.output}/"
            KmsKeyId     = var.shared.kms_key_arn
          }
          StoppingCondition                     = { MaxRuntimeInSeconds = var.max_runtime_hours * 3600 }
          EnableInterContainerTrafficEncryption = true
        }
        End = true
      }
    }
  })
  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.machine.arn}:*"
    include_execution_data = true # the job's request and result: names and paths, no secret
    level                  = "ERROR"
  }
  tracing_configuration {
    enabled = true
  }
}

resource "aws_cloudwatch_log_group" "machine" {
  name              = "/aws/vendedlogs/states/${var.name}-train"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.shared.kms_key_arn
}

# SageMaker writes the jobs' logs to /aws/sagemaker/TrainingJobs (one group for every job of the account)
resource "aws_cloudwatch_event_rule" "after_etl" {
  count       = var.after_etl_job == "" ? 0 : 1
  name        = "${var.name}-train-after-etl"
  description = "recpipe: train after each successful ETL run"
  event_pattern = jsonencode({
    source      = ["aws.glue"]
    detail-type = ["Glue Job State Change"]
    detail      = { jobName = [var.after_etl_job], state = ["SUCCEEDED"] }
  })
}

resource "aws_cloudwatch_event_rule" "schedule" {
  count               = var.schedule == "" ? 0 : 1
  name                = "${var.name}-train-schedule"
  description         = "recpipe: train on a schedule"
  schedule_expression = var.schedule
}

resource "aws_cloudwatch_event_target" "train" {
  for_each = merge({ for r in aws_cloudwatch_event_rule.after_etl : "after_etl" => r.name },
  { for r in aws_cloudwatch_event_rule.schedule : "schedule" => r.name })
  rule     = each.value
  arn      = aws_sfn_state_machine.train.arn
  role_arn = aws_iam_role.events.arn
}

# --- the training job's role: read the lake and the code, publish the artifacts ---

resource "aws_iam_role" "job" {
  name               = "${var.name}-train-job"
  assume_role_policy = data.aws_iam_policy_document.assume["sagemaker"].json
}

data "aws_iam_policy_document" "assume" {
  for_each = toset(["sagemaker", "states", "events"])
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["${each.key}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "job" {
  name   = "${var.name}-train-job"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}

data "aws_iam_policy_document" "job" {
  statement {
    sid       = "Code"
    actions   = ["s3:GetObject"]
    resources = ["arn:${local.arn}:s3:::${local.sourcedir.bucket}/${local.sourcedir.key}"]
  }
  statement {
    sid       = "ReadLake" # the training dataset and the events
    actions   = ["s3:GetObject"]
    resources = ["${local.data}/${var.shared.lake_prefix}/*"]
  }
  statement {
    sid       = "PublishArtifacts" # staged, registered (_versions/) and published
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.data}/${var.shared.artifacts_prefix}/*", "${local.data}/${local.output}/*"]
  }
  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket"]
    resources = [local.data]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.shared.lake_prefix}/*", var.shared.lake_prefix]
    }
  }
  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"]
    resources = [var.shared.kms_key_arn]
  }
  statement {
    sid       = "Image"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = ["arn:${local.arn}:ecr:${local.region}:${var.image_account}:repository/pytorch-training"]
  }
  statement {
    sid       = "Registry" # takes no resource
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [local.log_group, "${local.log_group}:log-stream:*"]
  }
  statement {
    sid       = "Metrics" # the figures the metric definitions read from the log
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/TrainingJobs"]
    }
  }
}

# --- the state machine's role: start and watch the jobs ---

resource "aws_iam_role" "machine" {
  name               = "${var.name}-train-machine"
  assume_role_policy = data.aws_iam_policy_document.assume["states"].json
}

resource "aws_iam_role_policy" "machine" {
  name   = "${var.name}-train-machine"
  role   = aws_iam_role.machine.id
  policy = data.aws_iam_policy_document.machine.json
}

data "aws_iam_policy_document" "machine" {
  statement {
    sid       = "Jobs"
    actions   = ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob", "sagemaker:AddTags"]
    resources = [local.jobs]
  }
  statement {
    sid       = "PassRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.job.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
  statement {
    sid       = "WaitForJobs" # .sync: Step Functions' own rule tells it when a job ends
    actions   = ["events:PutTargets", "events:PutRule", "events:DescribeRule"]
    resources = ["arn:${local.arn}:events:${local.region}:${local.account}:rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"]
  }
  statement {
    sid = "DeliverLogs" # the log delivery API takes no resource
    actions = ["logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"]
    resources = ["*"]
  }
  statement {
    sid       = "Trace"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
    resources = ["*"]
  }
}

# --- EventBridge's role: start an execution ---

resource "aws_iam_role" "events" {
  name               = "${var.name}-train-events"
  assume_role_policy = data.aws_iam_policy_document.assume["events"].json
}

resource "aws_iam_role_policy" "events" {
  name   = "${var.name}-train-events"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}

data "aws_iam_policy_document" "events" {
  statement {
    sid       = "Start"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.train.arn]
  }
}
