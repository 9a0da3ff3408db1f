"""Plans built by hand, as the differ would build them, for the renderer tests.

Each function returns a fresh `Plan`; `PLANS` maps a golden file's name to its function.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tunectl.diags import SourceRange, error
from tunectl.plans.change import MISSING, Action, AttrChange, Change, Drift, Plan, TrialIntent
from tunectl.status import ExperimentStatus

MNIST: dict[str, Any] = {
    "description": "LR and batch size for the MNIST CNN",
    "algorithm": {"name": "tpe", "seed": 42},
    "objective": {"metric": "val_acc", "direction": "maximize", "reduce": "best"},
    "max_trials": 40,
    "max_concurrent": 4,
    "max_failed_trials": 5,
    "max_duration": "2h",
    "param": {
        "lr": {"type": "loguniform", "low": 1e-05, "high": 0.1},
        "batch_size": {"type": "choice", "values": [32, 64, 128]},
        "optimizer": {"type": "choice", "values": ["sgd", "adam"]},
    },
    "trial": {
        "provider": "local",
        "retries": 2,
        "timeout": "30m",
        "task": {
            "main": {
                "command": "python train.py --lr ${param.lr} --bs ${param.batch_size}",
                "workdir": ".",
                "env": {"EPOCHS": "5"},
                "metrics": [{"kind": "stdout", "pattern": "val_acc=([0-9.]+)"}],
            }
        },
    },
    "early_stopping": {"name": "median", "start_step": 2},
    "lifecycle": {"prevent_destroy": False, "ignore_changes": []},
}

OLD: dict[str, Any] = {
    "description": 'First try: "random" search',
    "algorithm": {"name": "random", "seed": 7},
    "objective": {
        "metrics": {"auc": 0.25, "recall": 0.75},
        "direction": "maximize",
        "reduce": "final",
    },
    "max_trials": 20,
    "max_concurrent": 2,
    "param": {"depth": {"type": "randint", "low": 2, "high": 12}},
    "trial": {
        "provider": "dlc",
        "retries": 0,
        "task": {
            "prepare": {"command": ["python", "prep.py"]},
            "train": {
                "command": "python fit.py --depth ${param.depth}",
                "metrics": [{"kind": "json", "path": "metrics.json"}],
                "image": "registry.example.com/fit:1.4",
            },
        },
    },
    "early_stopping": {"name": "none"},
    "lifecycle": {"prevent_destroy": False, "ignore_changes": ["description"]},
}


def mnist(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(MNIST)
    data.update(changes)
    return data


def fresh(max_trials: int = 40, max_concurrent: int = 4) -> TrialIntent:
    return TrialIntent(max_trials=max_trials, max_concurrent=max_concurrent, to_run=max_trials)


def create() -> Plan:
    change = Change("experiment.mnist", Action.CREATE, after=mnist(), intent=fresh())
    return Plan(changes=[change], lineage="3f0c", serial=1, config_digest="sha256:ab12")


def _update_change() -> Change:
    return Change(
        "experiment.mnist",
        Action.UPDATE,
        before=mnist(),
        after=mnist(max_trials=60),
        attrs=[AttrChange("max_trials", 40, 60)],
        intent=TrialIntent(
            max_trials=60,
            max_concurrent=4,
            done=40,
            complete=37,
            pruned=2,
            failed=1,
            to_run=20,
            status=ExperimentStatus.RUNNING,
        ),
    )


def update() -> Plan:
    return Plan(changes=[_update_change()], lineage="3f0c", serial=7)


def _replace_after() -> dict[str, Any]:
    after = mnist(description="LR, batch size and momentum")
    after["param"]["lr"]["high"] = 0.5
    after["param"]["momentum"] = {
        "type": "uniform",
        "low": 0.5,
        "high": 0.99,
        "when": {"optimizer": "sgd"},
    }
    return after


def replace() -> Plan:
    change = Change(
        "experiment.mnist",
        Action.REPLACE,
        before=mnist(),
        after=_replace_after(),
        attrs=[
            AttrChange(
                "description", "LR and batch size for the MNIST CNN", "LR, batch size and momentum"
            ),
            AttrChange("param.lr.high", 0.1, 0.5, forces_replacement=True),
            AttrChange("param.momentum.high", MISSING, 0.99, forces_replacement=True),
            AttrChange("param.momentum.low", MISSING, 0.5, forces_replacement=True),
            AttrChange("param.momentum.type", MISSING, "uniform", forces_replacement=True),
            AttrChange(
                "param.momentum.when", MISSING, {"optimizer": "sgd"}, forces_replacement=True
            ),
        ],
        consequences=[
            "This stops 2 running trial(s).",
            "This deletes 14 stored model object(s) (1.2 GiB) from the model storage.",
            "The results of 16 finished trial(s) are removed from the state.",
        ],
        intent=fresh(),
    )
    return Plan(changes=[change], lineage="3f0c", serial=9)


def replace_requested() -> Plan:
    change = Change(
        "experiment.mnist",
        Action.REPLACE,
        before=mnist(),
        after=mnist(),
        reasons=["replacement requested with --replace"],
        consequences=["This deletes 3 stored model object(s) (212.0 MiB) from the model storage."],
        intent=fresh(),
    )
    return Plan(changes=[change], replace=["experiment.mnist"], lineage="3f0c", serial=9)


def _destroy_change() -> Change:
    return Change(
        "experiment.old",
        Action.DESTROY,
        before=copy.deepcopy(OLD),
        consequences=[
            "This stops 2 running trial(s).",
            "This deletes 14 stored model object(s) (1.2 GiB) from s3://automl-models/experiments/.",
            "The results of 16 finished trial(s) are removed from the state.",
        ],
    )


def destroy() -> Plan:
    return Plan(changes=[_destroy_change()], lineage="3f0c", serial=12)


def destroy_mode_empty() -> Plan:
    return Plan(destroy=True, lineage="3f0c", serial=12)


DRIFT = [
    Drift("experiment.mnist.trial[3]", "running", "failed", "the task's process vanished"),
    Drift("experiment.mnist.trial[4]", "running", "complete"),
]


def drift() -> Plan:
    return Plan(changes=[_update_change()], drift=list(DRIFT), lineage="3f0c", serial=8)


def _done_intent() -> TrialIntent:
    return TrialIntent(
        max_trials=40,
        max_concurrent=4,
        done=40,
        complete=38,
        pruned=2,
        status=ExperimentStatus.SUCCEEDED,
    )


def drift_no_change() -> Plan:
    change = Change(
        "experiment.mnist", Action.NOOP, before=mnist(), after=mnist(), intent=_done_intent()
    )
    return Plan(changes=[change], drift=[DRIFT[1]], lineage="3f0c", serial=8)


def no_change() -> Plan:
    change = Change(
        "experiment.mnist", Action.NOOP, before=mnist(), after=mnist(), intent=_done_intent()
    )
    return Plan(changes=[change], lineage="3f0c", serial=14)


def _pending_intent() -> TrialIntent:
    return TrialIntent(
        max_trials=40,
        max_concurrent=4,
        done=12,
        complete=10,
        pruned=1,
        failed=1,
        running=2,
        to_run=26,
        status=ExperimentStatus.RUNNING,
        estimated_cost=3.5,
        currency="¥",
    )


def no_change_pending() -> Plan:
    change = Change(
        "experiment.mnist", Action.NOOP, before=mnist(), after=mnist(), intent=_pending_intent()
    )
    return Plan(changes=[change], lineage="3f0c", serial=15)


def multiple() -> Plan:
    cifar = mnist(description="ResNet-18 on CIFAR-10", max_trials=100, max_concurrent=8)
    cifar["algorithm"] = {"name": "grid"}
    cifar["param"] = {"lr": {"type": "choice", "values": [0.1, 0.01, 0.001]}}
    del cifar["max_failed_trials"], cifar["max_duration"]
    changes = [
        Change(
            "experiment.cifar",
            Action.CREATE,
            after=cifar,
            intent=TrialIntent(max_trials=100, max_concurrent=8, to_run=3, space_size=3),
        ),
        _update_change(),
        _destroy_change(),
        Change(
            "experiment.resnet",
            Action.NOOP,
            before=mnist(),
            after=mnist(),
            intent=_pending_intent(),
        ),
        Change("experiment.zzz", Action.NOOP, before=mnist(), after=mnist(), intent=_done_intent()),
    ]
    return Plan(changes=changes, drift=[DRIFT[0]], lineage="3f0c", serial=20)


def errors() -> Plan:
    plan = replace()
    plan.changes[0].before["lifecycle"]["prevent_destroy"] = True  # type: ignore[index]
    plan.changes[0].after["lifecycle"]["prevent_destroy"] = True  # type: ignore[index]
    plan.errors.append(
        error(
            "Experiment cannot be destroyed",
            "experiment.mnist has lifecycle.prevent_destroy set, but the plan calls for it to be "
            "replaced, which destroys its trials and models. Remove prevent_destroy to allow it, "
            "or undo the change that forces replacement.",
            SourceRange("main.hcl", 41),
            'in experiment "mnist"',
        )
    )
    return plan


PLANS: dict[str, Callable[[], Plan]] = {
    "create": create,
    "update": update,
    "replace": replace,
    "replace-requested": replace_requested,
    "destroy": destroy,
    "destroy-mode-empty": destroy_mode_empty,
    "drift": drift,
    "drift-no-change": drift_no_change,
    "no-change": no_change,
    "no-change-pending": no_change_pending,
    "multiple": multiple,
    "errors": errors,
}
