"""Objective values across metric sources, and the notifier's queue, retries and grace."""

from __future__ import annotations

import threading
import time

import pytest

from tunectl.config.model import Objective
from tunectl.config.notify import Notify
from tunectl.engine.notify import DeliveryError, Notifier, payload
from tunectl.engine.objective import combine, metric_values


def series(**sources: list[tuple[int | None, float]]) -> dict:
    return {f"{name}/acc": points for name, points in sources.items()}


FOLDS = series(
    fold1=[(1, 0.5), (2, 0.7), (3, 0.6)],
    fold2=[(1, 0.8), (2, 0.9)],
    fold3=[(1, 0.4), (None, 0.45)],
)


@pytest.mark.parametrize(
    ("reduce", "sources", "value"),
    [
        ("final", "final", 0.45),
        ("final", "best", 0.9),
        ("final", "avg", (0.6 + 0.9 + 0.45) / 3),
        ("best", "avg", (0.7 + 0.9 + 0.45) / 3),
        ("avg", "final", (0.4 + 0.45) / 2),
    ],
)
def test_each_source_then_across(reduce: str, sources: str, value: float) -> None:
    objective = Objective("maximize", "acc", reduce=reduce, sources_reduce=sources)
    got, curve = combine(FOLDS, objective)
    assert got == pytest.approx(value)
    assert curve == [(1, 0.5), (2, 0.7), (3, 0.6)]  # the first source's


def test_minimize_picks_the_lowest_source() -> None:
    objective = Objective("minimize", "acc", sources_reduce="best")
    assert combine(FOLDS, objective)[0] == pytest.approx(0.45)


def test_values_per_source_and_across() -> None:
    objective = Objective("maximize", "acc", sources_reduce="avg")
    values = metric_values(FOLDS, objective)
    assert values["fold2/acc"] == 0.9 and values["fold3/acc"] == 0.45
    assert values["acc"] == pytest.approx((0.6 + 0.9 + 0.45) / 3)


def test_weighted_metrics_per_source() -> None:
    objective = Objective("maximize", metrics=(("acc", 1.0), ("loss", -1.0)), sources_reduce="avg")
    data = {"a/acc": [(1, 0.9)], "a/loss": [(1, 0.2)], "b/acc": [(1, 0.7)], "b/loss": [(1, 0.1)]}
    assert combine(data, objective)[0] == pytest.approx((0.7 + 0.6) / 2)
    # A source whose metrics never met at a step leaves the trial without a value.
    data["c/acc"] = [(1, 0.5)]
    data["c/loss"] = [(2, 0.5)]
    assert combine(data, Objective(**{**objective.__dict__, "reduce": "best"}))[0] is None


def test_without_sources_reduce_nothing_changes() -> None:
    objective = Objective("maximize", "acc")
    assert combine({"acc": [(1, 0.5), (2, 0.6)]}, objective)[0] == 0.6


HOOK = Notify("webhook", "https://hooks.example.com/send?token=secret", format="json")


def test_send_returns_at_once_and_retries_transient_faults(monkeypatch) -> None:
    monkeypatch.setattr("tunectl.retry.sleep", lambda s: None)
    calls: list[dict] = []
    release = threading.Event()

    def sender(url: str, body: dict) -> None:
        release.wait(5)
        calls.append(body)
        if len(calls) < 3:
            raise DeliveryError("HTTP 503", transient=True)

    notifier = Notifier(HOOK, "demo", sender)
    started = time.monotonic()
    notifier.send("best", "new best", trial=3)
    assert time.monotonic() - started < 0.5  # the receiver is still blocked
    release.set()
    said: list[str] = []
    notifier.close(lambda kind, exp, text: said.append(text), grace=5)
    assert len(calls) == 3 and calls[-1]["trial"] == 3
    assert said == []


def test_a_permanent_fault_is_reported_without_the_url() -> None:
    def sender(url: str, body: dict) -> None:
        raise DeliveryError("HTTP 404", transient=False)

    notifier = Notifier(HOOK, "demo", sender)
    notifier.send("failed", "trial 1 failed")
    said: list[str] = []
    notifier.close(lambda kind, exp, text: said.append(text), grace=5)
    assert said == ["could not deliver 1 notification(s) to hooks.example.com: HTTP 404"]
    assert "secret" not in said[0]


def test_events_not_listed_are_not_sent() -> None:
    sent: list[dict] = []
    notifier = Notifier(
        Notify("webhook", HOOK.url, on=("finished",)), "demo", lambda u, b: sent.append(b)
    )
    notifier.send("best", "x")
    notifier.close(lambda *a: None)
    assert sent == []


def test_formats() -> None:
    ding = Notify("webhook", HOOK.url, format="dingtalk", keyword="HPO")
    assert payload(ding, "e", "best", "new best", {}) == {
        "msgtype": "text",
        "text": {"content": "HPO tunectl: experiment e: new best"},
    }
    slack = Notify("webhook", HOOK.url, format="slack")
    assert payload(slack, "e", "best", "new best", {"trial": 1}) == {
        "text": "tunectl: experiment e: new best"
    }
