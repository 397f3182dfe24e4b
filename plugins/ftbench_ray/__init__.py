"""The `ray` executor: each run is a Ray task, on this machine or on a Ray cluster.

    executor: {name: ray, params: {num_gpus: 0.5, address: auto}}

With `shared_fs` (the default) a task runs the core's worker function
(`ftbench.driver.worker.run_payload`), which claims the run in the results folder
(an absolute path: a raylet started in another folder writes it there too), skips
it when finished, executes it and writes its record: resume and claim rules are
those of every executor. Without a shared file system the driver claims each run
(and skips finished ones) before submitting it (`worker.claim_on_driver`); the task
executes the run into a temporary folder and returns the record
(`worker.run_detached`), which the driver writes (`worker.write_detached`).

Ray is imported only when the executor runs, so `ftbench list` works without it
(`pip install 'ftbench[ray]'`).
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Callable, Iterator

from pydantic import Field

import ftbench
from ftbench.components import Component, Params
from ftbench.driver.worker import (Payload, abandon_attempt, claim_on_driver, failed_record, release_claim,
                                   run_attempt, run_detached, use_threads, write_detached)
from ftbench.errors import PluginError, UserInputError

__all__ = ["RayExecutor", "RayParams"]


class RayParams(Params):
    num_cpus: float = Field(1, ge=0, description="CPUs per run; also its torch threads (at least 1)")
    num_gpus: float = Field(0, ge=0, description="GPUs per run; a fraction packs runs onto one GPU (0.5: two)")
    address: str | None = Field(None, description="null: start Ray on this machine; 'auto' or "
                                                  "'ray://host:10001': join a running Ray cluster")
    max_retries: int = Field(1, ge=0, description="times Ray reruns a run whose worker died (killed, out of "
                                                  "memory, node lost); after that it is recorded failed")
    shared_fs: bool = Field(True, description="workers see the results folder and write the records; false: "
                                              "they return records and the driver writes them")


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise PluginError("the ray executor needs Ray: pip install 'ftbench[ray]' (or pip install ray)") from exc
    return ray


def _shared_task(run_one: Callable[[Payload], dict], payload: Payload, token: str, threads: int) -> dict:
    """Runs on a Ray worker: the core's worker function, in the shared folder."""
    use_threads(threads)
    return run_attempt(run_one, payload, token)


def _private_task(payload: Payload, threads: int) -> dict:
    """Runs on a Ray worker without the results folder: the record comes back."""
    use_threads(threads)
    return run_detached(payload)


def _runtime_env() -> dict:
    """What a cluster's workers need from this driver's environment: ftbench's
    settings (the cache folder), the numerics mode's variables (read before torch
    starts, so a worker's process must have them), and this folder on the import path,
    for `--plugin` modules (the cluster's nodes must see the same paths: a shared
    file system)."""
    from ftbench.numerics import PORTABLE_ENV

    env = {k: v for k, v in os.environ.items() if k.startswith("FTBENCH_") or k in PORTABLE_ENV}
    paths = [os.getcwd(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return {"env_vars": env}


class RayExecutor:
    """Runs each run as a Ray task and yields records as tasks finish."""

    def __init__(self, params: RayParams):
        self.params = params

    def map(self, run_one: Callable[[Payload], dict], payloads: list[Payload]) -> Iterator[dict]:
        ray = _import_ray()
        started_here = self._connect(ray)
        try:
            yield from self._run(ray, run_one, payloads)
        finally:
            if started_here:
                ray.shutdown()

    def _connect(self, ray) -> bool:
        """Join or start Ray; True when this call did (and must disconnect). A Ray
        already initialised in this process is used as it is. Workers of a local
        Ray inherit this process's environment, folder and import path; a cluster's
        get them through a runtime environment (a per-task one would start fresh
        workers, seconds each)."""
        if ray.is_initialized():
            return False
        address = self.params.address
        if address is None:
            ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
            self._check_fits(ray)
            return True
        try:
            ray.init(address=address, runtime_env=_runtime_env(), logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserInputError(f"cannot join the Ray cluster at {address!r} ({exc}); start one with "
                                 "`ray start --head`, or leave address unset to run Ray on this machine") from exc
        return True

    def _check_fits(self, ray) -> None:
        """A task asking for more than a local Ray has would wait for ever."""
        have = ray.cluster_resources()
        for name, want in (("CPU", self.params.num_cpus), ("GPU", self.params.num_gpus)):
            if want > have.get(name, 0):
                ray.shutdown()
                raise UserInputError(f"each run asks Ray for {want:g} {name}(s) but this machine has "
                                     f"{have.get(name, 0):g}; lower num_{name.lower()}s in the executor params")

    def _run(self, ray, run_one, payloads: list[Payload]) -> Iterator[dict]:
        from ray.exceptions import RayError, RayTaskError

        p = self.params
        threads = max(1, int(p.num_cpus))
        options = {"num_cpus": p.num_cpus, "num_gpus": p.num_gpus, "max_retries": p.max_retries}
        task = ray.remote(_shared_task if p.shared_fs else _private_task).options(**options)
        pending: dict = {}  # object ref -> (payload, token)
        ready: list[dict] = []  # settled on the driver without a task (shared_fs false)
        try:
            for payload in payloads:
                payload = payload.placed(p.num_gpus)
                token = uuid.uuid4().hex
                if p.shared_fs:
                    ref = task.remote(run_one, payload, token, threads)
                else:
                    settled = claim_on_driver(payload)
                    if settled is not None:
                        ready.append(settled)
                        continue
                    ref = task.remote(payload, threads)
                pending[ref] = (payload, token)
            yield from ready
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                payload, token = pending.pop(done[0])
                returned = None  # the record a detached task returned, for the driver to write
                try:
                    record = returned = ray.get(done[0])
                except RayTaskError as exc:  # the worker function raised: a plugin that cannot load, a bug
                    raise (exc.cause if isinstance(exc.cause, Exception) else exc) from None
                except RayError as exc:  # the worker died more than max_retries times
                    if p.shared_fs:
                        abandon_attempt(payload, token)
                    first = (str(exc).strip().splitlines() or [""])[0]
                    record = failed_record(payload, f"its Ray worker died {p.max_retries + 1} time(s) "
                                                    f"({type(exc).__name__}: {first}); see the Ray logs")
                finally:
                    if not p.shared_fs:  # (a failed_record above is written under the driver's claim)
                        write_detached(payload, returned)
                yield record
        finally:
            for ref, (payload, _) in pending.items():  # interrupted: stop what has not finished
                ray.cancel(ref)
                if not p.shared_fs:
                    release_claim(payload)


@ftbench.hookimpl
def ftbench_register_executors():
    return [Component("ray", RayExecutor, RayParams,
                      "Runs each run as a Ray task, on this machine or a Ray cluster (pip install 'ftbench[ray]').")]
