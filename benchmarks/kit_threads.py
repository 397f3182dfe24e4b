"""How long does the conformance kit take on one torch thread, against two?

`ftbench.testing.check_strategy` runs on one thread (issue 23). This times it on a
built-in strategy (default `full`) as shipped, and its unwrapped body with torch
set to `--threads` (default 2: the kit's thread count before), alternating A/B in
one process so a shared machine's noise hits both. Prints the median seconds of
each and the ratio one-thread / N-threads (below 1: one thread is faster). The
kit's one-run suite (`threads: 1`) is the same in both.

    python benchmarks/kit_threads.py [--repeats 5] [--strategy full] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ftbench.plugins import default_registry
from ftbench.testing import check_strategy


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--strategy", default="full")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    component = default_registry().get("strategy", args.strategy)

    def many_threads() -> None:
        torch.set_num_threads(args.threads)
        check_strategy.__wrapped__(component)

    check_strategy(component), many_threads()  # warm: imports, first kernels
    one, many = [], []
    for _ in range(args.repeats):
        one.append(_time(lambda: check_strategy(component)))
        many.append(_time(many_threads))
    a, b = statistics.median(one), statistics.median(many)
    print(f"check_strategy({args.strategy}): 1 thread {a:.2f} s, {args.threads} threads {b:.2f} s "
          f"(medians of {args.repeats}); ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
