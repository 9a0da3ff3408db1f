"""NNI's (and PAI's) tuner and assessor, with their `classArgs`, as tunectl blocks.

PAI AutoML's `yml_config` is NNI's `exp.yml`, so both importers use this module. A tuner
tunectl has no algorithm for is an error (the import would run another search); an
argument with no Optuna setting is a note, with the sentence the algorithm registry gives
for it (`AlgorithmEntry.hints`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tunectl.importers.hclwriter import Block
from tunectl.importers.model import Notes, fail
from tunectl.search.algorithms import ALGORITHMS
from tunectl.search.pruners import PRUNERS
from tunectl.search.settings import Setting

# NNI's builtin tuner names (lower case, `Tuner` suffix dropped) -> tunectl algorithm
TUNERS = {
    "tpe": "tpe",
    "random": "random",
    "randomsearch": "random",
    "gridsearch": "grid",
    "evolution": "evolution",
    "gp": "gp",
    "pbt": "pbt",
}
NO_EQUIVALENT = {
    "anneal": "Optuna has no annealing sampler",
    "smac": "Optuna has no SMAC sampler",
    "metis": "Optuna has no Metis sampler",
    "batch": "BatchTuner runs given parameter sets: list them in the experiment's enqueue",
    "hyperband": 'Hyperband is an early-stopping rule here: early_stopping "hyperband" '
    'with algorithm "random"',
    "bohb": 'Optuna has no BOHB sampler (the nearest is algorithm "tpe" with '
    'early_stopping "hyperband")',
    "dngo": "Optuna has no DNGO sampler",
    "networkmorphism": "neural architecture search is not tunectl's",
    "ppo": "neural architecture search is not tunectl's",
    "regularizedevolution": "neural architecture search is not tunectl's",
    "hyperopt": "name the hyperopt algorithm instead: TPE, Random or Anneal",
}
# NNI's default optimize_mode per tuner, where the config leaves it out.
DEFAULT_MODE = {"tpe": "minimize", "random": "minimize", "grid": "maximize"}
TPE_ARGS = {
    "n_startup_jobs": "n_startup_trials",
    "n_ei_candidates": "n_ei_candidates",
    "gamma": "gamma",
    "prior_weight": "prior_weight",
    "linear_forgetting": "linear_forgetting",
}
PBT_ARGS = {"population_size": "population", "fraction": "quantile"}
KNOWN = "TPE, Random, GridSearch, Evolution, GP, PBT"


@dataclass
class Search:
    algorithm: Block
    direction: str
    early_stopping: Block | None = None


def _put(
    block: Block,
    settings: Mapping[str, Setting],
    name: str,
    value: Any,
    source: str,
    notes: Notes,
) -> None:
    """`name = value` in `block` when the registry's check accepts it, else a note."""
    problem = settings[name].check(value)
    if problem:
        notes.add(source, f"{value!r} is not {name} here ({problem} is): left out.")
    else:
        block.set(name, value)


def _key(name: str) -> str:
    key = name.lower().replace("_", "").replace("-", "")
    return key[:-5] if key.endswith("tuner") and key != "tuner" else key


def _direction(args: Mapping[str, Any], where: str, notes: Notes) -> str | None:
    mode = args.get("optimize_mode")
    if mode is None:
        return None
    if str(mode).lower() not in ("maximize", "minimize"):
        fail("Invalid optimize_mode", f"{where}.optimize_mode is {mode!r}: maximize or minimize.")
    return str(mode).lower()


