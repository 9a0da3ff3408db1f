"""Metric values from the command line: none lost, each validated, files never mixed.

Real trials print to their log (or write JSON-lines files) and the real CLI reads them:
a metric after megabytes of output or inside an over-long line; steps and values at their
edges (each followed by a second apply, which must not be wedged); a weighted objective's
best step; metrics files that would be shared, and files left over from before a trial.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli, write

MB = 1 << 20
NL = b"\n"


def config(
    *,
    objective: str = 'metric    = "acc"\n    direction = "maximize"',
    max_trials: int = 1,
    trial_extra: str = "",
    workdir: str = ".",
    retries: int = 0,
) -> str:
    return f"""\
experiment "demo" {{
  algorithm "random" {{
    seed = 1
  }}
  objective {{
    {objective}
  }}
  max_trials        = {max_trials}
  max_concurrent    = 1
  max_failed_trials = 5
  param "x" {{
    type = "uniform"
    low  = 0
    high = 1
  }}
  trial {{
    command = "python3 {{cfg}}/trial.py ${{trial.number}} ${{trial.id}}"
    workdir = "{workdir}"
    retries = {retries}
    {trial_extra}
  }}
}}
"""


# Trial 0 runs BODY (with `n`, the trial number, `tid`, its id, and `out`, binary stdout);
# later trials print one good value, so a second apply shows that nothing is wedged.
TRIAL = """\
import json, os, sys
n, tid = int(sys.argv[1]), sys.argv[2]
out = sys.stdout.buffer
if n == 0:
{body}
else:
    out.write(b"acc=0.5\\n")
