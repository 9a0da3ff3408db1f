"""`warm_start` in an experiment: its decoding, the check of its sources across the
configuration, and the order it puts experiments in.

`warm_start = true` carries a replaced generation's fitting trials into the new one;
`warm_start { from = experiment.NAME, top = N }` seeds a new generation with another
experiment's best trials, after that one has finished (`tunectl.operations.warm` does
both; docs/language.md "Warm starts").
"""

from __future__ import annotations

from collections.abc import Mapping

from tunectl.config.model import Experiment, WarmStart
from tunectl.config.schema import Reader
from tunectl.diags import Diagnostics, did_you_mean, error
from tunectl.hcl.syntax import Block, Traversal


def decode_warm_start(block: Block, reader: Reader, diags: Diagnostics) -> WarmStart | None:
    """`warm_start = true`, or `warm_start { from = experiment.NAME, top = N }` (whether
    NAME exists, and cycles, are `check_warm_start_sources`' to say: it sees every
    experiment)."""
    attr = block.body.attributes.get("warm_start")
    blocks = block.body.blocks_of("warm_start")
    if attr is not None and blocks:
        reader.fail(
            attr,
            "Conflicting warm_start",
            "Set warm_start = true (carry this experiment's own trials across a replacement) "
            "or a warm_start { from = experiment.NAME } block (seed it from another "
            "experiment), not both.",
        )
        return None
    if attr is not None:
        carry = reader.get("warm_start", "bool", False)
        return WarmStart(carry=True, range=attr.range) if carry else None
    if not blocks:
        return None
    wb = blocks[0]
    wr = Reader(wb.body, reader.scope, reader.context, diags)
    source_attr = wb.body.attributes.get("from")
    if source_attr is None:
        return None  # the schema check says it is missing
    expr = source_attr.expr
    if not (
        isinstance(expr, Traversal)
        and expr.root == "experiment"
        and len(expr.steps) == 1
        and isinstance(expr.steps[0], str)
    ):
        wr.fail(
            source_attr,
            "Invalid warm_start source",
            "from names another experiment of this configuration, as in from = experiment.coarse.",
        )
        return None
    top = wr.get("top", "int")
    if top is not None and top < 1:
        wr.fail(
            wb.body.attributes.get("top"), "Invalid value", f"top must be at least 1, got {top}."
        )
        return None
    return WarmStart(source=expr.steps[0], top=top, range=source_attr.range)


def check_warm_start_sources(
    experiments: Mapping[str, Experiment], declared: set[str], diags: Diagnostics
) -> None:
    """Each `warm_start { from = experiment.NAME }` names an experiment `declared` in the
    configuration, and no experiment depends on itself through them (a cycle could never
    start: each would wait for the other to finish); a cycle is reported once, at the
    first of its experiments by name."""
    for exp in experiments.values():
        ws = exp.warm_start
        if ws is None or ws.source is None:
            continue
        context = f'in experiment "{exp.name}"'
        if ws.source not in declared:
            diags.append(
                error(
                    "Reference to undeclared experiment",
                    f'warm_start: an experiment named "{ws.source}" has not been declared in '
                    f"this configuration.{did_you_mean(ws.source, declared)}",
                    ws.range,
                    context,
                )
            )
            continue
        path = [exp.name]
        current = ws.source
        while current in experiments and current not in path:
            path.append(current)
            nxt = experiments[current].warm_start
            current = nxt.source if nxt is not None and nxt.source else ""
        if current == exp.name and exp.name == min(path):
            cycle = " -> ".join(f"experiment.{n}" for n in [*path, exp.name])
            diags.append(
                error(
                    "Cycle in warm_start",
                    f"{cycle}: each experiment would wait for the other to finish before it "
                    "starts. Remove one of the warm_start blocks.",
                    ws.range,
                    context,
                )
            )


def warm_start_order(experiments: Mapping[str, Experiment]) -> list[list[str]]:
    """The names of `experiments` in waves: each experiment after the experiment it is
    seeded from (`warm_start { from }`) when that one is among them; names sorted within a
    wave. Sources are acyclic (`check_warm_start_sources`)."""
    waves: list[list[str]] = []
    placed: set[str] = set()
    left = set(experiments)
    while left:
        wave = sorted(
            n
            for n in left
            if (src := _source(experiments[n])) is None or src not in left or src in placed
        )
        if not wave:  # a cycle (refused at load): run the rest together
            wave = sorted(left)
        waves.append(wave)
        placed.update(wave)
        left.difference_update(wave)
    return waves


def _source(exp: Experiment) -> str | None:
    return exp.warm_start.source if exp.warm_start is not None else None
