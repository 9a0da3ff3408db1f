"""The Pareto front of trials with several objectives, by Optuna's rule.

A trial dominates another when it is no worse in every objective and better in one (each
objective toward its own direction); the front is the complete trials no other complete
trial dominates. Trials with equal values do not dominate each other, so both are on the
front when one is (Optuna's `Study.best_trials` keeps both too). Pure: no Optuna import,
so `trials`, outputs and the apply loop compute the front without building a study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether values `a` dominate values `b`."""
    better = False
    for x, y, direction in zip(a, b, directions, strict=True):
        if direction == "minimize":
            x, y = -x, -y
        if x < y:
            return False
        if x > y:
            better = True
    return better


def pareto_front(points: Mapping[int, Sequence[float]], directions: Sequence[str]) -> list[int]:
    """The numbers of the trials in `points` (number -> values) that no other dominates,
    in number order.

    Points are visited best first in lexicographic order, so whatever dominates a point is
    visited before it, and a point is compared with the front found so far only: linear in
    the trials for a small front.
    """
    signs = [1.0 if d == "maximize" else -1.0 for d in directions]
    oriented = {n: tuple(s * v for s, v in zip(signs, vs, strict=True)) for n, vs in points.items()}
    front: list[int] = []
    for n in sorted(oriented, key=lambda m: (tuple(-v for v in oriented[m]), m)):
        mine = oriented[n]
        if not any(_above(oriented[f], mine) for f in front):
            front.append(n)
    return sorted(front)


def _above(a: Sequence[float], b: Sequence[float]) -> bool:
    """`a` dominates `b`, both oriented so that larger is better."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def ranked(points: Mapping[int, Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Trial numbers front by front (the Pareto front, then the front of the rest, ...),
    each front ordered by its first objective, best first, then by number: the order in
    which `keep = N` retains models with several objectives."""
    left = dict(points)
    out: list[int] = []
    sign = -1.0 if directions and directions[0] == "maximize" else 1.0
    while left:
        front = pareto_front(left, directions)
        out += sorted(front, key=lambda n: (sign * left[n][0], n))
        for n in front:
            del left[n]
    return out


def kept_on_front(
    keep: object, points: Mapping[int, Sequence[float]], directions: Sequence[str]
) -> set[int] | None:
    """The trials whose models model storage's `keep` retains with several objectives:
    `"best"` keeps the Pareto front, a number N the first N of `ranked`; None (keep
    everything) for `"all"`."""
    if keep in (None, "all"):
        return None
    if keep == "best":
        return set(pareto_front(points, directions))
    return set(ranked(points, directions)[: int(str(keep))])
