"""The shared retry policy: what it retries, and its bounds on tries and time."""

from __future__ import annotations

import pytest

from tunectl import retry


class Flaky(Exception):
    pass


class Broken(Exception):
    pass


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(retry, "sleep", waits.append)
    return waits


def transient(exc: BaseException) -> bool:
    return isinstance(exc, Flaky)


def failing(exc: Exception, times: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "ok"

    return calls, fn


def test_transient_faults_are_retried_until_success(no_waits: list[float]) -> None:
    calls, fn = failing(Flaky(), 3)
    assert retry.retry_call(fn, transient) == "ok"  # type: ignore[arg-type]
    assert len(calls) == 4
    # Exponential backoff with jitter: each wait at least the doubling base, under the cap.
    assert len(no_waits) == 3
    for n, wait in enumerate(no_waits):
        assert retry.MULTIPLIER * 2**n <= wait <= min(retry.MAX_WAIT, retry.MULTIPLIER * 2**n + 1)


def test_other_errors_are_raised_at_once() -> None:
    calls, fn = failing(Broken(), 1)
    with pytest.raises(Broken):
        retry.retry_call(fn, transient)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_tries_are_bounded_and_the_last_error_is_raised() -> None:
    calls, fn = failing(Flaky(), 1_000)
    with pytest.raises(Flaky):
        retry.retry_call(fn, transient, attempts=4)  # type: ignore[arg-type]
    assert len(calls) == 4


def test_total_time_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Waits that take real time: a 0.2 s window allows a few tries, not 1000.
    monkeypatch.setattr(retry, "sleep", lambda seconds: None)
    calls, fn = failing(Flaky(), 1_000)

    def slow() -> str:
        import time

        time.sleep(0.05)
        return fn()  # type: ignore[operator, no-any-return]

    with pytest.raises(Flaky):
        retry.retry_call(slow, transient, attempts=None, within=0.2)
    assert 1 <= len(calls) <= 5


def test_a_policy_needs_a_bound() -> None:
    with pytest.raises(ValueError):
        retry.policy(transient, attempts=None, within=None)
