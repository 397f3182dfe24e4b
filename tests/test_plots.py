"""Plots read as figures should: plain log ticks, legends beside the data, a chance
line and the scratch reference in data efficiency, y = x under domain shift, named
points in accuracy vs time."""

from __future__ import annotations

import pytest

from ftbench.report import plots
from ftbench.report import build_report
from tests.fixtures.report_records import make_records

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def report():
    records = make_records(seeds=2)
    for rec in records:
        rec["data_amount"]["n_classes"] = 10
    return build_report(records)


def _draw(report, drawer):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    colors = {s: f"C{i}" for i, s in enumerate(sorted({c.strategy for c in report.study.ok}))}
    assert drawer(report, fig, colors)
    fig.canvas.draw()  # tick labels exist once drawn
    return fig


def _labels(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_data_efficiency_has_chance_scratch_and_plain_log_ticks(report):
    fig = _draw(report, plots._data_efficiency)
    labels = _labels(fig)
    assert "chance (10%)" in labels and any(l.startswith("scratch at ") for l in labels)
    assert not any(ax.get_legend() for ax in fig.axes)  # one legend, outside the panels
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert ticks and all("10^" not in t and "\\times" not in t and "$" not in t for t in ticks)


def test_domain_shift_draws_y_equals_x(report):
    assert "y = x (no drop under shift)" in _labels(_draw(report, plots._domain_shift))


def test_accuracy_vs_time_names_its_points(report):
    fig = _draw(report, plots._accuracy_vs_time)
    names = [t.get_text() for t in fig.axes[0].texts]
    assert len(names) == len(report.study.ok)  # one name per point: strategy, data amount, dataset
    assert {f"{c.strategy} {c.data} {c.dataset}" for c in report.study.ok} == set(names)
