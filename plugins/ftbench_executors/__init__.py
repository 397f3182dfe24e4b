"""Built-in executors: `sequential` (in this process) and `pool` (local processes).

Both call the core's worker function (`ftbench.driver.worker.run_payload`) for each
payload; it claims the run, skips it when finished, executes it and writes its
record, so resume and claim rules are the same whichever executor runs the suite.
"""

from __future__ import annotations

import atexit
import ctypes
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import signal
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from typing import Callable, Iterable, Iterator

from pydantic import Field

import ftbench
from ftbench.components import Component, Params
from ftbench.driver.worker import Payload, failed_record, release_claim_of, use_threads


class SequentialParams(Params):
    pass


class Sequential:
    """Runs one run after another in this process."""

    def __init__(self, params: SequentialParams):
        self.params = params

    def map(self, run_one: Callable[[Payload], dict], payloads: list[Payload]) -> Iterator[dict]:
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
    use_threads(threads)


def _warn_oversubscribed(payloads: list[Payload], workers: int) -> None:
    """Each run sets its own thread count (the suite's `threads:`, so results do not
    depend on -j); say so when the workers' threads exceed the CPUs, rather than
    change them and the results."""
    threads = max((p.spec.threads for p in payloads), default=1)
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


class _Slot:
    """The GPU one worker takes in `_init_worker` (None: no GPU)."""

    def __init__(self, gpu: int | None):
        self.gpu = gpu

    def get(self) -> int | None:
        return self.gpu


def _exit_with_driver(driver_pid: int) -> None:
    """End this worker when its driver dies, however it dies (kill -9 included):
    the kernel's parent-death signal on Linux, and a watchdog thread everywhere."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == driver_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="ftbench-driver-watch", daemon=True).start()


def _worker_main(conn, run_one: Callable[[Payload], dict], slot: _Slot, threads: int, driver_pid: int) -> None:
    """One worker process: runs the payloads it receives, one at a time, until told
    to stop. Ctrl-C reaches the whole process group; the driver alone decides what
    an interrupt does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _exit_with_driver(driver_pid)
    _init_worker(slot, threads)
    while True:
        try:
            payload = conn.recv()
        except EOFError:
            return
        if payload is None:
            return
        try:
            conn.send((True, run_one(payload)))
        except Exception as exc:  # a plugin that cannot load, a bug: the driver raises it
            conn.send((False, exc))


