"""What apply shows while it runs: a live table on a terminal, plain lines otherwise.

Each event (trial started, complete, pruned, failed, experiment finished) is one line, so
logs of CI and cron runs read well; on a terminal a rich live table above the lines shows
each experiment's progress (done/total, running, pruned, failed, best, elapsed, ETA).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tunectl.addrs import Address


class ApplyView:
    def __init__(self, color: bool) -> None:
        self.color = color
        self.live: Any = None
        self.runners: Sequence[Any] = []
        self.started = time.time()

    def say(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(text, markup=False, highlight=False)
        else:
            print(text, flush=True)

    def event(self, kind: str, experiment: str, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.say(f"{stamp} {Address(experiment)}: {message}")
        if self.live is not None:
            self.live.update(self._table())

    def start(self, runners: Sequence[Any]) -> None:
        self.runners = runners
        self.started = time.time()
        if self.color and sys.stdout.isatty():
            from rich.live import Live

            self.live = Live(self._table(), refresh_per_second=4, transient=True)
            self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

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
            elapsed = time.time() - self.started
            total = runner.exp.max_trials
            eta = "-"
            if p.done and not runner.finished:
                eta = _duration(elapsed / max(p.done, 1) * max(total - p.done, 0))
            best = "-" if p.best_value is None else f"{p.best_value:.6g}"
            table.add_row(
                runner.exp.name,
                f"{p.done}/{total}",
                str(p.running),
                str(p.pruned),
                str(p.failed),
                best,
                _duration(elapsed),
                "done" if runner.finished else eta,
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
            if best["value"] is not None:
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
