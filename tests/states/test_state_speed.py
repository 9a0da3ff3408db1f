"""Timings the apply loop and `plan` depend on. The bounds are generous (CI machines
vary); the printed numbers are the measurement (`pytest -s` shows them)."""

from __future__ import annotations

import time
from pathlib import Path

from tunectl.states import ExperimentRecord, MetricRecord, State, TaskRecord, TrialRecord

STATUSES = ["complete", "complete", "complete", "pruned", "failed"]


def build(path: Path, trials: int) -> None:
    with State.open(path, create=True, config_id="cfg") as st, st.transaction():
        st.put_experiment(ExperimentRecord("big", config={"max_trials": trials}))
        st.put_experiment(ExperimentRecord("small"))
        for n in range(trials):
            st.add_trial(
                TrialRecord(
                    "big",
                    n,
                    f"big-{n}",
                    {"lr": 1e-3 * n, "layers": n % 7, "optimizer": "adam"},
                    status=STATUSES[n % len(STATUSES)],
                    value=n / trials,
                    values={"acc": n / trials, "loss": 1 - n / trials},
                )
            )
            st.add_task(TaskRecord(f"big/{n}/0/0", "big", n, 0, "train", 0, "local"))
            st.add_metrics(
                [MetricRecord("big", n, "acc", step, step / 10, float(step)) for step in range(5)]
            )


def test_open_and_count_10000_trials(tmp_path: Path) -> None:
    path = tmp_path / "tunectl.db"
    build(path, 10_000)
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        with State.open(path, create=False, config_id="cfg") as st:
            counts = {e.name: st.trial_counts(e.name) for e in st.list_experiments()}
        timings.append(time.perf_counter() - start)
    assert counts["big"]["complete"] == 6_000 and counts["small"]["complete"] == 0
    start = time.perf_counter()
    with State.open(path, create=False) as st:
        summary = st.summary()
    summary_time = time.perf_counter() - start
    assert summary["experiments"]["big"]["total"] == 10_000
    print(
        f"\nopen + list_experiments + trial_counts, 10,000 trials: best "
        f"{min(timings) * 1000:.2f} ms, first {timings[0] * 1000:.2f} ms; "
        f"open + summary: {summary_time * 1000:.2f} ms"
    )
    assert max(timings) < 0.5


def test_small_transaction_speed(tmp_path: Path) -> None:
    with State.open(tmp_path / "tunectl.db", create=True) as st:
        st.put_experiment(ExperimentRecord("mnist"))
        st.add_trial(TrialRecord("mnist", 0, "m0", {"lr": 0.1}))
        st.add_task(TaskRecord("k", "mnist", 0, 0, "train", 0, "local"))
        rounds = 1000
        start = time.perf_counter()
        for step in range(rounds):
            with st.transaction():  # a typical checkpoint: a task and its trial
                st.update_task("k", log_cursor=step * 100, file_cursors={"m.jsonl": step})
                st.update_trial("mnist", 0, last_step=step, values={"acc": step / rounds})
                st.add_metrics([MetricRecord("mnist", 0, "acc", step, step / rounds, step)])
        per_transaction = (time.perf_counter() - start) / rounds
        assert st.serial == 3 + rounds
    print(f"\nsmall transaction (3 writes + commit): {per_transaction * 1e6:.0f} µs")
    assert per_transaction < 0.02
