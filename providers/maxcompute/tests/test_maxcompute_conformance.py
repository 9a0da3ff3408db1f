"""The provider conformance suite on the MaxCompute provider, through pyodps against the
emulator over HTTP. Scripted tasks are the emulator's `echo` PAI command."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from tunectl_maxcompute import MaxComputeProvider
from tunectl_maxcompute.emulator import Server

from tunectl.providers.base import TaskRequest
from tunectl.providers.bodies import xflow_escape
from tunectl.testing.conformance import ProviderConformance


class TestMaxComputeConformance(ProviderConformance):
    finish_within = 20.0
    cursor_is_bytes = False
    streams_output = False
    exit_codes = False

    @pytest.fixture(autouse=True)
    def _emulator(self, server: Server, credentials: None) -> Iterator[None]:
        self.server = server
        yield

    def make_provider(self, tmp_path: Path) -> MaxComputeProvider:
        config = {"project": "conf_p", "endpoint": self.server.endpoint, "metrics_interval": 0}
        return MaxComputeProvider(config, tmp_path / "state")

    def make_request(self, key: str, command: str | list[str], **fields: Any) -> TaskRequest:
        return TaskRequest(key, "conf", 0, "main", {"pai": command}, **fields)

    def scripted(
        self,
        key: str,
        output: Sequence[bytes] = (),
        exit_code: int = 0,
        seconds: float = 0.0,
        files: Mapping[str, bytes] | None = None,
        **fields: Any,
    ) -> TaskRequest:
        text = b"".join(output).decode("utf-8", "replace")
        pause = self.chunk_pause * max(0, len(output) - 1)
        command = (
            f'-name echo -project algo_public -Doutput="{xflow_escape(text)}" '
            f"-Dseconds={seconds + pause:g} -Dexit_code={exit_code}"
        )
        return self.make_request(key, command, **fields)
