"""`metrics "tensorboard"` from the command line: local trials write TensorBoard event files
(with tensorboard's own writer, which the extra installs), their scalars reach the state
and drive early stopping; a missing extra and bad blocks are located diagnostics."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.cli.test_apply import apply, trials
from tests.conftest import cli_env, run_cli, write
from tests.search.test_extras import hiding

pytest.importorskip("tensorboard")

# Trial n writes `steps` events of val/acc (and a train/loss tag nobody asked for); from
# trial `bad_from` on the values are hopeless. A retry writes into the same model_dir.
TRIAL = """\
import sys, time
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

logdir, n, steps, bad_from = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
writer = EventFileWriter(logdir)
for step in range(1, steps + 1):
    acc = 0.1 * step / steps if n >= bad_from else 0.5 + 0.05 * step + 0.01 * n
    summary = summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag="val/acc", simple_value=acc),
        summary_pb2.Summary.Value(tag="train/loss", simple_value=1 - acc),
    ])
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    writer.flush()
    time.sleep(0.25)
writer.close()
"""


def hcl(*, max_trials: int, steps: int, bad_from: int, extra: str = "", tag: str = "val/acc"):
    tag_line = f'tag = "{tag}"' if tag else ""
    args = f"${{trial.model_dir}}/tb ${{trial.number}} {steps} {bad_from}"
    return textwrap.dedent(
        f"""\
        experiment "demo" {{
          algorithm "random" {{
            seed = 1
          }}
          objective {{
            metric    = "val/acc"
            direction = "maximize"
            reduce    = "best"
          }}
          max_trials     = {max_trials}
          max_concurrent = 1
          {extra}
          param "x" {{
            type = "uniform"
            low  = 0
            high = 1
          }}
          trial {{
            command = "python3 writer.py {args}"
            metrics "tensorboard" {{
              logdir = "${{trial.model_dir}}/tb"
              {tag_line}
            }}
          }}
        }}
        """
    )


def setup(tmp_path: Path, text: str) -> Path:
    return write(tmp_path / "cfg", {"main.hcl": text, "writer.py": TRIAL})


def metrics(directory: Path, number: int) -> list[dict]:
    result = run_cli(directory, "show", f"experiment.demo.trial[{number}]", "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)["metrics"]


def test_event_values_reach_the_state(tmp_path: Path) -> None:
    directory = setup(tmp_path, hcl(max_trials=2, steps=4, bad_from=99))
    result = apply(directory)
    assert result.code == 0, result.text
    records = trials(directory)
    assert [t["status"] for t in records] == ["complete", "complete"], records
    assert records[0]["value"] == pytest.approx(0.7)
    assert records[1]["value"] == pytest.approx(0.71)
    shown = metrics(directory, 1)
    assert [(m["name"], m["step"]) for m in shown] == [("val/acc", s) for s in (1, 2, 3, 4)]
    assert shown[-1]["value"] == pytest.approx(0.71)


def test_intermediate_values_drive_early_stopping(tmp_path: Path) -> None:
    rule = 'early_stopping "median" {\n    n_startup_trials = 2\n    start_step = 2\n  }'
    directory = setup(tmp_path, hcl(max_trials=4, steps=10, bad_from=2, extra=rule))
    result = apply(directory)
    assert result.code == 0, result.text
    records = trials(directory)
    assert [t["status"] for t in records] == ["complete"] * 2 + ["pruned"] * 2, records
    # Pruned at the first steps the rule looks at, read while the writer was running.
    assert all(t["last_step"] is not None and t["last_step"] <= 4 for t in records[2:])
    assert "trial 2 pruned" in result.out and "pruned at step" in result.out


def test_without_a_tag_every_scalar_is_a_metric(tmp_path: Path) -> None:
    directory = setup(tmp_path, hcl(max_trials=1, steps=2, bad_from=99, tag=""))
    assert apply(directory).code == 0
    names = {m["name"] for m in metrics(directory, 0)}
    assert names == {"val/acc", "train/loss"}


def test_retry_does_not_report_the_failed_attempts_events(tmp_path: Path) -> None:
    # The first attempt writes two events into the model directory, then fails; the retry
    # writes its own file beside it. Each attempt's two values are read once: the retry
    # does not read the first attempt's file again (that would make six).
    failing = TRIAL.replace(
        "writer.close()\n",
        "writer.close()\nimport pathlib\n"
        "flag = pathlib.Path(logdir).parent / 'failed-once'\n"
        "if not flag.exists():\n    flag.write_text('x')\n    sys.exit(3)\n",
    )
    text = hcl(max_trials=1, steps=2, bad_from=99).replace(
        "trial {\n", "trial {\n    retries = 1\n"
    )
    directory = write(tmp_path / "cfg", {"main.hcl": text, "writer.py": failing})
    result = apply(directory)
    assert result.code == 0, result.text
    [record] = trials(directory)
    assert record["status"] == "complete", record
    assert sorted(m["step"] for m in metrics(directory, 0)) == [1, 1, 2, 2]


def test_validate_names_the_missing_extra(tmp_path: Path) -> None:
    directory = setup(tmp_path, hcl(max_trials=1, steps=1, bad_from=99))
    result = run_cli(directory, "validate", env=hiding(tmp_path, "tensorboard"))
    assert result.code == 1, result.text
    assert "Traceback" not in result.text
    assert "Error: Missing package" in result.text
    assert "pip install 'tunectl[tensorboard]'" in result.text
    assert 'on main.hcl line 20, in experiment "demo"' in result.text
    assert '20:     metrics "tensorboard" {' in result.text


def test_bad_blocks_are_located_diagnostics(tmp_path: Path) -> None:
    text = hcl(max_trials=1, steps=1, bad_from=99).replace(
        'logdir = "${trial.model_dir}/tb"', 'logdir = "tb"'
    )
    directory = setup(tmp_path, text)
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Traceback" not in result.text
    assert "Event directory shared by trials" in result.text
    assert 'on main.hcl line 21, in experiment "demo"' in result.text
    assert '21:       logdir = "tb"' in result.text
    no_logdir = hcl(max_trials=1, steps=1, bad_from=99).replace(
        'logdir = "${trial.model_dir}/tb"', ""
    )
    result = run_cli(setup(tmp_path / "b", no_logdir), "validate")
    assert result.code == 1 and 'metrics "tensorboard" needs "logdir".' in result.text


@pytest.mark.slow
def test_kill_9_during_reads_loses_and_repeats_nothing(tmp_path: Path) -> None:
    # apply is killed while writers run and their events are being read; the next apply
    # adopts the running trials and reads on from the state's cursor into the journal.
    seed = int(os.environ.get("TUNECTL_CRASH_SEED", random.randrange(1 << 30)))
    print(f"TUNECTL_CRASH_SEED={seed}")
    rng = random.Random(seed)
    directory = setup(
        tmp_path,
        hcl(max_trials=4, steps=8, bad_from=99).replace("max_concurrent = 1", "max_concurrent = 2"),
    )
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunectl", "-C", str(directory), "apply", "--auto-approve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=cli_env(),
        )
        time.sleep(rng.uniform(0.5, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err, err.decode()
    result = apply(directory)
    assert result.code == 0, result.text
    records = trials(directory)
    assert [t["status"] for t in records] == ["complete"] * 4, f"seed {seed}: {records}"
    for record in records:
        steps = [m["step"] for m in metrics(directory, record["number"])]
        assert sorted(steps) == list(range(1, 9)), f"seed {seed}: trial {record['number']}"
