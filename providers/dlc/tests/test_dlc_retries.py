"""One retry layer: a transient fault is retried by the provider's calls alone.

The apply engine (a real `Runner`, real state) drives the dlc provider (the official SDK)
against the emulator, whose CreateJob answers 500 on every call. The provider retries each
call (`tunectl.retry`); the engine adds none of its own and takes the submission up again on
later passes, with backoff, until the trial fails. The CreateJob calls for the one trial are
counted and bounded: one provider call per pass, never retries inside retries.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tunectl_dlc import provider as dlc
from tunectl_dlc.emulator import TEST_KEY_ID, TEST_KEY_SECRET, ApiError, Server

from tunectl import retry
from tunectl.config.load import load_config
from tunectl.engine.models import LocalModelStore
from tunectl.engine.runner import Runner
from tunectl.engine.submission import SUBMIT_ROUNDS
from tunectl.plans.differ import canonical
from tunectl.states import ExperimentRecord, State
from tunectl.status import ExperimentStatus, TrialStatus

HCL = """\
provider "dlc" {
  region       = "cn-hangzhou"
  workspace_id = "ws-retries"
  endpoint     = "%(endpoint)s"
  protocol     = "http"
  log_interval = 0
}

experiment "down" {
  algorithm "random" {
    seed = 1
  }
  objective {
    metric    = "acc"
    direction = "maximize"
  }
  max_trials     = 1
  max_concurrent = 1
  param "x" {
    type = "uniform"
    low  = 0
    high = 1
  }
  trial {
    provider = "dlc"
    image    = "registry.example.com/train:1"
    worker   = { count = 1, ecs_spec = "ecs.g6.xlarge" }
    command  = "echo acc=${param.x}"
  }
}
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)  # the SDK ignores NO_PROXY
    os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"] = TEST_KEY_ID
    os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = TEST_KEY_SECRET
    with Server(capacity=4, phase_seconds=0.02) as s:
        yield s


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_permanent_transient_fault_is_retried_in_one_layer(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(body: dict[str, Any]) -> dict[str, Any]:
        raise ApiError(500, "InternalError", "The request processing has failed.")

    monkeypatch.setattr(server.emulator, "create_job", unavailable)
    waits: list[float] = []
    monkeypatch.setattr(retry, "sleep", waits.append)  # the provider's backoff, not slept

    (tmp_path / "main.hcl").write_text(HCL % {"endpoint": server.endpoint})
    exp = load_config(tmp_path).experiments["down"]
    state = State.open(tmp_path / "state" / "tunectl.db", create=True, config_id="t")
    state.put_experiment(ExperimentRecord("down", config=canonical(exp), created_at=1.0))
    provider = dlc.DlcProvider(
        {
            "region": "cn-hangzhou",
            "workspace_id": "ws-retries",
            "endpoint": server.endpoint,
            "protocol": "http",
            "log_interval": 0,
        },
        tmp_path / "state",
    )
    clock = Clock()
    events: list[tuple[str, str, str]] = []
    runner = Runner(
        exp,
        state,
        provider,
        LocalModelStore(tmp_path / "state" / "models"),
        tmp_path,
        None,
        lambda *e: events.append(e),
        clock,
    )
    try:
        runner.prepare()
        passes = 0
        while not runner.finished:
            passes += 1
            assert passes < 100, "the experiment did not finish"
            before = server.emulator.calls["CreateJob"]
            if runner.refresh():
                runner.launch()
            # One provider call per pass: at most its own tries, none on top.
            assert server.emulator.calls["CreateJob"] - before <= dlc.ATTEMPTS
            next_retry = runner.next_retry()
            if next_retry is not None:
                clock.now = max(clock.now, next_retry)  # skip the engine's backoff
        (trial,) = state.list_trials("down")
        assert trial.status == TrialStatus.FAILED
        assert f"after {SUBMIT_ROUNDS} rounds" in trial.message
        assert "InternalError" in trial.message
        assert runner.record.status == ExperimentStatus.FAILED
        # The bound: every pass one submission of at most ATTEMPTS CreateJob calls.
        created = server.emulator.calls["CreateJob"]
        assert 0 < created <= dlc.ATTEMPTS * (SUBMIT_ROUNDS + 1)
        # Seven submissions of six tries each (retried by the engine too, it was three times that).
        assert created == dlc.ATTEMPTS * (SUBMIT_ROUNDS + 1)
        # The provider waited between its tries (one wait fewer than tries per submission).
        assert len(waits) == created - (SUBMIT_ROUNDS + 1)
        with server.emulator.lock:
            assert not server.emulator.jobs  # nothing was created behind the faults
    finally:
        state.close()
