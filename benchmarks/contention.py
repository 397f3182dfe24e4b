"""How much slower is a suite when another process keeps one core busy?

Runs one small suite (timm's test_resnet from scratch on the digits, 2 strategies x
3 seeds) as a fresh `ftbench run` process, idle and beside one CPU burner (a process
spinning on one core), for the shipped defaults and each alternative:

    shipped         the suite as written: no `threads:` (ftbench's default), nothing set
    t2-libgomp      threads: 2, libgomp's default wait (spin 300,000 rounds, then sleep)
    t2-passive      threads: 2, OMP_WAIT_POLICY=PASSIVE (a waiting thread sleeps at once)
    t2-spin10k      threads: 2, GOMP_SPINCOUNT=10000 (spin 30x shorter before sleeping)
    t2-spin1k       threads: 2, GOMP_SPINCOUNT=1000 (300x shorter)
    t1-sequential   threads: 1, one run at a time
    t1-j2           threads: 1, two runs at once (-j 2)

The variables reach torch before it starts its OpenMP pool (a fresh process each
time). Every option's idle and burner runs alternate within each repetition, so a
drift in the machine's load hits both. Prints per option the medians idle and with
the burner, and their ratio (target: <= 2.5 for the shipped defaults with one of
two cores busy), of the suite's wall seconds (start-up included) and of its
training seconds (summed over the records), each with the spread of the idle runs
(the machine may be shared: a wide spread means the ratios are rough). Load
detection (fewer threads when a core is busy) is printed as a derived row: the t1
burner time over the t2 idle time; it is not an option ftbench takes, as the
thread count changes the numbers.

    python benchmarks/contention.py [--repeats 3] [--samples 6000] [--options shipped,t1-j2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = """\
name: contention
backbones: [{{name: timm, label: test-resnet, params: {{model: test_resnet, pretrained: none, input_size: 32}}}}]
datasets: [{{name: digits}}]
strategies: [{{name: full}}, {{name: freeze, params: {{k: 2}}}}]
seeds: [0, 1, 2]
budget: {{samples: {samples}}}
train: {{batch_size: 64}}
eval: {{curve: false}}
device: cpu
{threads}"""
GOMP = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
# name: (suite's threads or None for its default, extra `ftbench run` args, environment)
OPTIONS: dict[str, tuple[int | None, tuple[str, ...], dict[str, str]]] = {
    "shipped": (None, (), {}),
    "t2-libgomp": (2, (), {}),
    "t2-passive": (2, (), {"OMP_WAIT_POLICY": "PASSIVE"}),
    "t2-spin10k": (2, (), {"GOMP_SPINCOUNT": "10000"}),
    "t2-spin1k": (2, (), {"GOMP_SPINCOUNT": "1000"}),
    "t1-sequential": (1, (), {}),
    "t1-j2": (1, ("-j", "2"), {}),
}


def _env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without OpenMP wait settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in GOMP}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", **extra)
    return env


def _train_seconds(folder: Path) -> float:
    """Training seconds summed over the suite's records (no start-up, data or evaluation)."""
    total = 0.0
    for path in folder.glob("*.json"):
        record = json.loads(path.read_text())
        if record.get("format") == "ftbench.run/1":
            total += (record.get("timing") or {}).get("train_s") or 0.0
    return total


def _run_suite(tmp: Path, name: str, samples: int, option: str) -> tuple[float, float]:
    threads, args, extra = OPTIONS[option]
    suite = tmp / f"{option}.yaml"
    suite.write_text(SUITE.format(samples=samples, threads="" if threads is None else f"threads: {threads}\n"))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ftbench", "run", str(suite), "--results", str(tmp / name),
                           "--rerun", "-q", *args], cwd=ROOT, capture_output=True, text=True,
                          env=_env(extra))
    if done.returncode:
        sys.exit(f"{option}: the suite failed: {done.stderr[-2000:]}")
    return time.perf_counter() - t0, _train_seconds(tmp / name)


def _burner() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=6000, help="training samples per run")
    parser.add_argument("--options", default=",".join(OPTIONS), help="comma-separated, of: " + ", ".join(OPTIONS))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so a killed benchmark still stops its burner
    options = args.options.split(",")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        sys.exit(f"unknown option(s) {unknown}; known: {', '.join(OPTIONS)}")
    idle: dict[str, list[tuple[float, float]]] = {o: [] for o in options}  # (wall s, train s) per repeat
    busy: dict[str, list[tuple[float, float]]] = {o: [] for o in options}
    print(f"{os.cpu_count()} CPUs; suite: 2 strategies x 3 seeds, {args.samples} samples per run; "
          f"{args.repeats} repeats, idle and burner alternating", flush=True)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for rep in range(args.repeats):
            for option in options:
                idle[option].append(_run_suite(tmp, option, args.samples, option))
                burner = _burner()
                try:
                    busy[option].append(_run_suite(tmp, option, args.samples, option))
                finally:
                    burner.kill()
                    burner.wait()
                print(f"  repeat {rep + 1} {option}: idle {idle[option][-1][0]:.1f} s wall ({idle[option][-1][1]:.1f} "
                      f"s training), burner {busy[option][-1][0]:.1f} s ({busy[option][-1][1]:.1f} s)", flush=True)
    print(f"\n{'option':<15} {'idle s':>7} {'burner s':>9} {'ratio':>6} {'spread':>7}   "
          f"{'train s':>8} {'burner':>7} {'ratio':>6} {'spread':>7}")
    med = {o: [[statistics.median(v[i] for v in side[o]) for i in (0, 1)] for side in (idle, busy)] for o in options}
    for option in options:
        (wall_i, train_i), (wall_b, train_b) = med[option]
        spread = [(max(v[i] for v in idle[option]) - min(v[i] for v in idle[option])) / med[option][0][i]
                  for i in (0, 1)]
        print(f"{option:<15} {wall_i:7.1f} {wall_b:9.1f} {wall_b / wall_i:6.2f} {spread[0]:7.0%}   "
              f"{train_i:8.1f} {train_b:7.1f} {train_b / train_i:6.2f} {spread[1]:7.0%}")
    if {"t1-sequential", "t2-libgomp"} <= set(options):
        derived = [med["t1-sequential"][1][i] / med["t2-libgomp"][0][i] for i in (0, 1)]
        print(f"{'load-detect':<15} {'':>7} {'':>9} {derived[0]:6.2f} {'':>7}   {'':>8} {'':>7} {derived[1]:6.2f}"
              "   (t1 with the burner / t2 idle; changes numbers)")
    print("\nratio: median with one core busy / idle, same option (target <= 2.5 for shipped); spread: "
          "(max - min) / median of the idle repeats; train s: training seconds summed over the 6 runs' records "
          "(with -j 2 two runs train at once, so it is not the suite's time)")


if __name__ == "__main__":
    main()
