"""The algorithm registry: every `algorithm "NAME"` tunectl knows, in one table.

An entry holds everything about one algorithm: its settings (check, default, doc), the
packages it needs beyond tunectl's own dependencies and the extra that installs them, what
it needs of the search space, its documentation line, and the builder of its Optuna sampler.
Adding an algorithm is adding one entry to `ALGORITHMS`: the configuration's schema,
validation, the engine and the docs read it from here.

This module imports no Optuna (the layer is pure, and `plan` and `validate` must stay fast):
a builder is handed the `optuna.samplers` module by the engine.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunectl.search.model import Algorithm, ParamSpec
from tunectl.search.settings import (
    Setting,
    boolean,
    number,
    one_of,
    whole,
    with_defaults,
)

# (optuna.samplers, settings with their defaults, seed of this ask, the experiment's own
# seed) -> sampler
Builder = Callable[[Any, Mapping[str, Any], int | None, int | None], Any]
# The algorithm's own checks of a search space: sentences, empty when fine.
SpaceCheck = Callable[[Sequence[ParamSpec]], list[str]]


@dataclass(frozen=True)
class Requirement:
    """A package an algorithm imports that tunectl does not install by default."""

    module: str  # the top-level module Optuna imports, e.g. "scipy"
    label: str  # its name in sentences, e.g. "SciPy"


@dataclass(frozen=True)
class AlgorithmEntry:
    name: str
    doc: str  # one line: the Optuna sampler and what it is for
    build: Builder
    settings: Mapping[str, Setting] = field(default_factory=dict)
    # Packages the sampler imports, installed by `pip install 'tunectl[EXTRA]'`.
    needs: tuple[Requirement, ...] = ()
    extra: str | None = None
    # Needs a finite space; quantized types are sampled as categoricals of their values.
    discrete: bool = False
    # The engine asks every combination as fixed parameters, in a seeded order (grid).
    enumerate: bool = False
    check_space: SpaceCheck | None = None
    # Searches several objectives at once (Optuna's multi-objective study).
    multi_objective: bool = False
    # NNI's / PAI's `class_args` of this tuner that are not settings here: what instead.
    hints: Mapping[str, str] = field(default_factory=dict)

    def sampler(
        self, samplers: Any, algorithm: Algorithm, seed: int | None, base_seed: int | None
    ) -> Any:
        """The Optuna sampler of `algorithm` (whose name is this entry's), seeded with `seed`;
        `samplers` is the `optuna.samplers` module."""
        settings = with_defaults(self.settings, algorithm.settings)
        return self.build(samplers, settings, seed, base_seed)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _fallback(samplers: Any, seed: int | None) -> Any:
    return samplers.RandomSampler(seed=seed)


def _good_count(gamma: float, forgetting: int) -> Callable[[int], int]:
    """NNI's (hyperopt's) split: the good group holds ceil(gamma * sqrt(n)) of n trials,
    at most `forgetting`."""

    def count(n: int) -> int:
        return min(math.ceil(gamma * math.sqrt(n)), forgetting)

    return count


def _forgetting_weights(forgetting: int) -> Callable[[int], Any]:
    """Optuna's default weights with NNI's `linear_forgetting` in place of its 25: the
    latest `forgetting` trials weigh 1, older ones ramp down linearly."""

    def weights(n: int) -> Any:
        import numpy as np

        if n < forgetting:
            return np.ones(n)
        ramp = np.linspace(1.0 / n, 1.0, num=n - forgetting)
        return np.concatenate([ramp, np.ones(forgetting)])

    return weights


def _tpe(samplers: Any, s: Mapping[str, Any], seed: int | None, base_seed: int | None) -> Any:
    kwargs: dict[str, Any] = {}
    for key in ("n_startup_trials", "n_ei_candidates"):
        if s[key] is not None:
            kwargs[key] = int(s[key])
    for key in ("multivariate", "constant_liar"):
        if s[key] is not None:
            kwargs[key] = bool(s[key])
    if s["prior_weight"] is not None:
        kwargs["prior_weight"] = float(s["prior_weight"])
    forgetting = s["linear_forgetting"]
    if s["gamma"] is not None:
        kwargs["gamma"] = _good_count(float(s["gamma"]), int(forgetting or 25))
    if forgetting is not None:
        kwargs["weights"] = _forgetting_weights(int(forgetting))
    return samplers.TPESampler(seed=seed, **kwargs)


def _random(samplers: Any, s: Mapping[str, Any], seed: int | None, base_seed: int | None) -> Any:
    return _fallback(samplers, seed)


def _gp(samplers: Any, s: Mapping[str, Any], seed: int | None, base_seed: int | None) -> Any:
    return samplers.GPSampler(
        seed=seed,
        independent_sampler=_fallback(samplers, seed),
        n_startup_trials=int(s["n_startup_trials"]),
        deterministic_objective=bool(s["deterministic_objective"]),
        warn_independent_sampling=False,
    )


def _cmaes(samplers: Any, s: Mapping[str, Any], seed: int | None, base_seed: int | None) -> Any:
    return samplers.CmaEsSampler(
        seed=seed,
        sigma0=_float(s["sigma0"]),
        n_startup_trials=int(s["n_startup_trials"]),
        popsize=_int(s["popsize"]),
        independent_sampler=_fallback(samplers, seed),
        warn_independent_sampling=False,
    )


def _evolution(samplers: Any, s: Mapping[str, Any], seed: int | None, base_seed: int | None) -> Any:
    return samplers.NSGAIISampler(
        seed=seed,
        population_size=int(s["population_size"]),
        mutation_prob=_float(s["mutation_prob"]),
        crossover_prob=float(s["crossover_prob"]),
    )


def _nsga3(samplers: Any, s: Mapping[str, Any], seed: int | None, base_seed: int | None) -> Any:
    return samplers.NSGAIIISampler(
        seed=seed,
        population_size=int(s["population_size"]),
        mutation_prob=_float(s["mutation_prob"]),
        crossover_prob=float(s["crossover_prob"]),
    )


def _qmc(samplers: Any, s: Mapping[str, Any], seed: int | None, base_seed: int | None) -> Any:
    # A scrambled sequence must use one seed throughout: the experiment's own.
    return samplers.QMCSampler(
        qmc_type=str(s["qmc_type"]),
        scramble=bool(s["scramble"]),
        seed=base_seed,
        independent_sampler=_fallback(samplers, seed),
        warn_asynchronous_seeding=False,
        warn_independent_sampling=False,
    )


def _bruteforce(
    samplers: Any, s: Mapping[str, Any], seed: int | None, base_seed: int | None
) -> Any:
    return samplers.BruteForceSampler(seed=seed)


def _not_only_choices(params: Sequence[ParamSpec]) -> list[str]:
    if params and all(p.type == "choice" for p in params):
        return [
            "CMA-ES cannot search choice parameters, and every parameter here is a choice: "
            'choose "tpe", "random", "grid" or "evolution" instead.'
        ]
    return []


_SEED = {"seed": Setting(whole(0), doc="makes the trials' parameters reproducible")}
_SCIPY = Requirement("scipy", "SciPy")

_TPE_HINTS = {
    "n_startup_jobs": "NNI's n_startup_jobs is n_startup_trials here.",
    "tpe_args": "NNI's tpe_args are settings of their own here: gamma, prior_weight, "
    "n_ei_candidates, n_startup_trials, linear_forgetting, constant_liar.",
    "constant_liar_type": "Optuna's constant liar (constant_liar = true) counts running "
    'trials as the worst; NNI\'s "best" and "mean" have no Optuna equivalent: remove it.',
}
_GP_NOT_IN_OPTUNA = (
    "Optuna's GPSampler always maximizes log expected improvement over a Matern 5/2 kernel "
    "it fits itself: NNI's {} has no equivalent there; remove it."
)
_GP_HINTS = {
    name: _GP_NOT_IN_OPTUNA.format(name)
    for name in ("utility", "kappa", "xi", "nu", "alpha", "selection_num_warm_up")
} | {
    "selection_num_starting_points": _GP_NOT_IN_OPTUNA.format("selection_num_starting_points"),
    "cold_start_num": "NNI's cold_start_num is n_startup_trials here.",
}

ALGORITHMS: dict[str, AlgorithmEntry] = {
    entry.name: entry
    for entry in (
        AlgorithmEntry(
            "tpe",
            "TPESampler: tree-structured Parzen estimator, a good default",
            _tpe,
            _SEED
            | {
                "n_startup_trials": Setting(whole(0), doc="random trials before TPE (10)"),
                "n_ei_candidates": Setting(whole(1), doc="candidates scored per ask (24)"),
                "multivariate": Setting(boolean),
                "constant_liar": Setting(boolean, doc="count running trials as the worst"),
                "gamma": Setting(number(0, 1, above=True), doc="good group: ceil(gamma*sqrt(n))"),
                "prior_weight": Setting(number(0, above=True), doc="weight of the prior (1.0)"),
                "linear_forgetting": Setting(whole(1), doc="older trials weigh less (25)"),
            },
            hints=_TPE_HINTS,
            multi_objective=True,
        ),
        AlgorithmEntry(
            "random",
            "RandomSampler: independent uniform draws",
            _random,
            _SEED,
            multi_objective=True,
        ),
        # Grid search asks its combinations as fixed parameters (tunectl.engine.search):
        # the sampler only fills what is not fixed, which is nothing.
        AlgorithmEntry(
            "grid",
            "every combination of a finite space, in a seeded order",
            _random,
            _SEED,
            discrete=True,
            enumerate=True,
            multi_objective=True,
        ),
        AlgorithmEntry(
            "gp",
            "GPSampler: Gaussian-process Bayesian optimisation",
            _gp,
            _SEED
            | {
                "n_startup_trials": Setting(whole(0), 10),
                "deterministic_objective": Setting(boolean, False, "no noise in the objective"),
            },
            needs=(Requirement("torch", "PyTorch"), _SCIPY),
            extra="gp",
            hints=_GP_HINTS,
            multi_objective=True,
        ),
        AlgorithmEntry(
            "cmaes",
            "CmaEsSampler: CMA evolution strategy, for numeric parameters",
            _cmaes,
            _SEED
            | {
                "sigma0": Setting(number(0, above=True)),
                "n_startup_trials": Setting(whole(0), 1),
                "popsize": Setting(whole(4)),
            },
            needs=(Requirement("cmaes", "cmaes"),),
            extra="cmaes",
            check_space=_not_only_choices,
        ),
        AlgorithmEntry(
            "evolution",
            "NSGAIISampler: a genetic algorithm",
            _evolution,
            _SEED
            | {
                "population_size": Setting(whole(2), 50),
                "mutation_prob": Setting(number(0, 1)),
                "crossover_prob": Setting(number(0, 1), 0.9),
            },
            hints={"sample_size": "NNI's evolution takes population_size only."},
            multi_objective=True,
        ),
        AlgorithmEntry(
            "nsga3",
            "NSGAIIISampler: a genetic algorithm for three or more objectives",
            _nsga3,
            _SEED
            | {
                "population_size": Setting(whole(2), 50),
                "mutation_prob": Setting(number(0, 1)),
                "crossover_prob": Setting(number(0, 1), 0.9),
            },
            multi_objective=True,
        ),
        AlgorithmEntry(
            "qmc",
            "QMCSampler: a quasi-random (Sobol or Halton) sequence",
            _qmc,
            _SEED
            | {
                "qmc_type": Setting(one_of("sobol", "halton"), "sobol"),
                "scramble": Setting(boolean, False),
            },
            needs=(_SCIPY,),
            extra="qmc",
            multi_objective=True,
        ),
        # Population based training (tunectl.search.pbt): round 0 samples at random; later
        # rounds are fixed parameters the engine asks (tunectl.engine.pbt).
        AlgorithmEntry(
            "pbt",
            "population based training: members exploit and explore in rounds",
            _random,
            _SEED
            | {
                "population": Setting(whole(2), 10, "members trained side by side"),
                "perturbation_interval": Setting(whole(1), 1, "steps each trial trains"),
                "quantile": Setting(number(0, 0.5, above=True), 0.25, "bottom that exploits"),
                "resample_probability": Setting(number(0, 1), 0.25, "resample, not perturb"),
            },
            hints={
                "population_size": "NNI's population_size is population here.",
                "fraction": "NNI's fraction is quantile here.",
                "factors": "tunectl perturbs by 0.8 or 1.2, as Ray Tune does.",
                "all_checkpoint_dir": "Each trial saves in ${trial.model_dir} and reads its "
                "parent's checkpoint from ${trial.parent_model_dir}.",
            },
        ),
        AlgorithmEntry(
            "bruteforce",
            "BruteForceSampler: every combination of a finite space",
            _bruteforce,
            _SEED,
            discrete=True,
            multi_objective=True,
        ),
    )
}


def _importable(module: str) -> bool:
    if importlib.util.find_spec(module) is None:
        return False
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def missing(entry: AlgorithmEntry) -> list[Requirement]:
    """The packages `entry` needs that cannot be imported here."""
    return [r for r in entry.needs if not _importable(r.module)]


def requirement_error(entry: AlgorithmEntry) -> str | None:
    """The sentence saying what to install for `entry`, or None when nothing is missing."""
    absent = missing(entry)
    if not absent:
        return None
    names = " and ".join(r.label for r in absent)
    verb = "is" if len(absent) == 1 else "are"
    extra = entry.extra or entry.name
    return (
        f'The "{entry.name}" algorithm needs {names}, which {verb} not installed: run '
        f"`pip install 'tunectl[{extra}]'`, or choose another algorithm such as \"tpe\"."
    )
