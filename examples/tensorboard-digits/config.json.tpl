{
  "seed": ${trial.number},
  "epochs": 8,
  "optimizer": {
    "lr": ${param.lr},
    "l2": ${param.l2},
    "hidden": ${param.hidden},
    "batch_size": 32
  },
  "run": ${trial.id}
}
