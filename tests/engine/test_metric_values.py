"""Unit tests of metric lines and values: validation, over-long lines, weighted reduction."""

from __future__ import annotations

import math

import pytest

from tunectl.config.model import MetricsSource, Objective
from tunectl.engine.metrics import (
    MAX_STEP,
    JsonLinesParser,
    Malformed,
    MetricsParser,
    Sample,
    check_step,
    report_line_problem,
)
from tunectl.engine.objective import combine, metric_values, weighted_series


def parser(*patterns: str) -> MetricsParser:
    sources = [MetricsSource("stdout", (("pattern", p),)) for p in patterns]
    return MetricsParser(sources, ["acc"])


# -- steps --------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [0, 1, 3.0, MAX_STEP - 1, None])
def test_good_steps(step):
    assert check_step(step) == (None if step is None else int(step))


@pytest.mark.parametrize(
    ("step", "why"),
    [
        (-1, "step -1 is outside [0, 2^63)"),
        (MAX_STEP, "is outside [0, 2^63)"),
        (10**30, "step 10000000...(31 digits) is outside"),
        (1e30, "step 1e+30 is outside"),
        (1.5, "step 1.5 is not an integer"),
        (math.inf, "step Infinity is not an integer"),
        (math.nan, "step NaN is not an integer"),
        (True, "step true is not an integer"),
        ("3", 'step "3" is not an integer'),
    ],
)
def test_bad_steps(step, why):
    with pytest.raises(Malformed, match=None) as info:
        check_step(step)
    assert why in str(info.value)


# -- report lines ---------------------------------------------------------------------------


def test_report_lines_and_their_problems():
    p = parser()
    lines = [
        '@tunectl {"metrics": {"acc": 0.5}, "step": 1}',
        '@tunectl {"metrics": {"acc": 0.5}, "step": 1e30}',
        "@tunectl {nope",
        '@tunectl {"metrics": {"acc": NaN}, "step": 2}',
        '@tunectl {"metrics": {"acc": 1' + "0" * 400 + "}}",
        "acc=0.75",
    ]
    samples = p.feed(lines)
    assert samples[0] == Sample("acc", 1, 0.5)
    assert samples[1].step == 2 and math.isnan(samples[1].value)
    assert samples[2] == Sample("acc", None, math.inf)  # an int too big for a float
    assert samples[3] == Sample("acc", 1, 0.75)
    warnings = p.take_warnings()
    assert len(warnings) == 2 and p.take_warnings() == []
    assert "step 1e+30 is outside [0, 2^63)" in warnings[0]
    assert "not valid JSON" in warnings[1]
    assert report_line_problem(lines[0]) is None
    assert report_line_problem(lines[1]) == "step 1e+30 is outside [0, 2^63)"
    assert report_line_problem(lines[3]) is None  # a value, not a line, problem
    assert report_line_problem("acc=1") is None


def test_deeply_nested_json_is_malformed_not_a_crash():
    assert report_line_problem("@tunectl " + "[" * 100_000) is not None


def test_default_pattern_reads_nan_and_infinity_in_any_case():
    samples = parser().feed(["acc=NaN", "acc: inf", "acc=-Infinity", "val_acc=0.3"])
    assert [s.step for s in samples] == [1, 2, 3]
    assert math.isnan(samples[0].value) and samples[1].value == math.inf
    assert samples[2].value == -math.inf


def test_a_capture_that_is_not_a_number_is_skipped_with_a_warning():
    p = parser(r"acc=([0-9.]+)")
    assert p.feed(["acc=1.2.3", "acc=0.5"]) == [Sample("acc", 1, 0.5)]
    assert p.take_warnings() == [
        'skipped a malformed metric value: "1.2.3" for "acc" is not a number: acc=1.2.3'
    ]


# -- over-long lines in pieces ------------------------------------------------------------


def _pieces(text: str, size: int) -> list[tuple[list[str], bool]]:
    """One unterminated line handed out as a provider does: partial pieces, then the end."""
    chunks = [text[i : i + size] for i in range(0, len(text), size)]
    return [([c], i < len(chunks) - 1) for i, c in enumerate(chunks)]


@pytest.mark.parametrize("where", [0, 1, 4 << 20, (4 << 20) - 4, (4 << 20) - 9, 9 << 20])
def test_a_metric_anywhere_in_a_long_line_is_found_once(where):
    line = "x" * where + " acc=0.625 " + "y" * ((10 << 20) - where)
    p = parser()
    found: list[Sample] = []
    for lines, partial in _pieces(line, 4 << 20):
        found += p.feed(lines, partial)
    assert found == [Sample("acc", 1, 0.625)]


def test_many_metrics_in_a_long_line_keep_their_order_and_steps():
    line = "".join(f"acc={i / 1000:.3f} " + "z" * 5000 + " " for i in range(2000))
    p = parser()
    found: list[Sample] = []
    for lines, partial in _pieces(line, 1 << 20):
        found += p.feed(lines, partial)
    assert [s.step for s in found] == list(range(1, 2001))
    assert [s.value for s in found] == [i / 1000 for i in range(2000)]


