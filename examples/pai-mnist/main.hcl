# MNIST CNN tuning, written the way a PAI AutoML (HPO) experiment is configured.
# README.md maps each PAI AutoML setting to the block or attribute used here.
#
# This file runs the trials as local processes, as a dry run on a workstation with
# PyTorch. To run them as PAI-DLC jobs, declare a provider "dlc" (region, workspace_id)
# and set provider = "dlc" in the trial block.

variable "max_trials" {
  type        = number
  default     = 40
  description = "Trials that may end (complete, pruned or failed): PAI's max_trial_num."
  validation {
    condition     = var.max_trials > 0
    error_message = "max_trials must be positive."
  }
}

variable "epochs" {
  type        = number
  default     = 9
  description = "Training epochs of a trial that is not stopped early (hyperband's max_resource)."
  validation {
    condition     = var.epochs >= 1 && var.epochs <= 50
    error_message = "epochs must be between 1 and 50."
  }
}

variable "dry_run" {
  type        = bool
  default     = false
  description = "Simulate the training (no PyTorch, no MNIST download), to try the workflow."
}

provider "local" {
  slots = 4
}

experiment "mnist" {
  description = "Learning rate, batch size, optimizer and architecture of the MNIST CNN"

  algorithm "tpe" {
    seed = 42
  }

  objective {
    metrics   = { val_acc = 0.8, val_f1 = 0.2 } # weighted sum, as PAI's metric_dict
    direction = "maximize"
    goal      = 0.995
    reduce    = "best"
  }

  max_trials                     = var.max_trials
  max_concurrent                 = 4
  max_failed_trials              = 5
  max_duration                   = "2h"
  max_trials_without_improvement = 20

  early_stopping "hyperband" {
    min_resource     = 1
    max_resource     = var.epochs
    reduction_factor = 3
  }

  param "lr" {
    type = "loguniform"
    low  = 1e-4
    high = 1e-1
  }
  param "batch_size" {
    type   = "choice"
    values = [32, 64, 128]
  }
  param "optimizer" {
    type   = "choice"
    values = ["sgd", "adam"]
  }
  param "momentum" {
    type = "uniform"
    low  = 0.5
    high = 0.99
    when = { optimizer = "sgd" } # only SGD trials draw a momentum
  }
  param "dropout" {
    type = "quniform"
    low  = 0.0
    high = 0.5
    q    = 0.05
  }
  param "layers" {
    type = "randint" # NNI semantics: 1, 2 or 3 convolution blocks
    low  = 1
    high = 4
  }

  trial {
    provider = "local"
    env = {
      OMP_NUM_THREADS  = "4"
      PYTHONUNBUFFERED = "1"
    }
    timeout = "30m"
    retries = 2

    task "prepare" {
      command = "python prepare.py --out ${trial.model_dir}/data"
    }

    task "train" {
      command = "python train.py --data ${trial.model_dir}/data --lr ${param.lr} --batch-size ${param.batch_size} --optimizer ${param.optimizer} --momentum ${param.momentum} --dropout ${param.dropout} --layers ${param.layers} --epochs ${var.epochs} --dry-run ${var.dry_run} --out ${trial.model_dir}"

      metrics "stdout" {
        pattern = "val_acc=(?P<val_acc>[0-9.]+) val_f1=(?P<val_f1>[0-9.]+)"
      }
    }
  }

  lifecycle {
    prevent_destroy = true
    ignore_changes  = ["description"]
  }
}

output "best_lr" {
  value = experiment.mnist.best.params.lr
}

output "best_model_uri" {
  value = experiment.mnist.best.model_uri
}
