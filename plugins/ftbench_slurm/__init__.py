"""The `slurm` executor: each run is a Slurm job, submitted through submitit.

    executor: {name: slurm, params: {partition: gpu, gpus_per_node: 1, time_min: 120, max_concurrent: 16}}

Jobs run the core's worker function (`ftbench.driver.worker.run_payload`), so the
results folder must be on a file system the nodes share (its path is absolute in
every payload, whatever folder a job starts in): a job claims its run, skips it
when finished, executes it and writes the record; the driver checks that each ok
record is there. A preempted or timed-out job is requeued by submitit
(`RunJob.checkpoint`) and simply runs its run again from the start; a job that
died without a record (killed, out of memory, node lost) is resubmitted up to
`retries` times, then recorded failed. `cluster: local` runs the jobs as local
processes through the same code path (the tests use it); `cluster: debug` runs
them in this process.

submitit is imported only when the executor runs (`pip install 'ftbench[slurm]'`).
"""

from __future__ import annotations

import os
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from pydantic import Field

import ftbench
from ftbench.components import Component, Params
from ftbench.driver.worker import Payload, abandon_attempt, failed_record, run_attempt, use_threads
from ftbench.errors import PluginError, UserInputError

__all__ = ["RunJob", "SlurmExecutor", "SlurmParams"]


class SlurmParams(Params):
    cluster: Literal["slurm", "local", "debug"] | None = Field(
        None, description="null: Slurm when sbatch is found, else local processes; 'debug': in this process")
    folder: str | None = Field(None, description="submitit's folder (job scripts, logs); default <results>/.submitit")
    partition: str | None = Field(None, description="Slurm partition")
    time_min: int = Field(60, ge=1, description="time limit per job in minutes; a run still going then is requeued")
    gpus_per_node: int = Field(0, ge=0, description="GPUs per job (one run per job)")
    cpus_per_task: int = Field(1, ge=1, description="CPUs per job; also the run's torch threads")
    mem_gb: float | None = Field(None, gt=0, description="memory per job; default: the partition's")
    array: bool = Field(True, description="submit one job array (throttled to max_concurrent) instead of a job per run")
    max_concurrent: int | None = Field(None, ge=1, description="runs at once; default: unlimited on Slurm, "
                                                               "CPUs // cpus_per_task locally")
    retries: int = Field(1, ge=0, description="times a job that died without a record is resubmitted")
    poll_s: float = Field(5.0, gt=0, description="seconds between checks of the jobs' states")
    slurm: dict[str, Any] = Field(default_factory=dict, description="more submitit slurm_* parameters without the "
                                                                    "prefix, e.g. {account: abc, qos: high}")
    setup: list[str] = Field(default_factory=list, description="shell lines each job runs before its run "
                                                               "(module load ..., cd ...)")


def _import_submitit():
    try:
        import submitit
    except ImportError as exc:
        raise PluginError("the slurm executor needs submitit: pip install 'ftbench[slurm]' "
                          "(or pip install submitit)") from exc
    return submitit


class RunJob:
    """One run as a submitit job. On preemption or timeout submitit calls
    `checkpoint` and requeues what it returns: the same run, which starts over
    (the core's worker function is idempotent: claims, finished-record skip)."""

    def __init__(self, run_one: Callable[[Payload], dict], payload: Payload, token: str, threads: int):
        self.run_one, self.payload, self.token, self.threads = run_one, payload, token, threads

    def __call__(self) -> dict:
        use_threads(self.threads)
        return run_attempt(self.run_one, self.payload, self.token)

    def checkpoint(self, *args: Any, **kwargs: Any):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(RunJob(self.run_one, self.payload, self.token, self.threads))


