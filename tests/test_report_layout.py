"""What a reader sees first: the terminal's first screen (primary comparisons and
summary, then the full report's path), and the HTML page's figures before its
folded tables, with no two labels of a figure overlapping (measured in headless
Chromium, as rendered), for the test fixture and the committed reference."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ftbench import api
from ftbench.cli import cli
from tests.fixtures.report_records import make_records, write_records
from tests.test_html_report import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "reference" / "quickstart"


# Pairs of a figure's text boxes that intersect by more than a pixel each way, and
# texts that stick out of the figure (clipped).
_OVERLAPS = """svg => {
  const boxes = Array.from(svg.querySelectorAll("text")).map(t => {
    const r = t.getBoundingClientRect();
    return {t: t.textContent.trim(), x0: r.left, y0: r.top, x1: r.right, y1: r.bottom};
  }).filter(b => b.t && b.x1 > b.x0 && b.y1 > b.y0);
  const f = svg.getBoundingClientRect(), out = [];
  for (const b of boxes) if (b.x0 < f.left - 1 || b.x1 > f.right + 1 || b.y0 < f.top - 1 || b.y1 > f.bottom + 1)
    out.push(`${b.t} (outside the figure)`);
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    const w = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0), h = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
    if (w > 1 && h > 1) out.push(`${a.t} / ${b.t}`);
  }
  return [boxes.length, out];
}"""


def test_terminal_first_screen_then_the_full_reports_path(tmp_path):
    folder = write_records(make_records(), tmp_path / "r")
    short = CliRunner().invoke(cli, ["report", str(folder)], obj={})
    assert short.exit_code == 0, short.output
    page = folder / "report.html"
    assert f"full report (figures and every table): {page}" in short.stdout
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert "Summary per strategy" in short.stdout and "Primary comparisons" in short.stdout
    assert "Incomplete cells" in short.stdout  # failed seeds are never out of sight
    assert "\nAccuracy (" not in short.stdout and "Data efficiency" not in short.stdout
    everything = CliRunner().invoke(cli, ["report", str(folder), "--all"], obj={})
    assert "\nAccuracy (" in everything.stdout and "Data efficiency" in everything.stdout
    assert "full report" not in everything.stdout


def test_the_quickstart_reference_fits_one_screen():
    """The reference's first screen (in a 160-column terminal), up to the path, is
    at most 50 lines, and no note runs past the terminal's width."""
    from ftbench.cli.report import first_screen_text

    lines = first_screen_text(api.load(REFERENCE).report(), 160).splitlines()
    assert len(lines) <= 50, "\n".join(lines)
    notes = [line for line in lines if line.startswith("  ")]
    assert notes and max(map(len, notes)) <= 160


def _pages(tmp_path) -> dict[str, Path]:
    fixture = write_records(make_records(), tmp_path / "fixture")
    pages = {}
    for name, folder in (("fixture", fixture), ("reference", REFERENCE)):
        pages[name] = tmp_path / f"{name}.html"
        pages[name].write_text(api.load(folder).report().html)
    # A notebook's output cell: the repr inside a page of its own.
    pages["repr"] = tmp_path / "repr.html"
    pages["repr"].write_text(f"<!DOCTYPE html><html><body><p>Out[3]:</p>"
                             f"{api.load(fixture).report()._repr_html_()}</body></html>")
    return pages


@pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (apt-get install chromium); .ci/run installs it")
def test_figures_first_tables_folded_and_no_label_overlaps(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (ftbench[browser])")
    pytest.importorskip("matplotlib")
    pages = _pages(tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1200, "height": 900})
            for name in ("fixture", "reference"):
                tab.goto(pages[name].as_uri())
                figures = tab.locator("figure")
                assert figures.first.get_attribute("id") == "fig-forest", name
                ids = [figures.nth(i).get_attribute("id") for i in range(figures.count())]
                assert ids[:2] == ["fig-forest", "fig-data_efficiency"], ids
                first_table = tab.locator("details").first.bounding_box()
                assert figures.last.bounding_box()["y"] < first_table["y"]  # every figure before any table
                assert tab.locator('table[data-key="summary"]').is_visible()
                assert not tab.locator('table[data-key="accuracy"]').is_visible()
                for i in range(figures.count()):
                    count, overlaps = figures.nth(i).locator("svg").evaluate(_OVERLAPS)
                    assert count >= 3, ids[i]
                    assert overlaps == [], f"{name} {ids[i]}: overlapping labels {overlaps}"
                if name == "reference":
                    assert "fig-val_acc_vs_lr" in ids  # the learning-rate panels are among those checked
            tab.goto(pages["repr"].as_uri())
            inner = tab.frame_locator("iframe")
            assert inner.locator("figure svg").count() >= 3
            assert inner.locator("table.sortable").count() >= 3
            assert tab.locator("iframe").bounding_box()["height"] >= 600
        finally:
            browser.close()
