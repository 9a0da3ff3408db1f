"""The search-related parts of an experiment: its parameters, algorithm and early stopping.

Plain data, as the configuration states it. `tunectl.config.model.Experiment` holds them;
the registries (`params`, `algorithms`, `pruners`) say which names exist and what they take.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunectl.diags import SourceRange


@dataclass(frozen=True)
class ParamSpec:
    """One `param "NAME"` block, with NNI's semantics for the NNI types.

    choice: `values`. randint: `low` <= x < `high` (integer). uniform: low..high.
    quniform: clip(round(uniform(low, high) / q) * q, low, high). loguniform: exp(uniform(log
    low, log high)). qloguniform: rounded like quniform. normal: `mu`, `sigma`. qnormal:
    round(normal / q) * q. lognormal: exp(normal(mu, sigma)). qlognormal: rounded.
    int / float (Optuna's): low..high inclusive, optional `step`, `log`.
    `when`: the parameter exists only when every named parameter has the given value.
    """

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    q: float | None = None
    mu: float | None = None
    sigma: float | None = None
    values: tuple[Any, ...] = ()
    step: float | None = None
    log: bool = False
    when: tuple[tuple[str, Any], ...] = ()
    range: SourceRange | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for key in ("low", "high", "q", "mu", "sigma", "step"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.values:
            out["values"] = list(self.values)
        if self.log:
            out["log"] = True
        if self.when:
            out["when"] = dict(self.when)
        return out


@dataclass(frozen=True)
class Algorithm:
    """An `algorithm "NAME" { ... }` block: a name of `algorithms.ALGORITHMS` and its settings."""

    name: str
    settings: tuple[tuple[str, Any], ...] = ()

    @property
    def seed(self) -> int | None:
        return dict(self.settings).get("seed")


@dataclass(frozen=True)
class EarlyStopping:
    """An `early_stopping "NAME" { ... }` block: a name of `pruners.PRUNERS` and its settings."""

    name: str = "none"
    settings: tuple[tuple[str, Any], ...] = ()
