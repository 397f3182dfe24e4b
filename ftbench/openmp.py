"""How torch's OpenMP threads wait, set before torch starts its thread pool.

With 2 threads a run splits each operation in two and waits at a barrier for
both halves. libgomp's default makes a waiting thread spin for 300,000 rounds
first; when another process holds one of the cores, the spinning thread steals
time from the very thread it waits for, and a suite slowed several-fold (13 to 25
samples/s where one thread did 3,000: issue 22). `OMP_WAIT_POLICY=PASSIVE` makes
it sleep at once. The wait changes speed only, never the sums (the work is split
the same way), so it is not part of a run's fingerprint id; the fingerprint
records it. `benchmarks/contention.py` measures it.

libgomp reads the variables when torch is imported, so `ftbench`'s entry point
sets them first; processes it starts (pool, local Ray, Slurm) inherit them.
"""

from __future__ import annotations

import os

WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def set_defaults() -> None:
    """Set `DEFAULTS` unless the environment already says how threads wait (either
    variable set: the user's choice stands)."""
    if not any(os.environ.get(k) for k in WAIT_VARS):
        os.environ.update(DEFAULTS)