class _Worker:
    def __init__(self, ctx, run_one, gpu: int | None, threads: int):
        self.conn, child = ctx.Pipe()
        self.gpu = gpu
        # Not daemonic: a run that streams its data starts DataLoader worker processes,
        # which a daemonic process may not have. Workers still never outlive the
        # driver: `Pool.close` (or its finalizer, at exit) stops them, `Pool.map` kills
        # them when interrupted, and each one watches its driver
        # (parent-death signal and a watchdog thread, `_worker_main`).
        self.process = ctx.Process(target=_worker_main, args=(child, run_one, _Slot(gpu), threads, os.getpid()),
                                   daemon=False)
        self.process.start()
        child.close()
        self.index: int | None = None  # the payload it runs now

    def stop(self, now: bool) -> None:
        if now:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(timeout=None if now else 5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class Pool:
    """Runs runs in parallel worker processes (spawned, so CUDA is safe): one per GPU
    by default (`runs_per_gpu` packs more), else a share of the CPU threads each.
    Each worker runs one run at a time. A run whose worker dies (killed, out of
    memory) is retried on a fresh worker up to `retries` times, then recorded as
    failed; the other runs go on. An interrupt (Ctrl-C, SIGTERM) kills the workers
    and releases the claims of the runs they had, so the next `ftbench run` redoes
    them; workers also end when their driver dies. Idle workers are kept for the
    next `map` until `close`."""

    def __init__(self, params: PoolParams):
        self.params = params
        # Workers left idle by one `map` serve the next (a search runs a map per round,
        # then one for the final runs): each new process costs its start-up (importing
        # torch) and its data caches. `close` (or the finalizer) stops them.
        self._idle: list[_Worker] = []
        self._free_gpus: list[int | None] | None = None
        self._run_one: Callable[[Payload], dict] | None = None
        self._finalizer = weakref.finalize(self, _stop_workers, self._idle)
        # Also at exit, before multiprocessing's own exit hook (registered earlier, so
        # run later) would wait forever for these non-daemonic workers.
        atexit.register(_stop_workers, self._idle)

    def close(self) -> None:
        """Stop the idle workers kept for the next `map`."""
        _stop_workers(self._idle)
        self._free_gpus = None

    def map(self, run_one: Callable[[Payload], dict], payloads: list[Payload]) -> Iterable[dict]:
        _warn_oversubscribed(payloads, self.params.workers)
        ctx = mp.get_context("spawn")
        slots = self._gpus()
        if self._run_one is not run_one or self._free_gpus is None:
            self.close()  # workers run one function: a different one needs fresh workers
            self._run_one, self._free_gpus = run_one, list(slots)
        threads = max(1, (os.cpu_count() or 1) // len(slots))
        attempts = [0] * len(payloads)
        queue = deque(range(len(payloads)))
        idle = self._idle  # kept across calls
        busy: list[_Worker] = []
        free_gpus = self._free_gpus
        finished = False
        try:
            while queue or busy:
                while queue and (idle or free_gpus):
                    worker = idle.pop() if idle else _Worker(ctx, run_one, free_gpus.pop(0), threads)
                    worker.index = queue.popleft()
                    busy.append(worker)  # before sending: a payload that fails to pickle still stops it
                    worker.conn.send(payloads[worker.index])
                waitables = [w.conn for w in busy] + [w.process.sentinel for w in busy]
                mp_connection.wait(waitables)
                for worker in list(busy):
                    message = self._receive(worker)
                    if message is None and worker.process.is_alive():
                        continue  # still running
                    busy.remove(worker)
                    i, worker.index = worker.index, None
                    if message is not None:
                        idle.append(worker)
                        ok, value = message
                        if not ok:
                            raise value
                        yield value
                        continue
                    worker.process.join()
                    free_gpus.append(worker.gpu)
                    attempts[i] += 1
                    if attempts[i] > self.params.retries:
                        yield failed_record(payloads[i], f"its worker process died {attempts[i]} time(s) "
                                                         f"(exit code {worker.process.exitcode}: killed or out "
                                                         "of memory); see the system log")
                    else:
                        queue.appendleft(i)
            finished = True
        finally:
            if not finished:  # interrupted or raised: no worker survives, held runs are released
                for worker in busy:
                    worker.stop(now=True)
                    if worker.index is not None:
                        release_claim_of(payloads[worker.index], worker.process.pid)
                _stop_workers(idle, now=True)
                self._free_gpus = None

    @staticmethod
    def _receive(worker: _Worker) -> tuple | None:
        """The worker's answer, or None when it has none (yet, or ever: it died)."""
        try:
            if worker.conn.poll():
                return worker.conn.recv()
        except (EOFError, OSError):
            pass
        return None

    def _gpus(self) -> list[int | None]:
        """One entry per worker: the GPU it uses, or None."""
        gpus = _gpu_count()
        workers = self.params.workers
        if gpus:
            workers = min(workers, gpus * self.params.runs_per_gpu)
            return [w % gpus for w in range(workers)]
        return [None] * workers


def _stop_workers(workers: list[_Worker], now: bool = False) -> None:
    """Stop and forget `workers` (the list is emptied in place)."""
    while workers:
        workers.pop().stop(now=now)


@ftbench.hookimpl
def ftbench_register_executors():
    return [
        Component("sequential", Sequential, SequentialParams, "Runs one run after another in this process."),
        Component("pool", Pool, PoolParams, "Runs in local worker processes: one per GPU, or a share of CPU threads each."),
    ]