def test_lines_after_a_long_line_are_read_as_lines():
    p = parser()
    first = p.feed(["a", "x" * 100], partial=True)
    rest = p.feed(["x acc=0.5", "@tunectl " + '{"metrics": {"acc": 0.25}}'])
    assert first == [] and rest == [Sample("acc", 1, 0.5), Sample("acc", None, 0.25)]


def test_a_long_report_line_is_skipped_once_with_a_warning():
    p = parser()
    assert p.feed(["@tunectl {" + "1" * 100], partial=True) == []
    assert p.feed(["acc=0.9 still the report line"], partial=True) == []
    assert p.feed(["}", "acc=0.5"]) == [Sample("acc", 1, 0.5)]
    [warning] = p.take_warnings()
    assert "the line is too long to be a report" in warning


def test_json_lines_long_line_blank_lines_and_flat_objects():
    p = JsonLinesParser()
    assert p.feed(['{"step": 1, "acc": 0.1, "tag": "a"}', "", '{"a": 1'], partial=True) == [
        Sample("acc", 1, 0.1)
    ]
    assert p.feed(["2}", '{"step": 2, "metrics": {"acc": 0.2}}', "[1]"]) == [
        Sample("acc", 2, 0.2)
    ]
    warnings = p.take_warnings()
    assert [w.split(":")[0] for w in warnings] == ["skipped a malformed JSON line"] * 2
    assert "too long" in warnings[0] and "not a JSON object" in warnings[1]


def test_in_the_report_form_a_value_must_be_a_number():
    p = JsonLinesParser()
    assert p.feed(['{"step": 1, "metrics": {"acc": true}}']) == []
    assert 'metric "acc" is true, not a number' in p.take_warnings()[0]


# -- weighted objectives --------------------------------------------------------------------

WEIGHTED = Objective("maximize", metrics=(("acc", 1.0), ("loss", -1.0)), reduce="best")
SERIES = {
    "acc": [(1, 0.9), (2, 0.6), (3, 0.7)],
    "loss": [(1, 0.8), (2, 0.1), (3, 0.5)],
}


def test_weighted_best_is_the_best_step_and_values_come_from_it():
    value, points = combine(SERIES, WEIGHTED)
    assert value == pytest.approx(0.5)
    assert [s for s, _ in points] == [1, 2, 3]
    assert metric_values(SERIES, WEIGHTED) == {"acc": 0.6, "loss": 0.1}


def test_weighted_avg_and_minimize():
    avg = Objective("maximize", metrics=WEIGHTED.metrics, reduce="avg")
    assert combine(SERIES, avg)[0] == pytest.approx((0.1 + 0.5 + 0.2) / 3)
    low = Objective("minimize", metrics=WEIGHTED.metrics, reduce="best")
    assert combine(SERIES, low)[0] == pytest.approx(0.1)


def test_weighted_final_only_reports_make_a_final_point():
    series = {"acc": [(1, 0.5), (None, 0.8)], "loss": [(1, 0.4), (None, 0.3)]}
    assert weighted_series(series, WEIGHTED.metrics) == [
        (1, pytest.approx(0.1)),
        (None, pytest.approx(0.5)),
    ]
    final = Objective("maximize", metrics=WEIGHTED.metrics)
    assert combine(series, final)[0] == pytest.approx(0.5)
    assert metric_values(series, WEIGHTED) == {"acc": 0.8, "loss": 0.3}


def test_weighted_without_a_common_step():
    series = {"acc": [(1, 0.9)], "loss": [(2, 0.1)]}
    assert combine(series, WEIGHTED) == (None, [])
    # `final` takes each metric's own last value then.
    final = Objective("maximize", metrics=WEIGHTED.metrics)
    assert combine(series, final)[0] == pytest.approx(0.8)


def test_a_negative_weight_metric_is_reduced_toward_its_own_good_side():
    avg_free = {"acc": [(1, 0.5)], "loss": [(1, 0.9), (2, 0.2)], "lr": [(1, 3.0), (2, 1.0)]}
    single = Objective("maximize", metric="acc", reduce="best")
    weighted = Objective("maximize", metrics=(("acc", 1.0), ("loss", -1.0)), reduce="avg")
    assert metric_values(avg_free, single)["lr"] == 3.0
    assert metric_values(avg_free, weighted)["loss"] == pytest.approx(0.55)


def test_infinite_values_in_an_old_state_are_ignored():
    series = {"acc": [(1, math.inf), (2, 0.4)], "loss": [(1, 0.1), (2, -math.inf)]}
    assert combine(series, WEIGHTED) == (None, [])
    assert combine({"acc": [(1, math.inf), (2, 0.4)]}, Objective("maximize", metric="acc")) == (
        0.4,
        [(2, 0.4)],
    )


def test_report_creates_the_metrics_file_directory(tmp_path, monkeypatch, capsys):
    import tunectl

    path = tmp_path / "metrics" / "demo-g1-t0.jsonl"
    monkeypatch.setenv("TUNECTL_METRICS_FILE", str(path))
    tunectl.report(step=1, acc=0.5)
    assert path.read_text() == '{"metrics":{"acc":0.5},"step":1}\n'
    assert capsys.readouterr().out == '@tunectl {"metrics":{"acc":0.5},"step":1}\n'
