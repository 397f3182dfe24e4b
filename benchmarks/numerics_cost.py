"""What does `numerics: portable` cost? The quickstart timed in both modes, side by side.

Runs `ftbench run suites/quickstart.yaml` (pretraining with an empty checkpoint
cache, the search's trials, the final runs) with `-o numerics=default` and
`-o numerics=portable`, alternating, each in a fresh results folder and cache, and
prints each pair's wall seconds and the portable/default ratio, then the median
ratio. `--seeds 0,1` times a smaller quickstart (every trial, two final seeds).

    python benchmarks/numerics_cost.py [--repeats 2] [--seeds 0,1] [--suite suites/quickstart.yaml]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ftbench.numerics import PORTABLE_ENV

ROOT = Path(__file__).resolve().parents[1]


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
    ratios = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for rep in range(args.repeats):
            order = ("default", "portable") if rep % 2 == 0 else ("portable", "default")
            seconds = {mode: _timed(args.suite, mode, args.seeds, tmp, f"{mode}-{rep}") for mode in order}
            ratios.append(seconds["portable"] / seconds["default"])
            print(f"repeat {rep + 1}: default {seconds['default']:.0f} s, portable {seconds['portable']:.0f} s, "
                  f"ratio {ratios[-1]:.2f}", flush=True)
    print(f"portable / default wall time, median of {len(ratios)}: {statistics.median(ratios):.2f} "
          "(cold cache: pretraining included)")


if __name__ == "__main__":
    main()