def tuner(spec: Any, where: str, notes: Notes, args_key: str) -> tuple[Block, str | None]:
    """The `algorithm` block of an NNI `tuner` section, and the direction it gives."""
    if not isinstance(spec, Mapping):
        fail("Missing tuner", f"{where} must be a mapping with a name, e.g. {{name: TPE}}.")
    name = spec.get("name") or spec.get("builtinTunerName")
    if not name:
        if spec.get("className") or spec.get("codeDirectory") or spec.get("codeDir"):
            fail(
                "Unsupported tuner",
                f"{where} is a customized tuner (className): tunectl runs Optuna's samplers "
                f"only. Choose one of {KNOWN}.",
            )
        fail(
            "Missing tuner", f"{where} needs a name: one of {KNOWN}."
        )
    key = _key(str(name))
    algo = TUNERS.get(key)
    if algo is None:
        why = NO_EQUIVALENT.get(key)
        if why:
            fail("Unsupported tuner", f'{where}.name is "{name}": {why}. tunectl imports {KNOWN}.')
        fail(
            "Unknown tuner",
            f'{where}.name is "{name}", which is not a tuner tunectl knows: {KNOWN}.',
        )
    block = Block("algorithm", (algo,))
    args = spec.get(args_key) or spec.get("classArgs") or spec.get("class_args") or {}
    if not isinstance(args, Mapping):
        fail("Invalid tuner arguments", f"{where}.{args_key} must be a mapping.")
    direction = _direction(args, f"{where}.{args_key}", notes)
    settings = ALGORITHMS[algo].settings
    hints = ALGORITHMS[algo].hints
    for arg, value in args.items():
        source = f"{where}.{args_key}.{arg}"
        if arg == "optimize_mode":
            continue
        if arg == "tpe_args" and algo == "tpe" and isinstance(value, Mapping):
            _tpe_args(block, value, source, notes)
        elif arg == "cold_start_num" and algo == "gp":
            _put(block, settings, "n_startup_trials", value, source, notes)
        elif arg in PBT_ARGS and algo == "pbt":
            _put(block, settings, PBT_ARGS[arg], value, source, notes)
        elif arg in settings:
            _put(block, settings, arg, value, source, notes)
        else:
            notes.add(source, hints.get(arg) or f'algorithm "{algo}" has no such setting.')
    if algo == "pbt":
        notes.add(
            f"{where}.name",
            "PBT: each trial saves its checkpoint in ${trial.model_dir} and resumes from "
            "${trial.parent_model_dir} (empty in round 0); max_trials must be a multiple of "
            "population (docs/pbt.md). Pass both directories to the trial's command.",
        )
    return block, direction


def default_direction(algorithm: Block, where: str, notes: Notes, platform: str = "NNI") -> str:
    """The direction when neither the tuner nor the assessor gives `optimize_mode`: NNI's
    default for the tuner; PAI AutoML's own (maximize, its trial.ini's default)."""
    algo = algorithm.labels[0]
    direction = "maximize" if platform == "PAI" else DEFAULT_MODE.get(algo, "maximize")
    notes.add(
        f"{where}.optimize_mode",
        f"not given: the objective is {direction}d ({platform}'s default). Check it.",
    )
    return direction


def _tpe_args(block: Block, args: Mapping[str, Any], where: str, notes: Notes) -> None:
    for arg, value in args.items():
        if arg in TPE_ARGS:
            _put(block, ALGORITHMS["tpe"].settings, TPE_ARGS[arg], value, f"{where}.{arg}", notes)
        elif arg == "constant_liar_type":
            if str(value) == "worst":
                block.set("constant_liar", True)
            else:
                notes.add(f"{where}.{arg}", ALGORITHMS["tpe"].hints["constant_liar_type"])
        else:
            notes.add(f"{where}.{arg}", 'algorithm "tpe" has no such setting.')


def assessor(spec: Any, where: str, notes: Notes, args_key: str) -> tuple[Block | None, str | None]:
    """The `early_stopping` block of an NNI/PAI `assessor` section (None: no equivalent)."""
    if spec is None:
        return None, None
    if not isinstance(spec, Mapping):
        fail("Invalid assessor", f"{where} must be a mapping with a name.")
    name = str(spec.get("name") or spec.get("builtinAssessorName") or "")
    args = spec.get(args_key) or spec.get("classArgs") or spec.get("class_args") or {}
    if not isinstance(args, Mapping):
        fail("Invalid assessor arguments", f"{where}.{args_key} must be a mapping.")
    direction = _direction(args, f"{where}.{args_key}", notes)
    key = name.lower()
    if key == "curvefitting":
        notes.add(
            where,
            "Curvefitting has no equivalent (Optuna has no learning-curve extrapolation): "
            'no early stopping; consider early_stopping "median" or "pai".',
        )
        return None, direction
    if key not in ("medianstop", "paiassessor"):
        fail(
            "Unknown assessor",
            f'{where}.name is "{name}"; tunectl imports Medianstop and PAIAssessor '
            "(Curvefitting with a note).",
        )
    rule = "median" if key == "medianstop" else "pai"
    if rule == "pai" and args.get("earlystop") is False:
        notes.add(f"{where}.{args_key}.earlystop", "false: no early stopping.")
        return None, direction
    block = Block("early_stopping", (rule,))
    entry = PRUNERS[rule]
    for arg, value in args.items():
        source = f"{where}.{args_key}.{arg}"
        if arg in ("optimize_mode", "earlystop"):
            continue
        if arg in entry.settings:
            _put(block, entry.settings, arg, value, source, notes)
        else:
            notes.add(
                source, entry.hints.get(arg) or f'early_stopping "{rule}" has no such setting.'
            )
    return block, direction
