"""Built-in executors: `sequential` (in this process) and `pool` (local processes).

Both call the core's worker function for each run; it claims the run, skips it
when finished, executes it and writes its record, so resume and claim rules are
the same whichever executor runs the suite.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator

from pydantic import Field

import ftbench
from ftbench.components import Component, Params


class SequentialParams(Params):
    pass


class Sequential:
    """Runs one run after another in this process."""

    def __init__(self, params: SequentialParams):
        self.params = params

    def map(self, run_one: Callable[[dict], dict], payloads: list[dict]) -> Iterator[dict]:
        for payload in payloads:
            yield run_one(payload)


class PoolParams(Params):
    workers: int = Field(2, ge=1, description="worker processes (`ftbench run -j N`)")
    runs_per_gpu: int = Field(1, ge=1, description="workers sharing one GPU when there are GPUs")
    retries: int = Field(1, ge=0, description="times a run is retried after its worker process died")


def _init_worker(slots, threads: int) -> None:
    """Pin this worker to one GPU (when there are GPUs) and a share of CPU threads."""
    gpu = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import torch

    torch.set_num_threads(threads)


def _warn_oversubscribed(payloads: list[dict], workers: int) -> None:
    """Each run sets its own thread count (the suite's `threads:`, so results do not
    depend on -j); say so when the workers' threads exceed the CPUs, rather than
    change them and the results."""
    threads = max((p["spec"].threads for p in payloads), default=1)
    cpus = os.cpu_count() or 1
    if not _gpu_count() and min(workers, len(payloads)) * threads > cpus:
        warnings.warn(f"{min(workers, len(payloads))} workers x {threads} threads per run (the suite's `threads:`) "
                      f"exceed this machine's {cpus} CPUs: runs will be slower, not different; use -j "
                      f"{max(1, cpus // threads)}, or set `threads:` lower (which changes CPU results)",
                      stacklevel=2)


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0


class Pool:
    """Runs runs in parallel worker processes (spawned, so CUDA is safe): one per GPU
    by default (`runs_per_gpu` packs more), else a share of the CPU threads each.
    A run whose worker dies (killed, out of memory) is retried on a fresh pool up to
    `retries` times, then recorded as failed."""

    def __init__(self, params: PoolParams):
        self.params = params

    def map(self, run_one: Callable[[dict], dict], payloads: list[dict]) -> Iterable[dict]:
        from ftbench.runner import failed_record

        _warn_oversubscribed(payloads, self.params.workers)
        attempts = {i: 0 for i in range(len(payloads))}
        pending = list(range(len(payloads)))
        while pending:
            lost: list[int] = []
            with self._pool() as pool:
                futures = {pool.submit(run_one, payloads[i]): i for i in pending}
                remaining = set(futures)
                while remaining:
                    done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                    for fut in done:
                        i = futures[fut]
                        try:
                            yield fut.result()
                        except BrokenProcessPool:
                            lost.append(i)
            pending = []
            for i in lost:
                attempts[i] += 1
                if attempts[i] > self.params.retries:
                    yield failed_record(payloads[i], f"its worker process died {attempts[i]} time(s) "
                                                     "(killed or out of memory); see the system log")
                else:
                    pending.append(i)

    def _pool(self) -> ProcessPoolExecutor:
        ctx = mp.get_context("spawn")
        gpus = _gpu_count()
        workers = self.params.workers
        slots = ctx.Queue()
        if gpus:
            workers = min(workers, gpus * self.params.runs_per_gpu)
            for w in range(workers):
                slots.put(w % gpus)
        else:
            for _ in range(workers):
                slots.put(None)
        threads = max(1, (os.cpu_count() or 1) // workers)
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(slots, threads))


@ftbench.hookimpl
def ftbench_register_executors():
    return [
        Component("sequential", Sequential, SequentialParams, "Runs one run after another in this process."),
        Component("pool", Pool, PoolParams, "Runs in local worker processes: one per GPU, or a share of CPU threads each."),
    ]
