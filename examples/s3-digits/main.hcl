# The quickstart's digits experiment, with a team setup: the state on S3 (shared by
# laptops and CI, locked while one of them applies) and the models on S3 too.
# Works with AWS S3, Alibaba Cloud OSS (S3 endpoint) and MinIO; see README.md.

variable "bucket" {
  type        = string
  default     = "tunectl-demo"
  description = "Bucket for the state and the models (must exist)."
}

variable "endpoint" {
  type        = string
  default     = null
  description = "S3 endpoint; null for AWS. OSS: https://oss-cn-hangzhou.aliyuncs.com"
}

tunectl {
  backend "s3" {
    bucket           = var.bucket
    key              = "tunectl/s3-digits/tunectl.db"
    endpoint         = var.endpoint
    region           = "us-east-1"
    force_path_style = true
  }
}

storage "s3" {
  bucket           = var.bucket
  prefix           = "tunectl/models"
  endpoint         = var.endpoint
  region           = "us-east-1"
  force_path_style = true
  keep             = 3 # the models of the 3 best trials survive the experiment
}

provider "local" {
  slots = 2
}

experiment "digits" {
  description = "Learning rate, hidden units and L2 of a NumPy MLP on the 8x8 digits"

  algorithm "tpe" {
    seed = 42
  }

  objective {
    metric    = "val_acc"
    direction = "maximize"
    reduce    = "best"
  }

  max_trials     = 8
  max_concurrent = 2

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
    provider = "local"
    # The quickstart's training script and data; the model lands in ${trial.model_dir},
    # a local staging directory that tunectl uploads to S3 when the trial completes.
    command = "python train.py --lr ${param.lr} --hidden ${param.hidden} --epochs 8 --out ${trial.model_dir}"
    workdir = "../quickstart"
    timeout = "2m"
  }
}

output "best_model" {
  value = experiment.digits.best.model_uri
}

output "best_val_acc" {
  value = experiment.digits.best.value
}
