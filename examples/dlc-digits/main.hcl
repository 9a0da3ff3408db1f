# The digits experiment as PAI-DLC jobs, written as a PAI AutoML user would: each trial is
# a PyTorchJob on a public-resource ECS instance, with the training code and data mounted
# from OSS. Dry-run it on this machine against the shipped DLC emulator (README.md).

variable "workspace_id" {
  type        = string
  default     = "ws-demo"
  description = "The PAI workspace the jobs are created in."
}

variable "endpoint" {
  type        = string
  default     = null
  description = "DLC API endpoint; null for pai-dlc.<region>.aliyuncs.com."
}

variable "protocol" {
  type    = string
  default = "https"
}

variable "code_dir" {
  type        = string
  default     = "/mnt/code"
  description = "Where the job sees the training code (the code_source mount)."
}

provider "dlc" {
  region       = "cn-hangzhou"
  workspace_id = var.workspace_id
  endpoint     = var.endpoint
  protocol     = var.protocol
  log_interval = 2
}

experiment "digits_dlc" {
  description = "NumPy MLP on the 8x8 digits, one DLC PyTorchJob per trial"

  algorithm "tpe" {
    seed = 7
  }

  objective {
    metric    = "val_acc"
    direction = "maximize"
    reduce    = "best"
  }

  max_trials        = 6
  max_concurrent    = 3
  max_failed_trials = 2
  max_duration      = "2h"

  early_stopping "median" {
    start_step = 3
  }

  param "lr" {
    type = "loguniform"
    low  = 1e-3
    high = 1.0
  }
  param "hidden" {
    type   = "choice"
    values = [16, 32, 64]
  }

  trial {
    provider         = "dlc"
    job_type         = "PyTorchJob"
    image            = "dsw-registry.cn-hangzhou.cr.aliyuncs.com/pai/pytorch-training:2.1-cpu-py310-ubuntu22.04"
    worker           = { count = 1, ecs_spec = "ecs.g6.xlarge" }
    code_source      = { id = "code-digits", branch = "main", mount_path = "/mnt/code" }
    priority         = 5
    max_running_time = "30m"
    command          = "python ${var.code_dir}/train.py --lr ${param.lr} --hidden ${param.hidden} --epochs 8"
  }
}

output "best_val_acc" {
  value = experiment.digits_dlc.best.value
}

output "best_params" {
  value = experiment.digits_dlc.best.params
}
