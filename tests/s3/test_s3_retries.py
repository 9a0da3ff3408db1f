"""The S3 client's retries: the shared policy (`tunectl.retry`), one layer, bounded."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from tunectl import retry
from tunectl.s3 import ATTEMPTS, S3, StorageError, StorageUnavailable


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(retry, "sleep", waits.append)
    return waits


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


def failing(code: str, status: int, times: int) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise client_error(code, status)
        return "ok"

    return calls, fn


@pytest.fixture
def s3() -> S3:
    return S3({"bucket": "b", "endpoint": "http://127.0.0.1:9", "region": "us-east-1"}, "test")


def test_throttling_is_retried_then_succeeds(s3: S3, no_waits: list[float]) -> None:
    calls, fn = failing("SlowDown", 503, 2)
    assert s3.call("writing", fn) == "ok"
    assert len(calls) == 3 and len(no_waits) == 2


def test_an_outage_is_bounded_by_attempts(s3: S3) -> None:
    calls, fn = failing("ServiceUnavailable", 503, 1_000)
    with pytest.raises(StorageUnavailable):
        s3.call("writing", fn)
    assert len(calls) == ATTEMPTS


def test_a_permanent_error_is_not_retried(s3: S3) -> None:
    calls, fn = failing("AccessDenied", 403, 1_000)
    with pytest.raises(StorageError) as raised:
        s3.call("writing", fn)
    assert not isinstance(raised.value, StorageUnavailable)
    assert len(calls) == 1 and "AccessDenied" in str(raised.value)
