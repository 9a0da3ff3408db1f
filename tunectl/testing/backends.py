"""Conformance cases every state backend passes (as Terraform's `statemgr.TestFull`).

Subclass `BackendConformance` in a test module as `TestXxxBackend` and supply
`make_backend(tmp_path, name)`: a backend for the state every call of one test shares,
as a working directory called `name` sees it (two names: two writers, such as two clones
of one configuration, or two machines). The cases cover the three things a backend owns:

* **lock**: one holder at a time; a refused writer gets the one "Error acquiring the
  state lock" diagnostic naming the holder; waiting up to a timeout; release; an unknown
  ID given to `force_unlock` changes nothing;
* **open**: a missing state is created only when asked; the state one writer persisted
  is what the next one opens (lineage, serial, records);
* **persist**: forced and periodic persists keep what was written.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tunectl.diags import DiagnosticError
from tunectl.states import ExperimentRecord
from tunectl.states.backend import StateBackend, locked

CONFIG_ID = "conformance"


class BackendConformance:
    """Cases every backend passes; see the module docstring for what a subclass supplies."""

    # -- to supply -----------------------------------------------------------------------

    def make_backend(self, tmp_path: Path, name: str) -> StateBackend:
        raise NotImplementedError

    # -- lock ----------------------------------------------------------------------------

    def test_lock_names_the_holder(self, tmp_path: Path) -> None:
        backend = self.make_backend(tmp_path, "a")
        info = backend.lock("OperationTypeApply", 0)
        try:
            assert info.operation == "OperationTypeApply"
            assert info.id and info.who and info.created and info.version
            assert info.pid > 0
        finally:
            backend.unlock()

    def test_second_writer_is_refused_with_the_holder(self, tmp_path: Path) -> None:
        first, second = self.make_backend(tmp_path, "a"), self.make_backend(tmp_path, "b")
        info = first.lock("OperationTypeApply", 0)
        try:
            with pytest.raises(DiagnosticError) as refused:
                second.lock("OperationTypePlan", 0)
            diag = refused.value.diags[0]
            assert diag.summary == "Error acquiring the state lock"
            assert f"  ID:        {info.id}\n" in diag.detail
            assert "  Operation: OperationTypeApply\n" in diag.detail
            assert "Use --lock-timeout to wait" in diag.detail
        finally:
            first.unlock()

    def test_lock_is_free_again_after_unlock(self, tmp_path: Path) -> None:
        first, second = self.make_backend(tmp_path, "a"), self.make_backend(tmp_path, "b")
        with locked(first, "OperationTypeApply", 0):
            pass
        with locked(second, "OperationTypeApply", 0):
            pass
        with pytest.raises(RuntimeError), locked(first, "OperationTypeApply", 0):
            raise RuntimeError("the block failed")
        with locked(second, "OperationTypeApply", 0):  # released on the way out
            pass

    def test_lock_timeout_waits_for_the_holder(self, tmp_path: Path) -> None:
        first, second = self.make_backend(tmp_path, "a"), self.make_backend(tmp_path, "b")
        first.lock("OperationTypeApply", 0)
        timer = threading.Timer(0.5, first.unlock)
        timer.start()
        try:
            started = time.monotonic()
            second.lock("OperationTypeApply", 30)
            assert time.monotonic() - started >= 0.4
            second.unlock()
        finally:
            timer.join()

    def test_unlock_when_not_held_does_nothing(self, tmp_path: Path) -> None:
        backend = self.make_backend(tmp_path, "a")
        backend.unlock()
        with locked(backend, "OperationTypeApply", 0):
            pass
        backend.unlock()

    def test_force_unlock_with_an_unknown_id_changes_nothing(self, tmp_path: Path) -> None:
        first, second = self.make_backend(tmp_path, "a"), self.make_backend(tmp_path, "b")
        with pytest.raises(DiagnosticError):
            second.force_unlock("no-such-lock")  # not locked at all
        first.lock("OperationTypeApply", 0)
        try:
            with pytest.raises(DiagnosticError):
                second.force_unlock("no-such-lock")
            with pytest.raises(DiagnosticError):  # still held
                second.lock("OperationTypeApply", 0)
        finally:
            first.unlock()

    # -- open and persist -----------------------------------------------------------------

    def test_missing_state_is_created_only_when_asked(self, tmp_path: Path) -> None:
        backend = self.make_backend(tmp_path, "a")
        assert not backend.exists()
        with pytest.raises(DiagnosticError) as missing:
            backend.open(create=False, config_id=CONFIG_ID)
        assert missing.value.diags[0].summary == "No state"
        state = backend.open(create=True, config_id=CONFIG_ID)
        try:
            assert state.serial == 0
            backend.persist(state)
        finally:
            state.close()
        assert self.make_backend(tmp_path, "b").exists()

    def test_the_next_writer_opens_what_was_persisted(self, tmp_path: Path) -> None:
        first = self.make_backend(tmp_path, "a")
        with locked(first, "OperationTypeApply", 0):
            state = first.open(create=True, config_id=CONFIG_ID)
            try:
                state.put_experiment(ExperimentRecord("mnist", config={}, config_hash="h1"))
                lineage, serial = state.lineage, state.serial
                first.persist(state)
            finally:
                state.close()
        second = self.make_backend(tmp_path, "b")
        with locked(second, "OperationTypeApply", 0):
            state = second.open(create=False, config_id=CONFIG_ID)
            try:
                assert (state.lineage, state.serial) == (lineage, serial)
                record = state.get_experiment("mnist")
                assert record is not None and record.config_hash == "h1"
            finally:
                state.close()

    def test_periodic_and_ahead_persists_keep_the_writes(self, tmp_path: Path) -> None:
        first = self.make_backend(tmp_path, "a")
        with locked(first, "OperationTypeApply", 0):
            state = first.open(create=True, config_id=CONFIG_ID)
            try:
                first.persist(state)
                state.put_experiment(ExperimentRecord("a", config={}, config_hash="h"))
                first.persist(state, force=False, ahead=True)  # before a local task starts
                state.put_experiment(ExperimentRecord("b", config={}, config_hash="h"))
                first.persist(state, force=False)  # maybe not due yet: no error either way
                first.persist(state)  # at the end: now
                serial = state.serial
            finally:
                state.close()
        second = self.make_backend(tmp_path, "b")
        state = second.open(create=False, config_id=CONFIG_ID)
        try:
            assert state.serial == serial
            assert [r.name for r in state.list_experiments()] == ["a", "b"]
        finally:
            state.close()
