"""How much slower is a suite when another process keeps one core busy?

Runs one small suite (timm's test_resnet from scratch on the digits, 2 strategies x
3 seeds) as a fresh `ftbench run` process, idle and beside one CPU burner (a process
spinning on one core), for the shipped defaults and each alternative:

    shipped         the suite as written (no `threads:`), ftbench's own OpenMP settings (ftbench/openmp.py)
    t2-libgomp      threads: 2, GOMP_SPINCOUNT=300000: libgomp's own default (spin, then sleep)
    t2-passive      threads: 2, OMP_WAIT_POLICY=PASSIVE (a waiting thread sleeps at once)
    t2-spin10k      threads: 2, GOMP_SPINCOUNT=10000 (spin 30x shorter before sleeping)
    t1-sequential   threads: 1, one run at a time
    t1-j2           threads: 1, two runs at once (-j 2)

The variables reach torch before it starts its OpenMP pool (a fresh process each
time). Every option's idle and burner runs alternate within each repetition, so a
drift in the machine's load hits both. Prints per option the median suite wall
seconds idle and with the burner, their ratio (target: <= 2.5 for the shipped
defaults with one of two cores busy), and the spread of the idle runs (the machine
may be shared: a wide spread means the ratios are rough). Load detection (fewer
threads when a core is busy) is printed as a derived row: the t1 burner time over
the t2 idle time; it is not an option ftbench takes, as the thread count changes
the numbers.

    python benchmarks/contention.py [--repeats 3] [--samples 2000] [--options shipped,t1-j2]
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
    "t2-libgomp": (2, (), {"GOMP_SPINCOUNT": "300000"}),
    "t2-passive": (2, (), {"OMP_WAIT_POLICY": "PASSIVE"}),
    "t2-spin10k": (2, (), {"GOMP_SPINCOUNT": "10000"}),
    "t1-sequential": (1, (), {}),
    "t1-j2": (1, ("-j", "2"), {}),
}


def _env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without OpenMP wait settings (ftbench then sets its own), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in GOMP}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", **extra)
    return env


def _run_suite(tmp: Path, name: str, samples: int, option: str) -> float:
    threads, args, extra = OPTIONS[option]
    suite = tmp / f"{option}.yaml"
    suite.write_text(SUITE.format(samples=samples, threads="" if threads is None else f"threads: {threads}\n"))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ftbench", "run", str(suite), "--results", str(tmp / name),
                           "--rerun", "-q", *args], cwd=ROOT, capture_output=True, text=True,
                          env=_env(extra))
    if done.returncode:
        sys.exit(f"{option}: the suite failed: {done.stderr[-2000:]}")
    return time.perf_counter() - t0


def _burner() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=2000, help="training samples per run")
    parser.add_argument("--options", default=",".join(OPTIONS), help="comma-separated, of: " + ", ".join(OPTIONS))
    args = parser.parse_args()
    options = args.options.split(",")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        sys.exit(f"unknown option(s) {unknown}; known: {', '.join(OPTIONS)}")
    idle: dict[str, list[float]] = {o: [] for o in options}
    busy: dict[str, list[float]] = {o: [] for o in options}
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
                print(f"  repeat {rep + 1} {option}: idle {idle[option][-1]:.1f} s, burner {busy[option][-1]:.1f} s",
                      flush=True)
    print(f"\n{'option':<15} {'idle s':>8} {'burner s':>9} {'ratio':>6}  idle spread (min-max / median)")
    for option in options:
        i, b = statistics.median(idle[option]), statistics.median(busy[option])
        spread = (max(idle[option]) - min(idle[option])) / i
        print(f"{option:<15} {i:8.1f} {b:9.1f} {b / i:6.2f}  {spread:.0%}")
    if {"t1-sequential", "t2-libgomp"} <= set(options):
        derived = statistics.median(busy["t1-sequential"]) / statistics.median(idle["t2-libgomp"])
        print(f"{'load-detect':<15} {'':>8} {'':>9} {derived:6.2f}  (t1 with the burner / t2 idle; changes numbers)")
    print("\nratio: median suite wall with one core busy / idle, same option (target <= 2.5 for shipped)")


if __name__ == "__main__":
    main()
