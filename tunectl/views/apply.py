"""What apply shows while it runs: a live table on a terminal, plain lines otherwise.

Each event (trial started, complete, pruned, failed, experiment finished) is one line, so
logs of CI and cron runs read well; on a terminal a rich live table above the lines shows
each experiment's progress (done/total, running, pruned, failed, best, elapsed, ETA).

Without the live table (stdout is not a terminal, or colour is off), each trial event is
prefixed with its experiment's `[done/total]`, and every `progress_interval` seconds a
status line per running experiment says where it stands, so a CI log never goes silent
during long trials:

    12:04:10 experiment.mnist: [17/40] 3 running, best 0.981 (trial 12), 1h02m elapsed, ETA 40m

A failed trial's line is followed by the last lines of its output and the command that
prints all of it, in either mode.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tunectl.addrs import Address

OUTPUT_SHOWN = 5  # lines of a failed trial's output under its event line
LINE_WIDTH = 200  # characters of each such line


class ApplyView:
    def __init__(self, color: bool, progress_interval: float = 60.0) -> None:
        """`progress_interval`: seconds between status lines without the live table (0:
        none)."""
        self.color = color
        self.progress_interval = progress_interval
        self.live: Any = None
        self.runners: Sequence[Any] = []
        self.last_status = time.monotonic()

    def say(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(text, markup=False, highlight=False)
        else:
            print(text, flush=True)

    def event(
        self,
        kind: str,
        experiment: str,
        message: str,
        trial: int | None = None,
        output: Sequence[str] = (),
    ) -> None:
        stamp = time.strftime("%H:%M:%S")
        runner = self._runner(experiment)
        prefix = ""
        if self.live is None and runner is not None:
            prefix = f"[{runner.progress().done}/{_total(runner)}] "
        lines = [f"{stamp} {Address(experiment)}: {prefix}{message}"]
        if kind == "failed" and trial is not None:
            lines += [f"    | {_clip(line)}" for line in output[-OUTPUT_SHOWN:]]
            lines.append(f"    whole output: tunectl logs {Address(experiment)} --trial {trial}")
        self.say("\n".join(lines))
        if self.live is not None:
            self.live.update(self._table())

    def start(self, runners: Sequence[Any]) -> None:
        self.runners = runners
        self.last_status = time.monotonic()
        if self.color and sys.stdout.isatty():
            from rich.live import Live

            self.live = Live(self._table(), refresh_per_second=4, transient=True)
            self.live.start()

    def tick(self) -> None:
        """A pass of the loop ended: print the status lines when they are due."""
        if self.live is not None or self.progress_interval <= 0:
            return
        now = time.monotonic()
        if now - self.last_status < self.progress_interval:
            return
        self.last_status = now
        stamp = time.strftime("%H:%M:%S")
        for runner in self.runners:
            if not runner.finished:
                self.say(f"{stamp} {Address(runner.exp.name)}: {status_line(runner)}")

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _runner(self, experiment: str) -> Any:
        return next((r for r in self.runners if r.exp.name == experiment), None)

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title="tunectl apply", expand=False)
        for column in (
            "experiment",
            "done",
            "running",
            "pruned",
            "failed",
            "best",
            "elapsed",
            "ETA",
        ):
            table.add_column(column)
        for runner in self.runners:
            p = runner.progress()
            done, total = p.done, _total(runner)
            best = "-" if p.best_value is None else f"{p.best_value:.6g}"
            eta = _eta(runner, p)
            table.add_row(
                runner.exp.name,
                f"{done}/{total}",
                str(p.running),
                str(p.pruned),
                str(p.failed),
                best,
                _duration(p.elapsed),
                "done" if runner.finished else "-" if eta is None else _rough(eta),
            )
        return table

    def summary(self, exported: Mapping[str, Any], title: str = "Apply complete.") -> None:
        print(f"\n{title}\n")
        for name, data in sorted(exported.items()):
            trials = data["trials"]
            line = (
                f"{Address(name)}: {data['status']}"
                f" — {trials['complete']} complete, {trials['pruned']} pruned, "
                f"{trials['failed']} failed, {trials['running']} running"
            )
            best = data["best"]
            if best is None:  # several objectives: the Pareto front instead of a best
                numbers = ", ".join(str(p["trial"]) for p in data["pareto"])
                line += f"\n  pareto front: trials {numbers}" if numbers else ""
            elif best["value"] is not None:
                params = ", ".join(f"{k}={_short(v)}" for k, v in best["params"].items())
                line += f"\n  best: trial {best['number']} = {best['value']:.6g} ({params})"
                if best["model_uri"]:
                    line += f"\n  model: {best['model_uri']}"
            print(line)


    def finished(
        self,
        ran: bool,
        failed: bool,
        exported: Mapping[str, Any],
        outputs: Mapping[str, tuple[Any, bool]],
    ) -> None:
        """How apply ends: each experiment's summary when trials ran (else that nothing
        changed), then the outputs."""
        if ran:
            self.summary(exported, "Apply failed." if failed else "Apply complete.")
        else:
            _echo("\nNo changes. Your experiments match the configuration.")
        if outputs:
            from tunectl.views.outputs import render_outputs

            _echo("\nOutputs:\n")
            _echo(render_outputs(outputs))


def status_line(runner: Any) -> str:
    """`[17/40] 3 running, best 0.981 (trial 12), 1h02m elapsed, ETA 40m` for a runner
    (`tunectl.engine.runner.Runner`): trials ended of the total, then what is known."""
    p = runner.progress()
    parts = [f"[{p.done}/{_total(runner)}] {p.running} running"]
    if p.pruned:
        parts.append(f"{p.pruned} pruned")
    if p.failed:
        parts.append(f"{p.failed} failed")
    best = _best(runner)
    if best is not None:
        parts.append(f"best {best[0]:.6g} (trial {best[1]})")
    parts.append(f"{_duration(p.elapsed)} elapsed")
    eta = _eta(runner, p)
    if eta is not None:
        parts.append(f"ETA {_rough(eta)}")
    return ", ".join(parts)


def _total(runner: Any) -> int:
    """The most trials the experiment runs: max_trials, or a smaller finite search space
    (grid)."""
    total = int(runner.exp.max_trials)
    if runner.space_size is not None:
        total = min(total, runner.space_size)
    return total


def _eta(runner: Any, p: Any) -> float | None:
    """Seconds left at the pace so far (the experiment's clock per ended trial, from its
    progress `p`), within what max_duration leaves; None before a trial has ended."""
    done, total = p.done, _total(runner)
    if not done or runner.finished:
        return None
    eta = p.elapsed / done * max(total - done, 0)
    if runner.exp.max_duration is not None:
        eta = min(eta, max(runner.exp.max_duration - p.elapsed, 0.0))
    return eta


def _best(runner: Any) -> tuple[float, int] | None:
    """(value, number) of the best complete trial, the lowest number winning a tie (as
    `tunectl.search.stopping.compute_progress` picks it)."""
    maximize = runner.exp.objective.direction == "maximize"
    best: tuple[float, int] | None = None
    for t in runner.ended:
        if str(getattr(t.status, "value", t.status)) != "complete" or t.value is None:
            continue
        if t.value != t.value:  # NaN
            continue
        if best is None or (t.value > best[0] if maximize else t.value < best[0]):
            best = (t.value, t.number)
    return best


def _clip(line: str) -> str:
    return line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 1] + "…"


def _rough(seconds: float) -> str:
    """A duration to the minute past a minute ("40m", "1h02m"): for estimates."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _echo(text: str) -> None:
    print(text, flush=True)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def destroyed_text(count: int) -> str:
    """The line destroy ends with."""
    noun = "experiment" if count == 1 else "experiments"
    return f"\nDestroy complete! {count} {noun} destroyed."
