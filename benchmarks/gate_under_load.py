"""Does the sequential speed gate hold on a busy machine, and still catch a 1.5x slowdown?

1. On the machine as it is: runs a one-cell suite (full fine-tuning of timm's
   test_resnet on digits) and saves a baseline with `--speed-reps` timing
   repetitions; runs the same cell with a planted slowdown (`slow-full`,
   benchmarks/planted_slowdown.py: a second pass of the model on 80% of the steps,
   about 1.5x the time),
   and times it against the baseline to say how large the planted slowdown is.
2. Starts CPU burners (one busy process per core) and, alternately, gates the
   unchanged code and the planted slowdown `--tries` times each, every time with
   fresh timing repetitions (`speed_reps:` in the gate config, ftbench.gate.speed).
Prints each try's verdict, repetitions and calibrated ratio with its interval, then
the false alarms among the unchanged tries and the catches among the planted ones.

    python benchmarks/gate_under_load.py [--tries 10] [--baseline-reps 10] [--extra 0.8]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PLUGIN = "benchmarks.planted_slowdown"
SUITE = """\
name: {name}
backbones: [{{name: timm, label: test-resnet, params: {{model: test_resnet, pretrained: none, input_size: 16}}}}]
datasets: [{{name: digits}}]
strategies: [{{name: {strategy}, label: full{params}}}]
seeds: [0, 1, 2]
data: [{{fraction: 0.5}}]
budget: {{steps: 40}}
train: {{lr: 0.01, batch_size: 32}}
eval: {{curve_points: 3}}
device: cpu
"""
GATE = "speed_ratio: {ratio}\nspeed_reps: {{min: 4, max: 16, step: 2}}\n"


def _ftbench(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "ftbench", "--plugin", PLUGIN, *args], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        sys.exit(f"ftbench {' '.join(args)} failed: {done.stderr[-2000:]}")


def _suite(tmp: Path, name: str, strategy: str, params: str = "") -> Path:
    suite = tmp / f"{name}.yaml"
    suite.write_text(SUITE.format(name=name, strategy=strategy, params=params))
    _ftbench("run", str(suite), "--results", str(tmp / name), "-q")
    return tmp / name


def _gate(baseline: Path, current: Path, config: Path):
    from ftbench import api

    t0 = time.perf_counter()
    comparison = api.compare(baseline, current, config, plugins=[PLUGIN])
    row = next(r for r in comparison.rows if r.speed_seq is not None or r.notes)
    return row.speed_seq, time.perf_counter() - t0, row.notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--baseline-reps", type=int, default=10)
    parser.add_argument("--extra", type=float, default=0.8, help="share of steps with a second pass")
    parser.add_argument("--speed-ratio", type=float, default=0.8)
    args = parser.parse_args()
    os.chdir(ROOT)  # the timing processes import the planted plugin from here
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        config = tmp / "gate.yaml"
        config.write_text(GATE.format(ratio=args.speed_ratio))
        base = _suite(tmp, "base", "full")
        planted = _suite(tmp, "planted", "slow-full", f", params: {{extra: {args.extra}}}")
        baseline = tmp / "baseline.json"
        _ftbench("baseline", "save", str(base), "-o", str(baseline), "--speed-reps", str(args.baseline_reps))
        from ftbench.driver.timing import time_repetitions
        from ftbench.results.store import RESOLVED_SUITE
        import json

        base_y = json.loads(baseline.read_text())["speed"]["cells"][0]["log_ratios"]
        slow_y = [next(iter(r.log_ratios.values()))
                  for r in time_repetitions(planted / RESOLVED_SUITE, args.baseline_reps, plugins=[PLUGIN])]
        factor = math.exp(statistics.mean(base_y) - statistics.mean(slow_y))
        print(f"idle: baseline {args.baseline_reps} repetitions, sd of log ratio {statistics.stdev(base_y):.3f}; "
              f"planted slowdown (extra {args.extra:g}) {factor:.2f}x (sd {statistics.stdev(slow_y):.3f})",
              flush=True)
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
        results: dict[str, list] = {"unchanged": [], "planted": []}
        try:
            for i in range(args.tries):
                for label, folder in (("unchanged", base), ("planted", planted)):
                    j, wall, notes = _gate(baseline, folder, config)
                    results[label].append(j)
                    shown = j.describe() if j else "; ".join(notes)
                    print(f"under load, try {i + 1} {label}: {j.verdict if j else '?'}, ratio {shown}, "
                          f"{wall:.0f} s", flush=True)
        finally:
            for proc in burners:
                proc.kill()
        for label, want in (("unchanged", "slower"), ("planted", "slower")):
            js = [j for j in results[label] if j]
            hits = sum(j.verdict == want for j in js)
            print(f"{label}: {hits}/{len(js)} judged slower, {sum(j.verdict == 'undecided' for j in js)} undecided "
                  f"at max; repetitions mean {statistics.mean(j.n for j in js):.1f} (min {min(j.n for j in js)}, "
                  f"max {max(j.n for j in js)}); ratios {', '.join(f'{j.ratio:.2f}' for j in js)}")


if __name__ == "__main__":
    main()
