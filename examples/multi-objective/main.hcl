# Two objectives at once: validation accuracy (maximise) against a latency proxy
# (minimise). There is no single best trial; the result is the Pareto front.
# Run from the repository root:  tunectl --chdir examples/multi-objective apply --auto-approve

provider "local" {
  slots = 2
}

experiment "tradeoff" {
  description = "Accuracy against prediction cost of random-feature logistic regression"

  algorithm "tpe" {
    seed = 7
  }

  objective {
    metrics    = ["val_acc", "latency"]
    directions = ["maximize", "minimize"]
    reduce     = "final"
  }

  max_trials     = 12
  max_concurrent = 2
  max_duration   = "10m"

  param "features" {
    type = "int"
    low  = 2
    high = 64
    log  = true
  }
  param "lr" {
    type = "loguniform"
    low  = 0.01
    high = 2.0
  }

  trial {
    provider = "local"
    command  = "python train.py --features ${param.features} --lr ${param.lr} --epochs 15"
    workdir  = "."
    timeout  = "2m"
  }
}

# Each Pareto-optimal trial: { trial, values = { val_acc, latency }, params, model_uri }.
output "pareto" {
  value = experiment.tradeoff.pareto
}

output "front_size" {
  value = length(experiment.tradeoff.pareto)
}
