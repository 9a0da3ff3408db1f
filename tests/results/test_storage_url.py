"""A storage URL given to `tunectl export` is printed with its password masked."""

from __future__ import annotations

from tunectl.operations.study import masked


def test_a_password_in_a_storage_url_is_masked() -> None:
    assert masked("postgresql://user:s3cr3t@db:5432/studies") == (
        "postgresql://user:***@db:5432/studies"
    )
    assert masked("sqlite:///study.db") == "sqlite:///study.db"
    assert masked("mysql://user@db/studies") == "mysql://user@db/studies"
