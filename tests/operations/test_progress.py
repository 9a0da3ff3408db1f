"""One Progress: what `plan` reads from the state's aggregates equals what the apply loop
computes from the trials (`compute_progress`), whatever the trials."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunectl.operations.plan import stored_progress
from tunectl.search.stopping import compute_progress
from tunectl.states import ExperimentRecord, State, TrialRecord
from tunectl.status import TrialStatus

TRIALS = st.lists(
    st.tuples(
        st.sampled_from(list(TrialStatus)),
        st.one_of(st.none(), st.sampled_from([0.1, 0.5, 0.5, 0.9, -3.0])),
    ),
    max_size=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(trials=TRIALS, maximize=st.booleans())
def test_plan_and_apply_compute_the_same_progress(tmp_path_factory, trials, maximize):
    direction = "maximize" if maximize else "minimize"
    state = State.open(tmp_path_factory.mktemp("s") / "tunectl.db", create=True, config_id="c")
    try:
        record = ExperimentRecord(
            "e", config={"objective": {"direction": direction}}, elapsed=12.0, clock_since=None
        )
        state.put_experiment(record)
        for number, (status, value) in enumerate(trials):
            state.add_trial(
                TrialRecord(
                    "e",
                    number,
                    f"t{number}",
                    {},
                    status=status,
                    value=value if status is TrialStatus.COMPLETE else None,
                )
            )
        stored = state.list_trials("e")
        running = sum(t.status in (TrialStatus.RUNNING, TrialStatus.PENDING) for t in stored)
        computed = compute_progress(
            stored,
            direction=direction,
            running=running,
            asked=len(stored),
            elapsed=12.0,
            clock_since=None,
            now=100.0,
        )
        assert stored_progress(state, state.get_experiment("e"), 100.0) == computed
    finally:
        state.close()
