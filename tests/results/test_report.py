"""`tunectl report`: the self-contained HTML page (checked in a real headless Chromium),
the Markdown summary with PNG plots, and the missing extra."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli, write
from tests.results.conftest import CONFIG, TRIAL

PLOTS = ["history", "parallel", "importances", "slice", "contour", "curves"]


@pytest.fixture(scope="module")
def report(applied: Path) -> Path:
    result = run_cli(applied, "report", "experiment.demo", "-o", "out/report.html", timeout=300)
    assert result.code == 0, result.text
    assert result.out.strip() == "Wrote out/report.html"
    return applied / "out" / "report.html"


def test_html_is_self_contained(report: Path, applied: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # plotly.js is embedded once; nothing is loaded from elsewhere.
    assert page.count("<script type='text/javascript'>") == 1
    assert "<script src=" not in page and 'src="http' not in page
    assert "<link" not in page and "plotly.js v" in page  # the bundle itself
    for key in PLOTS:
        assert f'id="plot-{key}"' in page
    assert "Contour of " in page and "Intermediate values (pruned trials included)" in page
    assert "<h2>Trials</h2>" in page and "<h2>Configuration</h2>" in page
    assert "&quot;max_trials&quot;: 10" in page  # the configuration, escaped
    assert "class=best" in page


def _chromium() -> str:
    path = os.environ.get("TUNECTL_CHROMIUM") or shutil.which("chromium")
    if path is None:
        pytest.skip(
            "no chromium on PATH: .ci/run installs Debian's chromium package "
            "(apt-get install chromium); set TUNECTL_CHROMIUM to use another build"
        )
    return path


def test_report_draws_every_plot_in_a_browser(report: Path, tmp_path: Path) -> None:
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra")
    from PIL import Image

    problems: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "console",
                lambda m: (
                    problems.append(f"{m.type}: {m.text}")
                    if m.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri())
            page.wait_for_function(
                f"document.querySelectorAll('.plot svg.main-svg').length >= {len(PLOTS)}",
                timeout=60_000,
            )
            drawn = page.evaluate(
                """() => [...document.querySelectorAll('.plot')].map(d => {
                    const box = d.getBoundingClientRect();
                    return {key: d.dataset.plot, width: box.width, height: box.height,
                            marks: d.querySelectorAll(
                                'svg.main-svg path, svg.main-svg image').length,
                            traces: d.querySelectorAll('svg.main-svg g.trace').length};
                })"""
            )
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert all(url.startswith("file://") for url in requests), requests
    assert [d["key"] for d in drawn] == PLOTS
    for d in drawn:
        assert d["width"] > 300 and d["height"] > 300, d
        assert d["marks"] > 5 and d["traces"] >= 1, d
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    assert image.height > 3000  # six plots, tables and the configuration
    colors = image.resize((200, 600)).getcolors(maxcolors=1 << 16)
    assert colors is not None and len(colors) > 100  # drawn, not a blank page
    (tmp_path / "report.png").write_bytes(shot)


def test_markdown_with_png_plots(applied: Path) -> None:
    result = run_cli(
        applied, "report", "experiment.demo", "--markdown", "-o", "md/summary.md", timeout=300
    )
    assert result.code == 0, result.text
    assert result.out.strip() == f"Wrote md/summary.md and {len(PLOTS)} plots"
    text = (applied / "md" / "summary.md").read_text()
    assert text.startswith("### experiment.demo\n")
    assert "**Best: trial " in text and "| parameter | importance |" in text
    assert "| trial | state | layers | opt | x | acc |" in text
    for key in PLOTS:
        png = applied / "md" / f"summary-{key}.png"
        assert f"](summary-{key}.png)" in text
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_plots_a_single_trial_cannot_support_are_left_out(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "cfg", {"main.hcl": CONFIG.replace("max_trials        = 10",
                                                      "max_trials        = 1"),
                           "trial.py": TRIAL.replace("x > 0.95", "False")}
    )  # fmt: skip
    assert run_cli(directory, "apply", "--auto-approve").code == 0
    result = run_cli(directory, "report", "experiment.demo", "-o", "r.html")
    assert result.code == 0, result.text
    page = (directory / "r.html").read_text()
    assert "Not drawn: importances need two complete trials and a parameter." in page
    assert 'id="plot-history"' in page and 'id="plot-curves"' in page


def test_report_without_the_extra(applied: Path, tmp_path: Path) -> None:
    fake = tmp_path / "site" / "plotly"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not installed')\n")
    result = run_cli(applied, "report", "experiment.demo", env=cli_env(PYTHONPATH=str(fake.parent)))
    assert result.code == 1
    assert "The report extra is not installed" in result.err
    assert "pip install 'tunectl[report]'" in result.err and "Traceback" not in result.err
    assert not (applied / "report.html").exists()


def test_unwritable_output(applied: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = run_cli(applied, "report", "experiment.demo", "-o", str(tmp_path / "file" / "r.html"))
    assert result.code == 1
    assert "Cannot write the report" in result.err and "Traceback" not in result.err
