"""The apply engine: reconcile loop, Optuna bridge, metrics, model storage.

- `reconcile`: the outer loop (`Reconciler`) and the crash-safety reasoning of apply;
- `runner`: one experiment's trials (`Runner`), made of `experiment_run` (its bookkeeping),
  `submission` (launching, submitting, backoff) and `outcomes` (polling, reading metrics,
  pruning, ending trials);
- `search`: the Optuna bridge (`pruning`: tunectl's own stopping rules as Optuna
  pruners); `trials`: task requests and keys; `metrics`, `objective`:
  reading reports and combining them; `pareto`: the Pareto front of several objectives;
  `models`: model storage; `hosts`: which host runs what;
  `results`: an experiment's trials as read back for `trials`, `export` and `report`.

The engine retries no provider or storage call itself (see `tunectl.retry`).
"""
