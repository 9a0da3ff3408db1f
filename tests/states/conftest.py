from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tunectl.states import ExperimentRecord, State


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "tunectl.db"


@pytest.fixture
def state(db_path: Path) -> Iterator[State]:
    st = State.open(db_path, create=True, config_id="cfg-1")
    yield st
    st.close()


@pytest.fixture
def mnist(state: State) -> State:
    """A state with one experiment, "mnist", at generation 1."""
    state.put_experiment(ExperimentRecord("mnist", config={"max_trials": 4}, config_hash="h1"))
    return state
