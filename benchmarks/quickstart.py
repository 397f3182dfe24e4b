"""How long does the quickstart take, and how much memory does it use?

Runs `ftbench run suites/quickstart.yaml` twice in a fresh results folder: first
with an empty checkpoint cache (pretraining included), then again with the cache
warm (the backbone is reused, every run repeats). Prints wall time and the peak
resident memory of the whole process tree (driver plus pool workers, sampled every
0.2 s from /proc), against the targets: <= 360 s (6 minutes) and < 4 GB.

    python benchmarks/quickstart.py [--suite suites/quickstart.yaml]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _tree_rss_kb(root: int) -> int:
    """Resident memory of `root` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/status") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def timed_run(args: list[str], env: dict) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.2)
    err = proc.stderr.read()
    if proc.returncode != 0:
        sys.exit(f"ftbench run failed ({proc.returncode}):\n{err[-2000:]}")
    return time.perf_counter() - t0, peak / 2**20, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="suites/quickstart.yaml")
    args = ap.parse_args()
    ftbench = str(Path(sys.executable).with_name("ftbench"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FTBENCH_CACHE": f"{tmp}/cache"}
        cold = timed_run([ftbench, "run", args.suite, "--results", f"{tmp}/cold", "-q"], env)
        warm = timed_run([ftbench, "run", args.suite, "--results", f"{tmp}/warm", "-q"], env)
    print(f"{args.suite} on {os.cpu_count()} cores")
    print(f"cold cache (pretraining included): {cold[0]:6.1f} s   peak RSS {cold[1]:.2f} GB   (targets: <= 360 s, < 4 GB)")
    print(f"warm cache (backbone reused)     : {warm[0]:6.1f} s   peak RSS {warm[1]:.2f} GB")


if __name__ == "__main__":
    main()
