"""What loading a configuration costs as it grows (issue #10 item 12), in one run.

Part 1, chained locals: `c0 = 1`, `cI = local.c(I-1) + 1`, written last-to-first (so no
local can be evaluated before the ones below it). For N in 250, 500, 1000, 2000, 4000 it
times, in this process:

- `load_config` of the whole directory (HCL parse cache off: parsing included);
- resolving the locals with tunectl's `_locals` (one topological pass);
- the baseline: the previous resolution (a fixed-point loop, copied below verbatim) on the
  same parsed blocks, up to --baseline-max locals (it is cubic in this order).

Part 2, file size: `load_config` of one file of K KiB of plain attributes (parse-bound),
and of a 10 MiB file, which is refused before parsing.

    python bench/config_load.py [--sizes 250,500,1000,2000,4000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ["TUNECTL_CACHE_DIR"] = "off"  # measure parsing, not the cache

from tunectl.config.load import _locals, load_config  # noqa: E402
from tunectl.diags import DiagnosticError, Diagnostics, error  # noqa: E402
from tunectl.hcl.expr import Scope  # noqa: E402
from tunectl.hcl.expr import evaluate as _evaluate  # noqa: E402
from tunectl.hcl.syntax import Block, parse  # noqa: E402
from tunectl.hcl.traversals import references  # noqa: E402


def baseline_locals(
    blocks: Sequence[Block], values: Mapping[str, Any], diags: Diagnostics
) -> dict[str, Any]:
    """tunectl's locals resolution before this change (commit e1febf6), for comparison."""
    pending = {}
    for block in blocks:
        for name, attr in block.body.attributes.items():
            pending[name] = attr
    out: dict[str, Any] = {}
    while pending:
        progressed = False
        for name, attr in list(pending.items()):
            deps = {
                path[1] for path, _ in references(attr.expr) if path[0] == "local" and len(path) > 1
            }
            if deps & set(pending) - {name} or name in deps:
                continue
            try:
                out[name] = _evaluate(attr.expr, Scope(variables=values, locals=out))
            except DiagnosticError as exc:
                diags.extend(exc.diags)
            del pending[name]
            progressed = True
        if not progressed:
            for name, attr in pending.items():
                diags.append(error("Cycle in local values", name, attr.range))
            break
    return out


def chain(n: int) -> str:
    lines = [f"  c{i} = local.c{i - 1} + 1\n" for i in range(n - 1, 0, -1)]
    return "locals {\n" + "".join(lines) + "  c0 = 1\n}\n"


def flat(kib: int) -> str:
    lines, size, i = [], 0, 0
    while size < kib * 1024:
        line = f'  v{i} = "value number {i} of a long list of plain settings"\n'
        lines.append(line)
        size += len(line)
        i += 1
    return "locals {\n" + "".join(lines) + "}\n"


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250,500,1000,2000,4000")
    parser.add_argument("--baseline-max", type=int, default=1000)
    parser.add_argument("--kib", default="125,250,500,1000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print("chained locals (written last-to-first); best of", args.repeat)
    print(f"{'N':>6} {'load_config':>12} {'per local':>10} {'_locals':>9} {'baseline':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(s) for s in args.sizes.split(",")]:
            directory = Path(tmp) / f"chain{n}"
            directory.mkdir()
            text = chain(n)
            (directory / "main.hcl").write_text(text)
            config = load_config(directory)
            assert config.locals[f"c{n - 1}"] == n, "wrong value"
            load = best_of(args.repeat, lambda d=directory: load_config(d))
            blocks = parse(text, "main.hcl").blocks_of("locals")
            new = best_of(args.repeat, lambda b=blocks: _locals(b, {}, frozenset(), Diagnostics()))
            if n <= args.baseline_max:
                old = best_of(1, lambda b=blocks: baseline_locals(b, {}, Diagnostics()))
                old_text = f"{old:9.3f}s"
            else:
                old_text = "   (skip)"
            print(
                f"{n:>6} {load:11.3f}s {load / n * 1e3:8.3f}ms {new:8.4f}s {old_text}",
                flush=True,
            )

        print("\nfile size (plain attributes); best of", args.repeat)
        print(f"{'KiB':>6} {'load_config':>12} {'per MiB':>9}")
        for kib in [int(s) for s in args.kib.split(",")]:
            directory = Path(tmp) / f"flat{kib}"
            directory.mkdir()
            (directory / "main.hcl").write_text(flat(kib))
            load = best_of(args.repeat, lambda d=directory: load_config(d))
            print(f"{kib:>6} {load:11.3f}s {load / kib * 1024:8.2f}s", flush=True)

        directory = Path(tmp) / "huge"
        directory.mkdir()
        (directory / "main.hcl").write_text(flat(10 * 1024))

        def refused() -> None:
            try:
                load_config(directory)
            except DiagnosticError as exc:
                assert exc.diags[0].summary == "Configuration file too large"
            else:
                raise AssertionError("a 10 MiB file was accepted")

        print(f"10 MiB file: refused with a diagnostic in {best_of(args.repeat, refused):.4f}s")


if __name__ == "__main__":
    main()