class SlurmExecutor:
    """Submits runs as jobs and yields records as jobs finish."""

    def __init__(self, params: SlurmParams):
        self.params = params

    def map(self, run_one: Callable[[Payload], dict], payloads: list[Payload]) -> Iterator[dict]:
        if not payloads:
            return
        p = self.params
        executor = self._executor(_import_submitit(), payloads[0].results)
        waiting = deque(RunJob(run_one, payload.placed(p.gpus_per_node), uuid.uuid4().hex, p.cpus_per_task)
                        for payload in payloads)
        attempts = {job.token: 0 for job in waiting}
        running: list = []  # (submitit job, RunJob)
        limit = self._limit(executor.cluster)
        if executor.cluster == "slurm" and p.array:  # Slurm throttles the array (slurm_array_parallelism)
            with executor.batch():
                submitted = [(executor.submit(job), job) for job in waiting]
            running, limit = submitted, float("inf")
            waiting.clear()
        try:
            while waiting or running:
                while waiting and len(running) < limit:
                    job = waiting.popleft()
                    running.append((executor.submit(job), job))
                finished = [(j, job) for j, job in running if j.done()]
                if not finished:
                    time.sleep(p.poll_s)
                    continue
                for item in finished:
                    running.remove(item)
                    j, job = item
                    try:
                        if executor.cluster == "local" and not j.paths.result_pickle.exists():
                            # a local job that left no result died; submitit would wait 15 s
                            # for one, as a shared file system may show it late
                            raise RuntimeError(f"job process exited without a result ({j.state})")
                        record = j.result()
                    except Exception as exc:  # died without a record: resubmit, or record the failure
                        attempts[job.token] += 1
                        if attempts[job.token] <= p.retries:
                            waiting.appendleft(job)
                            continue
                        abandon_attempt(job.payload, job.token)
                        first = (str(exc).strip().splitlines() or [""])[0]
                        record = failed_record(job.payload, f"its job {j.job_id} ended without a record "
                                                            f"{attempts[job.token]} time(s) ({type(exc).__name__}: "
                                                            f"{first}); its log: {j.paths.stderr}")
                    yield record
        finally:
            for j, _ in running:  # interrupted: stop what has not finished
                j.cancel(check=False)

    def _executor(self, submitit, results: Path):
        p = self.params
        folder = Path(p.folder) if p.folder else Path(results) / ".submitit"
        try:
            executor = submitit.AutoExecutor(folder=folder, cluster=p.cluster)
        except RuntimeError as exc:
            raise UserInputError(f"submitit found no cluster to submit to ({exc}); set cluster: local in the "
                                 "executor params to run the jobs on this machine") from exc
        settings: dict[str, Any] = {"name": "ftbench", "timeout_min": p.time_min, "cpus_per_task": p.cpus_per_task,
                                    "gpus_per_node": p.gpus_per_node}
        if p.mem_gb is not None:
            settings["mem_gb"] = p.mem_gb
        if p.partition:
            settings["slurm_partition"] = p.partition
        if p.max_concurrent:
            settings["slurm_array_parallelism"] = p.max_concurrent
        if p.setup:
            settings.update(slurm_setup=list(p.setup), local_setup=list(p.setup))
        settings.update({f"slurm_{k}": v for k, v in p.slurm.items()})
        try:
            executor.update_parameters(**settings)
        except (TypeError, ValueError) as exc:
            raise UserInputError(f"submitit rejected the slurm executor params: {exc}") from exc
        return executor

    def _limit(self, cluster: str) -> float:
        """Jobs in flight at once when the driver, not Slurm, does the throttling."""
        if self.params.max_concurrent:
            return self.params.max_concurrent
        if cluster == "local":  # local jobs all start at once: keep to the CPUs
            return max(1, (os.cpu_count() or 1) // self.params.cpus_per_task)
        return 1 if cluster == "debug" else float("inf")


@ftbench.hookimpl
def ftbench_register_executors():
    return [Component("slurm", SlurmExecutor, SlurmParams,
                      "Runs each run as a Slurm job through submitit, requeued on preemption "
                      "(pip install 'ftbench[slurm]').")]
