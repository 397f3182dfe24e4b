"""The speed gate compares throughput relative to a calibration loop run beside the
suite, so a busy or different machine does not fail unchanged code, and a real
slowdown of ftbench still fails."""

from __future__ import annotations

from ftbench.driver.calibrate import read_calibration, write_calibration
from ftbench.gate import SPEED_REGRESSION, Tolerances, compare, make_baseline


def _records(samples_per_s: list[float], device: str = "x86_64 cpu (2 threads)") -> list[dict]:
    return [{"id": f"r{seed}", "status": "ok", "seed": seed,
             "cell": {"backbone": "b", "dataset": "d", "strategy": "full", "data": "all"},
             "metrics": {"test": {"acc": 90.0 + seed / 10}}, "timing": {"samples_per_s": sps},
             "env": {"device_name": device}} for seed, sps in enumerate(samples_per_s)]


TOL = Tolerances(speed_ratio=0.7)
BASE = make_baseline(_records([1000, 1010, 990]), calibration=2000.0)


def _speed(current: dict):
    (row,) = compare(BASE, current, TOL).rows
    return row.speed_ratio, SPEED_REGRESSION in row.verdicts


def test_a_busy_machine_slows_runs_and_calibration_alike_and_passes():
    ratio, failed = _speed(make_baseline(_records([330, 340, 320]), calibration=660.0))  # 3x slower, both
    assert abs(ratio - 1.0) < 0.02 and not failed
    ratio, failed = _speed(make_baseline(_records([330, 340, 320])))  # uncalibrated: the old gate cries wolf
    assert ratio < 0.4 and failed


def test_a_planted_2x_slowdown_fails_under_the_same_load():
    ratio, failed = _speed(make_baseline(_records([165, 170, 160]), calibration=660.0))
    assert abs(ratio - 0.5) < 0.02 and failed


def test_calibrated_sides_compare_across_machines():
    ratio, failed = _speed(make_baseline(_records([4000, 4100, 3900], device="a GPU"), calibration=8000.0))
    assert abs(ratio - 1.0) < 0.02 and not failed


def test_calibration_file_round_trip(tmp_path):
    assert read_calibration(tmp_path) is None
    write_calibration(tmp_path, {"samples_per_s": 900.0}, {"samples_per_s": 1100.0})
    assert read_calibration(tmp_path) == 1000.0
