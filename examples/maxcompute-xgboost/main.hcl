# XGBoost on MaxCompute, written as a PAI AutoML user would: each trial trains with
# `pai -name xgboost`, then scores the model with `pai -name evaluate`, which writes its
# AUC and F1 into a table; the trial's metrics come from that table (PAI's "table" metric
# type), weighted as PAI's metric_dict. Dry-run it on this machine against the shipped
# MaxCompute emulator (README.md).

variable "endpoint" {
  type        = string
  default     = "http://service.cn-hangzhou.maxcompute.aliyun.com/api"
  description = "The MaxCompute endpoint; the emulator's when dry-running."
}

variable "project" {
  type        = string
  default     = "tunectl_demo"
  description = "The MaxCompute project the jobs run in."
}

variable "train_table" {
  type        = string
  default     = "pai_demo_train"
  description = "The training table: feature columns f1, f2 and a label column."
}

provider "maxcompute" {
  project  = var.project
  endpoint = var.endpoint
  priority = 5
}

experiment "xgboost_auc" {
  description = "PAI XGBoost on a MaxCompute table, scored by PAI evaluate"

  algorithm "tpe" {
    seed = 3
  }

  objective {
    metrics   = { auc = 0.8, f1 = 0.2 }
    direction = "maximize"
  }

  max_trials        = 8
  max_concurrent    = 4
  max_failed_trials = 2
  max_duration      = "2h"

  param "eta" {
    type = "loguniform"
    low  = 0.01
    high = 1.0
  }
  param "max_depth" {
    type = "randint"
    low  = 2
    high = 10
  }
  param "num_round" {
    type   = "choice"
    values = [20, 50, 100]
  }

  trial {
    provider = "maxcompute"
    timeout  = "1h"

    task "train" {
      pai = "-name xgboost -project algo_public -DinputTableName=${var.train_table} -DmodelName=xgb_${trial.number} -DlabelColName=label -DfeatureColNames=f1,f2 -Deta=${param.eta} -Dmax_depth=${param.max_depth} -Dnum_round=${param.num_round}"
    }

    task "evaluate" {
      pai = "-name evaluate -project algo_public -DmodelName=xgb_${trial.number} -DinputTableName=${var.train_table} -DoutputTableName=xgb_eval_${trial.number}"

      metrics "table" {
        sql = "select auc, f1 from xgb_eval_${trial.number}"
      }
    }
  }
}

output "best_auc" {
  value = experiment.xgboost_auc.best.metrics.auc
}

output "best_params" {
  value = experiment.xgboost_auc.best.params
}
