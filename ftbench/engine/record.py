"""A run's record: what `execute` measured, put in the documented shape
(docs/records.md; readers check it against `ftbench.results.records.RecordSchema`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ftbench.engine.checkpoints import checkpoint_meta
from ftbench.engine.environment import environment, now, peak_rss_mb
from ftbench.errors import FtbenchError
from ftbench.results.provenance import code_env
from ftbench.results.records import RECORD_FORMAT
from ftbench.suite.runs import RunSpec, TunedSpec
from ftbench.suite.schema import CHECKPOINT_PREFIX


@dataclass
class RunState:
    """What a run has measured so far; `record` turns it into the run's record."""

    metrics: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=lambda: {
        "wall_s": 0.0, "train_s": 0.0, "eval_s": 0.0, "data_s": 0.0, "samples_per_s": None,
        "warmup_s": 0.0})  # one-time costs of the process, outside wall_s (`warm_up`)
    budget: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=lambda: {"trainable": None, "total": None})
    data_amount: dict[str, Any] = field(default_factory=lambda: {"kind": "all", "value": None, "n_train": None})
    providers: dict[str, str] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    peak_reset: bool = False  # whether the CPU peak memory was reset when this run started
    unlabelled: dict[str, Any] | None = None  # the unlabelled target data the strategy used
    used: set[tuple[str, str]] = field(default_factory=set)  # (kind, name) looked up beyond the spec's own

    @classmethod
    def of(cls, spec: RunSpec) -> "RunState":
        """The state of `spec` before it starts: its budget's limits, nothing used."""
        return cls(budget={"limits": spec.budget.limits(), "used": None, "stopped_by": None})

    def record(self, spec: RunSpec, registry, status: str, error: dict | None, started: str, wall: float) -> dict:
        """The run's record (status ok, failed, diverged or skipped; `error` says why)."""
        self.timing["wall_s"] = wall
        rss_mb, scope = peak_rss_mb(self.peak_reset)
        gpu = (torch.cuda.max_memory_allocated(self.device) / 2**20
               if self.device.type == "cuda" else None)
        return {
            "format": RECORD_FORMAT, "id": spec.id, "suite": spec.suite, "status": status,
            "cell": spec.cell, "seed": spec.seed, "data_amount": self.data_amount, "config": spec.config(),
            "metrics": self.metrics, "timing": self.timing, "budget": self.budget,
            "memory": {"cpu_peak_rss_mb": rss_mb, "cpu_peak_scope": scope, "gpu_peak_mb": gpu},
            "params": self.params, "unlabelled": self.unlabelled,
            "env": {**environment(self.device, self.providers, spec.threads),
                    **code_env(spec, registry, self.used)},
            "hardware_dependent": hardware_dependent(spec),
            "started_at": started, "finished_at": now(), "error": error,
            **({"selection": spec.selection} if isinstance(spec, TunedSpec) and spec.selection else {}),
        }


def record_of_unrun(spec: RunSpec, status: str, error: dict) -> dict:
    """The record of a run that never executed (status failed or skipped, with why)."""
    return RunState.of(spec).record(spec, None, status, error, now(), 0.0)


def hardware_dependent(spec: RunSpec) -> bool:
    """Whether a `seconds` budget (the run's, or its pretrained backbone's) may have
    stopped training: then the numbers depend on the machine's speed and load."""
    if spec.budget.seconds is not None:
        return True
    pretrained = str(spec.backbone.params.get("pretrained", ""))
    if not pretrained.startswith(CHECKPOINT_PREFIX):
        return False
    try:
        meta = checkpoint_meta(pretrained[len(CHECKPOINT_PREFIX):])
    except FtbenchError:
        return False
    return (meta.get("config", {}).get("budget") or {}).get("seconds") is not None


def time_to_target(curve: list[dict], eval_cfg) -> dict | None:
    """When val accuracy first reached the target (`eval.target_acc`, or within
    `eval.target_drop` points of the final val accuracy), from the learning curve."""
    points = [p for p in curve if "val_acc" in p]
    if not points:
        return None
    target = eval_cfg.target_acc if eval_cfg.target_acc is not None else points[-1]["val_acc"] - eval_cfg.target_drop
    for p in points:
        if p["val_acc"] >= target:
            return {"target_acc": target, "reached": True, "seconds": p["train_seconds"],
                    "steps": p["step"], "epoch": p["epoch"]}
    return {"target_acc": target, "reached": False, "seconds": None, "steps": None, "epoch": None}
