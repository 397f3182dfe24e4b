"""How long does `ftbench --help` take, relative to importing torch?

Runs `ftbench --help` and `python -c "import torch"` in fresh interpreters,
alternating A/B so a shared machine's noise hits both, and prints the median of each
and the ratio of the medians (target <= 0.3: the CLI must not import torch to print
its help). `--command` times another ftbench command the same way, e.g.
`--command "list strategies"` or `--command "validate suites/quickstart.yaml"`.

    python benchmarks/startup.py [--repeats 7] [--command "--help"]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time


def _time(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--command", default="--help", help="ftbench arguments to time")
    args = parser.parse_args()
    ftbench = [sys.executable, "-m", "ftbench", *shlex.split(args.command)]
    torch = [sys.executable, "-c", "import torch"]
    _time(ftbench), _time(torch)  # warm the file cache for both
    a, b = [], []
    for _ in range(args.repeats):
        a.append(_time(ftbench))
        b.append(_time(torch))
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"ftbench {args.command}: median {ma:.3f} s over {args.repeats}")
    print(f"python -c 'import torch': median {mb:.3f} s over {args.repeats}")
    print(f"ratio: {ma / mb:.2f} (target <= 0.3)")


if __name__ == "__main__":
    main()
