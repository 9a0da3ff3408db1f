"""`tunectl.report`, as trial code uses it: in a fresh interpreter, through PYTHONPATH."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tunectl.engine.metrics import MetricsParser, Sample

REPO = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNECTL_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def _python(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args, "-c", code],
        capture_output=True,
        text=True,
        env=_env(**env),
        cwd=REPO,
        timeout=60,
    )


def test_report_writes_one_prefixed_json_line() -> None:
    proc = _python(
        "import tunectl\n"
        "tunectl.report(step=3, val_acc=0.91, loss=1)\n"
        "tunectl.report(val_acc=0.5)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        '@tunectl {"metrics":{"loss":1.0,"val_acc":0.91},"step":3}\n'
        '@tunectl {"metrics":{"val_acc":0.5},"step":null}\n'
    )
    # The engine's parser reads exactly these lines.
    samples = MetricsParser(sources=[], objective_metrics=["val_acc"]).feed(
        proc.stdout.splitlines()
    )
    assert samples == [
        Sample("loss", 3, 1.0),
        Sample("val_acc", 3, 0.91),
        Sample("val_acc", None, 0.5),
    ]


def test_report_is_flushed_before_the_process_ends() -> None:
    # A trial killed right after reporting must still have its line in the log.
    proc = _python("import os, tunectl\ntunectl.report(step=1, val_acc=0.7)\nos._exit(0)\n")
    assert proc.stdout == '@tunectl {"metrics":{"val_acc":0.7},"step":1}\n'


def test_from_import_and_version() -> None:
    proc = _python(
        "from tunectl import report, __version__\n"
        "import tunectl\n"
        "assert tunectl.report is report\n"
        "assert sorted(tunectl.__all__) == ['__version__', 'report']\n"
        "print(__version__)\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "0.1.0\n"


def test_numpy_scalars_are_accepted() -> None:
    proc = _python(
        "import numpy as np, tunectl\n"
        "tunectl.report(step=np.int64(2), acc=np.float32(0.5), n=np.int32(7))\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '@tunectl {"metrics":{"acc":0.5,"n":7.0},"step":2}\n'


def test_metrics_file_gets_the_same_json_appended(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"metrics":{"val_acc":0.1},"step":0}\n')
    code = (
        "import tunectl\n"
        "tunectl.report(step=1, val_acc=0.25)\n"
        "tunectl.report(step=2, val_acc=0.5, loss=0.125)\n"
    )
    proc = _python(code, TUNECTL_METRICS_FILE=str(path))
    assert proc.returncode == 0, proc.stderr
    printed = [line.removeprefix("@tunectl ") for line in proc.stdout.splitlines()]
    lines = path.read_text().splitlines()
    assert lines[0] == '{"metrics":{"val_acc":0.1},"step":0}'  # appended, not truncated
    assert lines[1:] == printed
    assert [json.loads(line) for line in lines[1:]] == [
        {"metrics": {"val_acc": 0.25}, "step": 1},
        {"metrics": {"loss": 0.125, "val_acc": 0.5}, "step": 2},
    ]


def test_no_metrics_file_without_the_variable(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import tunectl; tunectl.report(step=1, a=1.5)"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("step=1, val_acc=float('nan')", "metric 'val_acc' must be a finite number, not nan"),
        ("step=1, val_acc=float('inf')", "metric 'val_acc' must be a finite number, not inf"),
        ("step=1, val_acc=-1e400", "metric 'val_acc' must be a finite number"),
        ("step=1, val_acc=10**400", "metric 'val_acc' must be a finite number"),
        ("step=1, val_acc=True", "metric 'val_acc' must be a finite number, not True"),
        ("step=1, val_acc='0.9'", "metric 'val_acc' must be a finite number, not '0.9'"),
        ("step=1, val_acc=None", "metric 'val_acc' must be a finite number, not None"),
        ("step=1, val_acc=[0.9]", "metric 'val_acc' must be a finite number"),
        ("step=1, val_acc=1j", "metric 'val_acc' must be a finite number"),
        ("step=1, **{'val acc': 0.9}", "metric name 'val acc' is not a valid identifier"),
        ("step=1, **{'1st': 0.9}", "metric name '1st' is not a valid identifier"),
        ("step=1, **{'': 0.9}", "metric name '' is not a valid identifier"),
        ("step=-1, val_acc=0.9", "step must be a non-negative integer, not -1"),
        ("step=1.5, val_acc=0.9", "step must be a non-negative integer, not 1.5"),
        ("step='3', val_acc=0.9", "step must be a non-negative integer, not '3'"),
        ("step=True, val_acc=0.9", "step must be a non-negative integer, not True"),
        ("step=1", "give at least one metric"),
        ("", "give at least one metric"),
    ],
)
def test_invalid_input_raises_value_error_and_writes_nothing(
    tmp_path: Path, call: str, message: str
) -> None:
    path = tmp_path / "metrics.jsonl"
    code = (
        "import tunectl\n"
        "try:\n"
        f"    tunectl.report({call})\n"
        "except ValueError as exc:\n"
        "    print('ValueError:', exc)\n"
        "else:\n"
        "    print('no error')\n"
    )
    proc = _python(code, TUNECTL_METRICS_FILE=str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ValueError: tunectl.report: "), proc.stdout
    assert message in proc.stdout
    assert proc.stdout.rstrip().endswith("."), "the message is a sentence"
    assert "@tunectl" not in proc.stdout
    assert not path.exists()


def test_numpy_bool_is_refused() -> None:
    proc = _python("import numpy as np, tunectl\ntunectl.report(step=1, ok=np.bool_(True))\n")
    assert proc.returncode == 1
    assert "ValueError: tunectl.report: metric 'ok' must be a finite number" in proc.stderr
    assert proc.stdout == ""


def test_concurrent_calls_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    code = (
        "import threading, tunectl\n"
        "def work(t):\n"
        "    for i in range(300):\n"
        "        tunectl.report(step=i, **{f'metric_{t}': i + t / 10, 'pad': 0.5})\n"
        "threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]\n"
        "for th in threads: th.start()\n"
        "for th in threads: th.join()\n"
    )
    proc = _python(code, TUNECTL_METRICS_FILE=str(path))
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.splitlines()
    written = path.read_text().splitlines()
    assert len(printed) == len(written) == 8 * 300
    pattern = re.compile(r'@tunectl \{"metrics":\{"metric_\d":[0-9.]+,"pad":0\.5\},"step":\d+\}')
    assert all(pattern.fullmatch(line) for line in printed)
    assert sorted(printed) == sorted("@tunectl " + line for line in written)


def _imported_modules(code: str) -> tuple[set[str], dict[str, int]]:
    """Top-level names of the modules `code` imports, and each module's cumulative µs."""
    proc = _python(code, "-X", "importtime")
    assert proc.returncode == 0, proc.stderr
    names: set[str] = set()
    cumulative: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        match = re.fullmatch(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if match:
            module = match.group(4)
            names.add(module.split(".")[0])
            cumulative[module] = int(match.group(2))
    return names, cumulative


def test_import_tunectl_loads_only_the_standard_library() -> None:
    baseline, _ = _imported_modules("pass")
    names, cumulative = _imported_modules("import tunectl")
    assert "tunectl" in names
    for heavy in ("optuna", "numpy", "rich", "typer", "sqlite_utils", "boto3", "hcl2", "click"):
        assert heavy not in names, f"`import tunectl` imports {heavy}"
    added = names - baseline - {"tunectl"}
    outside = {n for n in added if n not in sys.stdlib_module_names}
    assert not outside, f"`import tunectl` imports modules outside the standard library: {outside}"
    assert not any(m.startswith("tunectl.") and m != "tunectl.report" for m in cumulative)


# How long `import tunectl` takes (< 20 ms) is measured by bench/startup.py: what it
# imports, above, is what keeps it short on any machine.
