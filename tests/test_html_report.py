"""`ftbench report --format html`: one self-contained page, checked as text and in a
real browser (headless Chromium from the OS packages, driven by Playwright)."""

import html
import io
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftbench.cli.report import report as report_command
from ftbench.report import build_report
from ftbench.report.html import is_self_contained, render_html
from ftbench.results.store import RESOLVED_SUITE
from ftbench.results.records import load_records
from tests.fixtures.report_records import make_records, write_records

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """(html path, the Report it shows) for the fixture study, written by the CLI."""
    folder = write_records(make_records(), tmp_path_factory.mktemp("html") / "fixture")
    (folder / RESOLVED_SUITE).write_text("name: fixture\nseeds: [0, 1, 2]\n")
    out = folder.parent / "report.html"
    result = CliRunner().invoke(report_command, [str(folder), "--format", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out, build_report(load_records(folder))


def test_the_page_is_self_contained_and_holds_every_table(page):
    path, report = page
    text = path.read_text()
    assert is_self_contained(text) and not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", text)
    for table in report.tables:
        assert f'id="{table.key}"' in text and html.escape(table.title) in text
        assert all(html.escape(note) in text for note in table.notes)
    assert "seeds: [0, 1, 2]" in text  # the suite's config
    pytest.importorskip("matplotlib")
    assert text.count("<svg") >= 3 and text.count("<figure") == text.count("<svg")


def test_is_self_contained_catches_external_resources():
    assert not is_self_contained('<script src="https://cdn.example/x.js"></script>')
    assert not is_self_contained('<link rel="stylesheet" href="style.css">')
    assert is_self_contained("<script>var a = 1;</script>")


def test_without_suite_config_the_page_still_renders():
    page = render_html(build_report(make_records(seeds=2, datasets=("digits",), data=(0,))))
    assert "Suite config" not in page and page.startswith("<!DOCTYPE html>")


@pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (apt-get install chromium); .ci/run installs it")
def test_the_page_renders_and_sorts_in_headless_chromium(page, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (ftbench[browser])")
    Image = pytest.importorskip("PIL.Image")
    import numpy as np

    path, report = page
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1200, "height": 900})
            requests = []
            tab.on("request", lambda r: requests.append(r.url))
            tab.goto(path.as_uri())
            assert all(u.startswith("file:") for u in requests), requests  # nothing from the network
            shown = [t for t in report.tables if not t.empty]
            tables = tab.locator("table.sortable")
            assert tables.count() == len(shown)
            for i, table in enumerate(shown):
                assert tables.nth(i).locator("tbody tr").count() == len(table.rows)
            svgs = tab.locator("figure svg")
            assert svgs.count() >= 3
            for i in range(svgs.count()):
                box = svgs.nth(i).bounding_box()
                assert box and box["width"] > 100 and box["height"] > 50
            # Sort the accuracy table by accuracy, twice: ascending then descending (unfolded first).
            accuracy = tab.locator('table[data-key="accuracy"]')
            assert not accuracy.is_visible()  # detailed tables are folded under the figures
            tab.locator("details", has=accuracy).locator("summary").click()
            col = report.table("accuracy").headers.index("Acc (%)")
            header = accuracy.locator("th").nth(col)
            values = lambda: [float(v) if v else float("inf") for v in  # noqa: E731
                              accuracy.locator(f"tbody tr td:nth-child({col + 1})").evaluate_all(
                                  "cells => cells.map(c => c.getAttribute('data-v'))")]
            header.click()
            assert header.get_attribute("aria-sort") == "ascending"
            up = [v for v in values() if v != float("inf")]
            assert up == sorted(up) and len(up) >= 2
            header.click()
            down = [v for v in values() if v != float("inf")]
            assert down == sorted(down, reverse=True)
            shot = tab.screenshot(full_page=False)
        finally:
            browser.close()
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"), dtype=float)
    assert pixels.shape == (900, 1200)
    assert pixels.std() > 10  # text and lines, not a blank page
    assert (pixels < 128).mean() > 0.01
    Path(tmp_path / "report.png").write_bytes(shot)
