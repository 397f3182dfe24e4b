"""What does `numerics: portable` cost? The quickstart timed in both modes, side by side.

Runs `ftbench run suites/quickstart.yaml` (pretraining with an empty checkpoint
cache, the search's trials, the final runs) with `-o numerics=default` and
`-o numerics=portable`, alternating, each in a fresh results folder and cache, and
prints each pair's wall seconds and the portable/default ratio, then the median
ratio. The two modes' searches may prune different trials (other last bits, other
validation scores), so the work differs too: it also prints the training samples
of each and the ratio of training seconds per sample (from the records), the cost
of the same work. `--seeds 0,1` times a smaller quickstart (every trial, two final
seeds).

    python benchmarks/numerics_cost.py [--repeats 2] [--seeds 0,1] [--suite suites/quickstart.yaml]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ftbench.numerics import PORTABLE_ENV

ROOT = Path(__file__).resolve().parents[1]


def _work(folder: Path) -> tuple[float, float]:
    """(training samples, training seconds) summed over the final runs and the trials:
    the two modes' searches may prune different trials, so their work differs."""
    samples = seconds = 0.0
    for path in [*folder.glob("*.json"), *folder.glob("trials/*.json")]:
        record = json.loads(path.read_text())
        if record.get("format") == "ftbench.run/1":
            samples += ((record.get("budget") or {}).get("used") or {}).get("samples") or 0
            seconds += (record.get("timing") or {}).get("train_s") or 0.0
    return samples, seconds


def _timed(suite: str, mode: str, seeds: str | None, tmp: Path, tag: str) -> float:
    args = [sys.executable, "-m", "ftbench", "run", suite, "--results", str(tmp / tag), "-q", "-o",
            f"numerics={mode}"] + (["-o", f"seeds=[{seeds}]"] if seeds else [])
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_ENV}
    env.update(FTBENCH_CACHE=str(tmp / f"cache-{tag}"), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    t0 = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{tag}: ftbench run failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="suites/quickstart.yaml")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seeds", help="final seeds, e.g. 0,1 [default: the suite's]")
    args = parser.parse_args()
    ratios, speed_ratios = [], []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for rep in range(args.repeats):
            order = ("default", "portable") if rep % 2 == 0 else ("portable", "default")
            seconds = {mode: _timed(args.suite, mode, args.seeds, tmp, f"{mode}-{rep}") for mode in order}
            work = {mode: _work(tmp / f"{mode}-{rep}") for mode in order}
            speed = {mode: samples / train_s for mode, (samples, train_s) in work.items()}
            ratios.append(seconds["portable"] / seconds["default"])
            speed_ratios.append(speed["default"] / speed["portable"])
            print(f"repeat {rep + 1}: default {seconds['default']:.0f} s wall, {work['default'][0]:,.0f} samples at "
                  f"{speed['default']:.0f}/s; portable {seconds['portable']:.0f} s, {work['portable'][0]:,.0f} samples "
                  f"at {speed['portable']:.0f}/s; wall ratio {ratios[-1]:.2f}, time per sample ratio "
                  f"{speed_ratios[-1]:.2f}", flush=True)
    print(f"portable / default, median of {len(ratios)}: wall {statistics.median(ratios):.2f} (cold cache: "
          f"pretraining included), training time per sample {statistics.median(speed_ratios):.2f}")


if __name__ == "__main__":
    main()
