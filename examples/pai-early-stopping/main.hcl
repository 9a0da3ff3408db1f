# PAI AutoML's early stopping and known configurations first, on the quickstart's NumPy
# network (../quickstart/train.py). Run from the repository root:
#   tunectl --chdir examples/pai-early-stopping apply --auto-approve

provider "local" {
  slots = 2
}

variable "max_trials" {
  type    = number
  default = 10
}

experiment "digits_pai" {
  description = "PAIAssessor's rule and enqueued configurations on the 8x8 digits"

  # NNI's TPE class_args: tpe_args.n_startup_jobs, gamma, prior_weight.
  algorithm "tpe" {
    seed             = 7
    n_startup_trials = 4
    gamma            = 0.25
    prior_weight     = 1.0
  }

  objective {
    metric    = "val_acc"
    direction = "maximize"
    reduce    = "best"
  }

  max_trials     = var.max_trials
  max_concurrent = 2

  # assessor: { name: PAIAssessor, classArgs: { start_step: 2, moving_avg: true,
  # proportion: 0.5, patience: 3 } }
  early_stopping "pai" {
    start_step = 2
    moving_avg = true
    proportion = 0.5
    patience   = 3
  }

  # Known configurations first: the team's current settings, and a deliberately poor one
  # that the rule stops early.
  enqueue = [
    { lr = 0.3, hidden = 32 },
    { lr = 0.1, hidden = 64 },
    { lr = 0.001, hidden = 16 },
  ]

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
    command  = "python ../quickstart/train.py --lr ${param.lr} --hidden ${param.hidden} --epochs 8 --out ${trial.model_dir}"
    workdir  = "."
    timeout  = "2m"
  }
}

output "best_val_acc" {
  value = experiment.digits_pai.best.value
}

output "best_params" {
  value = experiment.digits_pai.best.params
}