"""


def setup(tmp_path: Path, body: str, **kwargs) -> Path:
    directory = tmp_path / "cfg"
    hcl = config(**kwargs).replace("{cfg}", str(directory))
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return write(directory, {"main.hcl": hcl, "trial.py": TRIAL.format(body=indented)})


def apply(directory: Path, *args: str):
    result = run_cli(directory, "apply", "--auto-approve", *args, timeout=300)
    assert "Traceback" not in result.text, result.text
    return result


def trials(directory: Path) -> list[dict]:
    result = run_cli(directory, "show", "experiment.demo", "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)


def logs(directory: Path, *args: str) -> str:
    result = run_cli(directory, "logs", "experiment.demo", *args, timeout=300)
    assert result.code == 0, result.text
    return result.out


def raise_max_trials(directory: Path, to: int) -> None:
    hcl = (directory / "main.hcl").read_text()
    (directory / "main.hcl").write_text(hcl.replace("max_trials        = 1", f"max_trials = {to}"))


# -- item 4: a metric printed after any amount of output is read ------------------------


def test_metric_after_5_mb_of_output_is_read(tmp_path: Path) -> None:
    directory = setup(
        tmp_path,
        """
        line = b"loss curve plotted in ascii: " + b"." * 70 + b"\\n"
        for _ in range(5 * (1 << 20) // len(line) + 1):
            out.write(line)
        out.write(b"acc=0.75\\n")
        """,
    )
    result = apply(directory)
    assert result.code == 0, result.text
    [trial] = trials(directory)
    assert (trial["status"], trial["value"]) == ("complete", 0.75), trial
    # `tunectl logs` prints the whole output too, not its first read.
    text = logs(directory)
    assert len(text) > 5 * MB and text.endswith("acc=0.75\n")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (9 * MB, b""),  # a 9 MB line ending in the metric
        (4 * MB - 5, b" and then more text"),  # the metric straddles the first read's end
    ],
    ids=["metric-ends-a-9MB-line", "metric-across-a-read-boundary"],
)
def test_metric_inside_a_line_longer_than_a_read(tmp_path: Path, before: int, after: bytes) -> None:
    directory = setup(
        tmp_path,
        f"""
        out.write(b"x" * {before} + b" acc=0.625" + {after!r} + b"\\n")
        out.write(b"@tunectl " + b"z" * (5 * (1 << 20)) + b"\\n")
        out.write(b"done\\n")
        """,
    )
    result = apply(directory)
    assert result.code == 0, result.text
    [trial] = trials(directory)
    assert (trial["status"], trial["value"]) == ("complete", 0.625), trial
    assert "the line is too long to be a report" in result.out  # the 5 MB report line


def test_metric_after_the_first_read_of_a_running_trial_is_read(tmp_path: Path) -> None:
    # The task runs while apply reads (several passes), then ends with more left to read.
    directory = setup(
        tmp_path,
        """
        import time
        chunk = (b"y" * 1023 + b"\\n") * 1024
        for i in range(12):
            out.write(chunk)
            out.flush()
            time.sleep(0.05)
        out.write(b'@tunectl {"metrics": {"acc": 0.875}, "step": 3}\\n')
        """,
    )
    result = apply(directory)
    assert result.code == 0, result.text
    [trial] = trials(directory)
    assert (trial["status"], trial["value"]) == ("complete", 0.875), trial


# -- item 5: steps and values are validated ---------------------------------------------

GOOD = 'out.write(b"acc=0.25\\n")'

SKIPPED = {
    "step-10**30": (
        b'@tunectl {"metrics": {"acc": 0.9}, "step": 1000000000000000000000000000000}',
        "step 10000000...(31 digits) is outside [0, 2^63)",
    ),
    "step-2**63": (
        b'@tunectl {"metrics": {"acc": 0.9}, "step": 9223372036854775808}',
        "step 9223372036854775808 is outside [0, 2^63)",
    ),
    "step-minus-1": (
        b'@tunectl {"metrics": {"acc": 0.9}, "step": -1}',
        "step -1 is outside [0, 2^63)",
    ),
    "step-1.5": (b'@tunectl {"metrics": {"acc": 0.9}, "step": 1.5}', "step 1.5 is not an integer"),
    "step-Infinity": (
        b'@tunectl {"metrics": {"acc": 0.9}, "step": Infinity}',
        "step Infinity is not an integer",
    ),
    "step-true": (b'@tunectl {"metrics": {"acc": 0.9}, "step": true}', "step true is not"),
    "garbage-json": (b"@tunectl {acc: 0.9, step: 1", "not valid JSON"),
    "not-an-object": (b"@tunectl [0.9]", "not a JSON object"),
    "string-value": (b'@tunectl {"metrics": {"acc": "high"}, "step": 1}', 'metric "acc" is'),
}


@pytest.mark.parametrize("case", sorted(SKIPPED))
def test_malformed_report_line_is_skipped_with_a_warning(tmp_path: Path, case: str) -> None:
    line, why = SKIPPED[case]
    directory = setup(tmp_path, f"out.write({line + NL!r})\n{GOOD}")
    result = apply(directory)
    assert result.code == 0, result.text
    assert "trial 0: skipped a malformed report line: " + why in result.out, result.out
    [trial] = trials(directory)
    assert (trial["status"], trial["value"]) == ("complete", 0.25), trial
    # The trial's log marks the skipped line, right after it.
    text = logs(directory)
    assert line.decode() + "\ntunectl: warning: the report line above was skipped: " in text
    assert why in text
    # Nothing is wedged: the next apply runs another trial.
    raise_max_trials(directory, 2)
    result = apply(directory)
    assert result.code == 0, result.text
    assert [t["status"] for t in trials(directory)] == ["complete", "complete"]


FAILING = {
    "report-NaN": (b'@tunectl {"metrics": {"acc": NaN}, "step": 2}', "NaN at step 2"),
    "report-Infinity": (
        b'@tunectl {"metrics": {"acc": Infinity}, "step": 2}',
        "an infinite value at step 2",
    ),
    "report-1e999": (b'@tunectl {"metrics": {"acc": 1e999}}', "an infinite value;"),
    "report-huge-int": (b'@tunectl {"metrics": {"acc": -1' + b"0" * 400 + b"}}", "infinite"),
    "stdout-nan": (b"acc=nan", "NaN at step 2"),
    "stdout-1e999": (b"acc=1e999", "an infinite value at step 2"),
    "stdout-Infinity": (b"acc = -Infinity", "an infinite value at step 2"),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_nan_or_infinite_value_fails_the_trial_naming_the_metric(
    tmp_path: Path, case: str
) -> None:
    line, why = FAILING[case]
    directory = setup(tmp_path, f"{GOOD}\nout.write({line + NL!r})\n{GOOD}")
    result = apply(directory)
    assert result.code in (0, 1), result.text  # the experiment fails: no complete trial
    [trial] = trials(directory)
    assert trial["status"] == "failed", trial
    assert trial["message"].startswith('metric "acc" reported '), trial
    assert why.rstrip(";") in trial["message"], trial
    assert trial["message"].endswith("a NaN or infinite value fails the trial"), trial
    assert "trial 0 failed (metric \"acc\" reported" in result.out, result.out
    raise_max_trials(directory, 2)
    result = apply(directory)
    assert result.code == 0, result.text
    assert [t["status"] for t in trials(directory)] == ["failed", "complete"]


def test_a_metric_that_is_not_a_number_is_skipped_with_a_warning(tmp_path: Path) -> None:
    directory = setup(
        tmp_path,
        f"""
        out.write(b"acc=1.2.3 (not a number)\\n")
        {GOOD}
        """,
        trial_extra='metrics "stdout" {\n      pattern = "acc=([0-9.]+)"\n    }',
    )
    result = apply(directory)
    assert result.code == 0, result.text
    assert 'skipped a malformed metric value: "1.2.3" for "acc" is not a number' in result.out
    [trial] = trials(directory)
    assert (trial["status"], trial["value"]) == ("complete", 0.25), trial


def test_only_the_first_warnings_are_shown(tmp_path: Path) -> None:
    directory = setup(
        tmp_path,
        f"""
        for step in range(50):
            out.write(b'@tunectl {{"metrics": {{"acc": 0.1}}, "step": 0.5}}\\n')
        {GOOD}
        """,
    )
    result = apply(directory)
    assert result.code == 0, result.text
    assert result.out.count("skipped a malformed report line") == 5, result.out
    assert "more malformed lines skipped; `tunectl logs experiment.demo.trial[0]`" in result.out
    assert logs(directory).count("tunectl: warning: the report line above was skipped") == 50


def test_a_state_holding_infinite_values_does_not_crash_plan_or_apply(tmp_path: Path) -> None:
    # What a state written before this check may hold: infinite values in a trial's value,
    # its values and its metrics (SQLite stores inf; NaN comes back as NULL).
    directory = setup(tmp_path, 'out.write(b"acc=0.5\\nacc=0.75\\n")')
    assert apply(directory).code == 0
    with sqlite3.connect(directory / "state" / "tunectl.db") as db:
        db.execute("UPDATE trials SET value = 9e999, \"values\" = '{\"acc\": Infinity}'")
        db.execute("UPDATE metrics SET value = -9e999 WHERE step = 1")
    for args in (("plan",), ("show",), ("show", "experiment.demo"), ("output",)):
        result = run_cli(directory, *args)
        assert "Traceback" not in result.text and result.code == 0, (args, result.text)
    raise_max_trials(directory, 2)
    result = apply(directory)
    assert result.code == 0, result.text
    assert [t["status"] for t in trials(directory)] == ["complete", "complete"]


# -- item 6: a weighted objective's best is its best step ------------------------------


@pytest.mark.parametrize(
    ("reduce", "value", "values"),
    [
        # Per step, acc - loss is 0.1, 0.5, 0.2: the best is step 2, with its own acc and
        # loss (not the best acc of step 1 with the lowest loss of step 2: 0.8).
        ("best", 0.5, {"acc": 0.6, "loss": 0.1}),
        ("avg", (0.1 + 0.5 + 0.2) / 3, None),
        ("final", 0.2, {"acc": 0.7, "loss": 0.5}),
    ],
)
def test_weighted_objective_reduces_the_per_step_weighted_value(
    tmp_path: Path, reduce: str, value: float, values: dict | None
) -> None:
    directory = setup(
        tmp_path,
        """
        import tunectl
        for step, (acc, loss) in enumerate([(0.9, 0.8), (0.6, 0.1), (0.7, 0.5)], 1):
            tunectl.report(step=step, acc=acc, loss=loss)
        """,
        objective=(
            "metrics   = { acc = 1, loss = -1 }\n"
            '    direction = "maximize"\n'
            f'    reduce    = "{reduce}"'
        ),
    )
    result = apply(directory)
    assert result.code == 0, result.text
    [trial] = trials(directory)
    assert trial["status"] == "complete", trial
    assert trial["value"] == pytest.approx(value)
    if values is not None:
        assert trial["values"] == pytest.approx(values)


def test_weighted_best_without_a_common_step_says_so(tmp_path: Path) -> None:
    directory = setup(
        tmp_path,
        """
        import tunectl
        tunectl.report(step=1, acc=0.9)
        tunectl.report(step=2, loss=0.1)
        """,
        objective='metrics   = { acc = 1, loss = -1 }\n    direction = "maximize"\n'
        '    reduce    = "best"',
    )
    apply(directory)
    [trial] = trials(directory)
    assert trial["status"] == "failed"
    assert trial["message"].startswith("the trial never reported acc, loss at the same step")


# -- item 7: a metrics file is the trial's own -----------------------------------------


def _json_metrics(path: str) -> str:
    return f'metrics "json" {{\n      path = "{path}"\n    }}'


@pytest.mark.parametrize(
    ("path", "workdir"),
    [
        ("metrics.jsonl", "."),
        ("/tmp/tunectl-metrics.jsonl", "."),
        ("m-${trial.number}.jsonl", "."),  # trial 0 of every experiment and generation
        ("/tmp/m-${param.x}.jsonl", "${trial.model_dir}"),  # absolute: not in the workdir
    ],
)
def test_a_shared_metrics_file_is_refused_at_validate(
    tmp_path: Path, path: str, workdir: str
) -> None:
    directory = setup(tmp_path, GOOD, trial_extra=_json_metrics(path), workdir=workdir)
    result = run_cli(directory, "validate")
    assert result.code == 1, result.text
    assert "Error: Metrics file shared by trials" in result.out + result.err
    text = result.out + result.err
    lines = (directory / "main.hcl").read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.strip().startswith("path ="))
    assert f"on main.hcl line {number}" in text and f'path = "{path}"' in text, text
    assert "Make the path unique per trial with ${trial.id}" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("path", "workdir"),
    [
        ("metrics-${trial.id}.jsonl", "."),
        ("${trial.model_dir}/metrics.jsonl", "."),
        ("metrics.jsonl", "${trial.model_dir}"),
    ],
)
def test_a_per_trial_metrics_file_is_valid(tmp_path: Path, path: str, workdir: str) -> None:
    directory = setup(tmp_path, GOOD, trial_extra=_json_metrics(path), workdir=workdir)
    result = run_cli(directory, "validate")
    assert result.code == 0, result.text
    assert "Success! The configuration is valid." in result.out


def test_an_unknown_placeholder_in_a_metrics_path_is_refused(tmp_path: Path) -> None:
    directory = setup(tmp_path, GOOD, trial_extra=_json_metrics("m-${trial.idd}.jsonl"))
    result = run_cli(directory, "validate")
    assert result.code == 1 and '"trial.idd" is not a trial placeholder' in result.text


def test_a_file_present_before_the_trial_started_is_never_read(tmp_path: Path) -> None:
    directory = setup(
        tmp_path,
        """
        with open(f"metrics-{tid}.jsonl", "a") as f:
            f.write(json.dumps({"step": 1, "acc": 0.25}) + "\\n")
            f.write("{not json\\n")
            f.write(json.dumps({"step": 2, "acc": 0.5, "note": "text is not a metric"}) + "\\n")
        """,
        objective='metric    = "acc"\n    direction = "maximize"\n    reduce    = "best"',
        trial_extra=_json_metrics("metrics-${trial.id}.jsonl"),
    )
    # Left over from another run (another state, the same experiment name): a better
    # value than the trial will report, which must not become the trial's.
    (directory / "metrics-demo-g1-t0.jsonl").write_text('{"step": 1, "acc": 0.99}\n')
    result = apply(directory)
    assert result.code == 0, result.text
    [trial] = trials(directory)
    assert (trial["status"], trial["value"]) == ("complete", 0.5), trial
    assert "metrics-demo-g1-t0.jsonl: skipped a malformed JSON line: not valid JSON" in result.out


def test_a_metrics_file_is_read_to_its_end(tmp_path: Path) -> None:
    # 6 MB of lines without a metric (labels only), then the value: more than one read.
    directory = setup(
        tmp_path,
        """
        with open(f"metrics-{tid}.jsonl", "w") as f:
            pad = json.dumps({"note": "x" * 200}) + "\\n"
            f.write(pad * (6 * (1 << 20) // len(pad)))
            f.write(json.dumps({"step": 1, "acc": 0.8125}) + "\\n")
        """,
        trial_extra=_json_metrics("metrics-${trial.id}.jsonl"),
    )
    result = apply(directory)
    assert result.code == 0, result.text
    [trial] = trials(directory)
    assert (trial["status"], trial["value"]) == ("complete", 0.8125), trial


def test_a_relaunched_trial_reads_only_its_own_lines(tmp_path: Path) -> None:
    # Attempt 1 writes two steps then fails; attempt 2 appends its own and succeeds. The
    # first attempt's lines are read once (by its task), never again by the second.
    directory = setup(
        tmp_path,
        """
        path = f"metrics-{tid}.jsonl"
        first = not os.path.exists(path)
        with open(path, "a") as f:
            for step in (1, 2):
                f.write(json.dumps({"step": step, "acc": 0.1 if first else 0.3}) + "\\n")
        sys.exit(3 if first else 0)
        """,
        objective='metric    = "acc"\n    direction = "maximize"\n    reduce    = "avg"',
        trial_extra=_json_metrics("metrics-${trial.id}.jsonl"),
        retries=1,
    )
    result = apply(directory)
    assert result.code == 0, result.text
    [trial] = trials(directory)
    assert (trial["status"], trial["attempt"]) == ("complete", 1), trial
    with sqlite3.connect(directory / "state" / "tunectl.db") as db:
        rows = db.execute("SELECT step, value FROM metrics ORDER BY rowid").fetchall()
    assert rows == [(1, 0.1), (2, 0.1), (1, 0.3), (2, 0.3)]


# -- bounded memory however long the output (slow: CI runs it bounded) ------------------


def _peak_rss_mb(directory: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    """Run the CLI in a fresh interpreter and return the largest RSS of its children."""
    probe = (
        "import resource, subprocess, sys\n"
        "proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(proc.stdout + proc.stderr)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(proc.returncode)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "-m", "tunectl", "--chdir", str(directory)]
        + list(args),
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=1200,
    )
    return int(proc.stdout.splitlines()[-1]) / 1024, proc


@pytest.mark.slow
def test_memory_stays_flat_however_much_a_trial_prints(tmp_path: Path) -> None:
    size_mb = 200 if os.environ.get("TUNECTL_SOAK") == "full" else 48
    # The trial itself stays small: it writes the same 1 MB block over and over.
    body = f"""
        block = (b"epoch log line without a metric in it, padded out to a round length\\n"
                 * 15420)
        for _ in range({size_mb}):
            out.write(block)
        out.write(b"acc=0.6875\\n")
        """
    small = setup(tmp_path / "small", GOOD)
    large = setup(tmp_path / "large", body)
    base, proc = _peak_rss_mb(small, "apply", "--auto-approve")
    assert proc.returncode == 0, proc.stdout
    peak, proc = _peak_rss_mb(large, "apply", "--auto-approve")
    assert proc.returncode == 0, proc.stdout
    [trial] = trials(large)
    assert (trial["status"], trial["value"]) == ("complete", 0.6875), trial
    print(f"\npeak RSS of apply: {base:.0f} MB (tiny output), {peak:.0f} MB ({size_mb} MB output)")
    # Reads are 4 MB each and recorded before the next: the output's size does not show.
    assert peak < base + 48, (base, peak)
