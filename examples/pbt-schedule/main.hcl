# Population based training against random search on a toy problem whose best learning
# rate falls during training (train.py). Both experiments spend the same training steps:
# PBT 8 members x 6 rounds of 5 steps, random search 8 runs of 30 steps.
# Run from the repository root:  tunectl --chdir examples/pbt-schedule apply --auto-approve

variable "interval" {
  type    = number
  default = 5
}

provider "local" {
  slots = 8
}

experiment "pbt" {
  description = "PBT: every 5 steps the worst members copy a better one and perturb its rate"

  algorithm "pbt" {
    seed                  = 7
    population            = 8
    perturbation_interval = var.interval
    quantile              = 0.25
    resample_probability  = 0.25
  }

  objective {
    metric    = "loss"
    direction = "minimize"
  }

  max_trials     = 48
  max_concurrent = 8

  param "lr" {
    type = "loguniform"
    low  = 0.01
    high = 1.5
  }

  trial {
    provider = "local"
    command  = "python train.py --lr ${param.lr} --steps ${var.interval} --out ${trial.model_dir}"
    workdir  = "."
    timeout  = "1m"
  }
}

experiment "random" {
  description = "Random search: one fixed rate per run, 30 steps"

  algorithm "random" {
    seed = 7
  }

  objective {
    metric    = "loss"
    direction = "minimize"
  }

  max_trials     = 8
  max_concurrent = 8

  param "lr" {
    type = "loguniform"
    low  = 0.01
    high = 1.5
  }

  trial {
    provider = "local"
    command  = "python train.py --lr ${param.lr} --steps ${var.interval * 6} --out ${trial.model_dir}"
    workdir  = "."
    timeout  = "1m"
  }
}

output "pbt_best_loss" {
  value = experiment.pbt.best.value
}

output "random_best_loss" {
  value = experiment.random.best.value
}

output "pbt_beats_random" {
  value = experiment.pbt.best.value < experiment.random.best.value
}
