"""One retry policy for transient API faults, shared by object storage and providers.

A fault is retried in one place only: by the code that makes the API call (`tunectl.s3`,
a provider's call wrapper), with this policy. Layers above never retry a call again: the
apply loop takes a failed submission up on a later pass, with its own bookkeeping, and never
sleeps for it. Retries stacked in layers multiply (three layers of six tries are over a
hundred calls for one request); one layer keeps the count and the time bounded.

The policy: exponential backoff with jitter (`multiplier * 2**n` seconds plus up to one
second at random, at most `max_wait` per wait), a bounded number of tries (`attempts`) and a
bounded total time (`within` seconds from the first try; checked after each failure, so at
least one try is made). Only what the caller's `transient(exc)` predicate accepts is
retried (throttling, 5xx, timeouts, dropped connections); anything else is raised at once,
as is the last transient error when the bounds are reached.

For a provider (built in or not), wrap each SDK call:

    from tunectl.retry import retry_call

    def _transient(exc: BaseException) -> bool:
        return isinstance(exc, ThrottlingError | ServerError | ConnectionError)

    job = retry_call(lambda: client.create_job(request), _transient, max_wait=5.0)

and switch the SDK's own retries off, so there is one policy, not two multiplied. Then
translate the error that comes out into `ProviderError` (permanent when not transient).

Tests replace `sleep` (this module's attribute) to skip the waits.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)
from tenacity.stop import stop_base

T = TypeVar("T")

Transient = Callable[[BaseException], bool]

ATTEMPTS = 6  # tries of one call, the first included
WITHIN = 60.0  # seconds, from the first try, after which no further try starts
MULTIPLIER = 0.1  # the first wait, in seconds (before jitter)
MAX_WAIT = 8.0  # the longest single wait, in seconds
JITTER = 1.0  # at most this many seconds added to each wait, at random

sleep: Callable[[float], None] = time.sleep


def _sleep(seconds: float) -> None:
    sleep(seconds)  # looked up at each wait, so a test's replacement applies


def _backoff(multiplier: float, max_wait: float) -> Callable[[RetryCallState], float]:
    """tenacity's `wait_exponential_jitter` formula, written out: its `multiplier` argument
    is recent (tenacity 9.x), and older releases spell it differently."""

    def wait(state: RetryCallState) -> float:
        exponential = multiplier * 2 ** (state.attempt_number - 1)
        return min(max_wait, exponential + random.uniform(0, JITTER))

    return wait


def policy(
    transient: Transient,
    *,
    attempts: int | None = ATTEMPTS,
    within: float | None = WITHIN,
    multiplier: float = MULTIPLIER,
    max_wait: float = MAX_WAIT,
) -> Retrying:
    """A tenacity `Retrying` with the shared policy; it re-raises the last error.

    `attempts=None` bounds the tries by `within` alone (an outage a caller chooses to ride
    out for a given time); at least one bound is required."""
    if attempts is None and within is None:
        raise ValueError("a retry policy needs a bound: attempts, within, or both")
    stops: list[stop_base] = []
    if attempts is not None:
        stops.append(stop_after_attempt(attempts))
    if within is not None:
        stops.append(stop_after_delay(within))
    stop = stops[0] if len(stops) == 1 else stops[0] | stops[1]
    return Retrying(
        sleep=_sleep,
        stop=stop,
        wait=_backoff(multiplier, max_wait),
        retry=retry_if_exception(transient),
        reraise=True,
    )


def retry_call(
    fn: Callable[[], T],
    transient: Transient,
    *,
    attempts: int | None = ATTEMPTS,
    within: float | None = WITHIN,
    multiplier: float = MULTIPLIER,
    max_wait: float = MAX_WAIT,
) -> T:
    """`fn()` under the shared policy: its result, or the error of its last try."""
    retrying = policy(
        transient, attempts=attempts, within=within, multiplier=multiplier, max_wait=max_wait
    )
    for attempt in retrying:
        with attempt:
            return fn()
    raise AssertionError("unreachable")  # pragma: no cover
