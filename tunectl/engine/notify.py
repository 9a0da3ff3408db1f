"""Delivering an experiment's `notify "webhook"` messages without ever blocking apply.

The runner hands a message to `Notifier.send`, which only puts it on a queue; one daemon
thread per experiment posts the queue in order, each message under the shared retry
policy (`tunectl.retry`: 5xx, 429, timeouts and dropped connections are retried with
backoff; other answers are not). A slow or dead receiver therefore delays only its own
messages. When apply leaves the experiment, `close` gives the thread a short grace
(`GRACE` seconds) to finish, then reports on the main thread what could not be
delivered; apply never waits longer than that for a receiver.

Messages name the URL's host only: its path and query hold the robot's token.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from tunectl.config.model import Experiment
from tunectl.config.notify import Notify
from tunectl.engine.pareto import pareto_front
from tunectl.retry import retry_call
from tunectl.states import TrialRecord
from tunectl.status import TrialStatus

Event = Callable[[str, str, str], None]  # (kind, experiment, message)

GRACE = 3.0  # seconds apply waits at its end for messages still being delivered
TIMEOUT = 10.0  # seconds per request
ATTEMPTS = 5


class DeliveryError(Exception):
    """A post that failed; `transient` when trying again may help."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def payload(notify: Notify, experiment: str, kind: str, text: str, details: dict) -> dict:
    """The body posted for one message, in the block's `format`."""
    line = f"tunectl: experiment {experiment}: {text}"
    if notify.keyword and notify.keyword not in line:
        line = f"{notify.keyword} {line}"
    if notify.format == "dingtalk":
        return {"msgtype": "text", "text": {"content": line}}
    if notify.format == "slack":
        return {"text": line}
    return {"experiment": experiment, "event": kind, "text": text, **details}


def post(url: str, body: dict, timeout: float = TIMEOUT) -> None:
    """POST `body` as JSON; raises `DeliveryError` (never with the URL in its text)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "tunectl"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read(1 << 16)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}", exc.code >= 500 or exc.code in (408, 429)) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(type(reason).__name__ + ": " + str(reason), True) from None
    except Exception as exc:  # http.client.InvalidURL and the like quote the URL: name only
        raise DeliveryError(type(exc).__name__, False) from None


class Notifier:
    """One experiment's messages: `send` never blocks; `close` waits at most `GRACE`."""

    def __init__(
        self,
        notify: Notify | None,
        experiment: str,
        sender: Callable[[str, dict], None] = post,
    ) -> None:
        self.notify = notify
        self.experiment = experiment
        self.sender = sender
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failed: list[str] = []  # why messages were dropped, for the main thread
        self._pending = 0

    def wants(self, kind: str) -> bool:
        return self.notify is not None and kind in self.notify.on

    def send(self, kind: str, text: str, **details: Any) -> None:
        """Queue a message for the `on` event `kind` (ignored when not listed)."""
        if self.notify is None or not self.wants(kind):
            return
        body = payload(self.notify, self.experiment, kind, text, details)
        with self._lock:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"notify-{self.experiment}", daemon=True
                )
                self._thread.start()
        self._queue.put(body)

    def _run(self) -> None:
        assert self.notify is not None
        url = self.notify.url
        while True:
            body = self._queue.get()
            try:
                self._deliver(url, body)
            except DeliveryError as exc:
                with self._lock:
                    self._failed.append(str(exc))
            except Exception as exc:  # a receiver's fault must never end apply
                with self._lock:  # its name only: a URL's text may hold the token
                    self._failed.append(type(exc).__name__)
            with self._lock:
                self._pending -= 1

    def _deliver(self, url: str, body: dict) -> None:
        def once() -> None:
            self.sender(url, body)

        retry_call(
            once,
            lambda e: isinstance(e, DeliveryError) and e.transient,
            attempts=ATTEMPTS,
            within=60.0,
            multiplier=0.25,
            max_wait=4.0,
        )

    def close(self, event: Event, grace: float = GRACE) -> None:
        """Give queued messages up to `grace` seconds, then say what was not delivered."""
        if self._thread is None or self.notify is None:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    break
            time.sleep(0.02)
        with self._lock:
            failed, self._failed = self._failed, []
            pending = self._pending
        host = self.notify.host
        if failed:
            event(
                "warn",
                self.experiment,
                f"could not deliver {len(failed)} notification(s) to {host}: {failed[-1]}",
            )
        if pending:
            event(
                "warn",
                self.experiment,
                f"{pending} notification(s) to {host} still undelivered when apply ended "
                f"(waited {grace:g}s); they are dropped",
            )


def _best(ended: Sequence[TrialRecord], direction: str) -> TrialRecord | None:
    """The best complete trial, by the rule of `search.stopping.compute_progress`: NaN
    never best, the lowest number winning a tie."""
    scored = [
        t
        for t in ended
        if t.status == TrialStatus.COMPLETE and t.value is not None and not math.isnan(t.value)
    ]
    if not scored:
        return None
    sign = -1.0 if direction == "maximize" else 1.0
    return min(scored, key=lambda t: (sign * (t.value or 0.0), t.number))


def notify(
    notifier: Notifier,
    exp: Experiment,
    ended: Sequence[TrialRecord],
    trial: TrialRecord,
    message: str,
) -> None:
    """The `best` and `failed` messages of a trial that just ended (`ended`: the others)."""
    number = trial.number
    params = " ".join(f"{k}={v}" for k, v in trial.params.items())
    if trial.status == TrialStatus.FAILED:
        notifier.send("failed", f"trial {number} failed: {message}", trial=number)
        return
    if not notifier.wants("best") or trial.status != TrialStatus.COMPLETE:
        return
    if trial.value is None or math.isnan(trial.value):
        return
    before = _best(ended, exp.objective.direction)
    if before is not None and before.value is not None:
        better = (
            trial.value > before.value
            if exp.objective.direction == "maximize"
            else trial.value < before.value
        )
        if not better:
            return
    notifier.send(
        "best",
        f"new best: trial {number}, {exp.objective.direction} objective {trial.value:g} ({params})",
        trial=number,
        value=trial.value,
        params=trial.params,
    )


def notify_finished(
    notifier: Notifier, exp: Experiment, ended: Sequence[TrialRecord], status: str, reason: str
) -> None:
    best = _best(ended, exp.objective.direction)
    text = f"{status}: {reason}; {len(ended)} trial(s)"
    details: dict[str, Any] = {"status": status, "reason": reason, "trials": len(ended)}
    if best is not None:
        text += f", best trial {best.number}: {best.value:g}"
        details.update(best_trial=best.number, best_value=best.value, best_params=best.params)
    if exp.objective.multi:  # no best: the Pareto front
        points = {t.number: t.objective_values for t in ended if t.objective_values}
        front = pareto_front(points, exp.objective.directions)
        text += f", pareto front: trials {', '.join(map(str, front))}" if front else ""
        details.update(pareto=front)
    notifier.send("finished", text, **details)
