"""The apply engine: reconcile loop, Optuna bridge, metrics, model storage."""
