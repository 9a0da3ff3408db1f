"""The same workload as apply_vs_optuna.py, through plain Optuna (study.optimize, n_jobs).

python bench/optuna_baseline.py TRIALS CONCURRENCY SLEEP
"""

import subprocess
import sys
from pathlib import Path

import optuna

WORKLOAD = str(Path(__file__).with_name("workload.py"))


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    out = subprocess.run(
        [sys.executable, WORKLOAD, repr(x), sys.argv[3]], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().split("=", 1)[1])


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=int(sys.argv[1]), n_jobs=int(sys.argv[2]))
    print(len(study.trials), study.best_value)


if __name__ == "__main__":
    main()
