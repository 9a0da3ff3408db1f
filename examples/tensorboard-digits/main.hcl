# TensorBoard metrics and a rendered configuration file, on the quickstart's NumPy network
# (../quickstart). Needs `pip install 'tunectl[tensorboard]'`. From the repository root:
#   tunectl --chdir examples/tensorboard-digits apply --auto-approve

provider "local" {
  slots = 2
}

variable "max_trials" {
  type    = number
  default = 8
}

experiment "digits_tb" {
  description = "PAI's summary metrics and params_src_dst_filepath on the 8x8 digits"

  algorithm "tpe" {
    seed             = 3
    n_startup_trials = 4
  }

  objective {
    metric    = "val/acc"
    direction = "maximize"
    reduce    = "best"
  }

  max_trials     = var.max_trials
  max_concurrent = 2

  early_stopping "median" {
    n_startup_trials = 3
    start_step       = 2
  }

  param "lr" {
    type = "loguniform"
    low  = 1e-3
    high = 1.0
  }
  param "l2" {
    type = "loguniform"
    low  = 1e-6
    high = 1e-2
  }
  param "hidden" {
    type   = "choice"
    values = [16, 32, 64]
  }

  trial {
    provider = "local"
    command  = "python train_tb.py ${trial.model_dir}"
    timeout  = "2m"

    # PAI's params_src_dst_filepath: rendered before the trial starts.
    template {
      source      = "config.json.tpl"
      destination = "${trial.model_dir}/config.json"
    }

    # PAI's summary metric type: the event files train_tb.py writes.
    metrics "tensorboard" {
      logdir = "${trial.model_dir}/tb"
      tag    = "val/acc"
    }
  }
}

output "best_val_acc" {
  value = experiment.digits_tb.best.value
}

output "best_params" {
  value = experiment.digits_tb.best.params
}
