# Tune a small NumPy neural network on the 8x8 handwritten digits (data/digits.npz).
# Run from the repository root:  tunectl --chdir examples/quickstart apply --auto-approve

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

  max_trials        = 12
  max_concurrent    = 2
  max_failed_trials = 3
  max_duration      = "10m"

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
  param "l2" {
    type = "loguniform"
    low  = 1e-6
    high = 1e-2
  }

  trial {
    provider = "local"
    command  = "python train.py --lr ${param.lr} --hidden ${param.hidden} --l2 ${param.l2} --epochs 8 --out ${trial.model_dir}"
    workdir  = "."
    timeout  = "2m"
  }
}

output "best_val_acc" {
  value = experiment.digits.best.value
}

output "best_params" {
  value = experiment.digits.best.params
}
