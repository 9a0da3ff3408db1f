"""The state backends pass the shared conformance cases (`tunectl.testing.backends`):
a local file, and an S3 object on a moto server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunectl.states.backend import LocalBackend, S3StateBackend, StateBackend, open_backend
from tunectl.testing.backends import BackendConformance
from tunectl.testing.s3 import S3_ENV, S3Server


class TestLocalBackend(BackendConformance):
    def make_backend(self, tmp_path: Path, name: str) -> StateBackend:
        # One file, whichever directory opens it (a `backend` block naming a shared path).
        return LocalBackend(tmp_path / "shared" / "tunectl.db")


class TestS3Backend(BackendConformance):
    @pytest.fixture(autouse=True)
    def _store(self, server: S3Server, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
        for key, value in S3_ENV.items():
            monkeypatch.setenv(key, value)
        self.settings = {
            "bucket": bucket,
            "key": "team/tunectl.db",
            "endpoint": server.url,
            "region": "us-east-1",
            "force_path_style": True,
        }

    def make_backend(self, tmp_path: Path, name: str) -> StateBackend:
        return open_backend("s3", self.settings, tmp_path / name)

    def test_the_working_copy_is_private_to_its_directory(self, tmp_path: Path) -> None:
        first, second = self.make_backend(tmp_path, "a"), self.make_backend(tmp_path, "b")
        assert isinstance(first, S3StateBackend)
        assert first.path.parent == tmp_path / "a" / "state" / "remote"
        assert first.path.name == second.path.name and first.path != second.path
        assert first.shared
        assert first.where() == f"s3://{self.settings['bucket']}/team/tunectl.db"


def test_open_backend_resolves_a_local_path(tmp_path: Path) -> None:
    default = open_backend("local", {}, tmp_path)
    assert default.path == tmp_path / "state" / "tunectl.db" and not default.shared
    relative = open_backend("local", {"path": "elsewhere/x.db"}, tmp_path)
    assert relative.path == tmp_path / "elsewhere" / "x.db"
    absolute = open_backend("local", {"path": str(tmp_path / "abs.db")}, tmp_path / "cfg")
    assert absolute.path == tmp_path / "abs.db"
    assert absolute.where() == str(tmp_path / "abs.db")


def test_the_lock_held_message_is_one_text(tmp_path: Path) -> None:
    """Local and S3 refusals differ only in the hint on freeing a killed holder's lock."""
    from tunectl.states.lock import lock_held_error, new_lock_info

    info = new_lock_info("OperationTypeApply", "somewhere", "1.2.3")
    local = lock_held_error(info, "").diags[0].detail
    remote = lock_held_error(info, "", force_unlock_hint=True).diags[0].detail
    assert local.endswith("(Use --lock-timeout to wait.)")
    assert remote.endswith(
        "(Use --lock-timeout to wait; if the holder was killed, run tunectl force-unlock ID.)"
    )
    assert local.rsplit("(", 1)[0] == remote.rsplit("(", 1)[0]
    unreadable = lock_held_error(None, "the lock info file x does not exist").diags[0].detail
    assert unreadable.startswith("Lock Info:\n  (The lock info file x does not exist.)\n")
