"""Environment checks before anything runs: is each data folder, weights file and
device a suite names there? `ftbench validate` and the start of `ftbench run` report
every problem at once, with the suite's field paths, next to the schema and name
problems. Each component checks its own params (`Component.check`); the core checks
the device. Nothing here imports torch or touches the network, except the timm
plugin's Hub probe (skipped when offline is declared or the weights are cached).
"""

from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ftbench.errors import UnknownComponentError
from ftbench.suite.problems import where
from ftbench.suite.schema import PRETRAIN_PREFIX

if TYPE_CHECKING:
    from ftbench.suite.schema import ComponentRef, Suite


def _refs(suite: Suite) -> list[tuple[str, tuple, ComponentRef]]:
    refs: list[tuple[str, tuple, ComponentRef]] = []
    refs += [("backbone", ("backbones", i), e) for i, e in enumerate(suite.backbones)]
    refs += [("dataset", ("datasets", i), e) for i, e in enumerate(suite.datasets)]
    refs += [("dataset", ("datasets", i, "shifts", "datasets", j), o)
             for i, e in enumerate(suite.datasets) for j, o in enumerate(e.shifts.datasets)]
    for name, job in suite.pretrain.items():
        refs += [("backbone", ("pretrain", name, "backbone"), job.backbone),
                 ("dataset", ("pretrain", name, "dataset"), job.dataset)]
    return refs


def gpu_visible() -> bool:
    """Whether a CUDA (or ROCm) device is visible to this process, judged from the
    driver's files and CUDA_VISIBLE_DEVICES, without importing torch."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    return bool(glob.glob("/proc/driver/nvidia/gpus/*") or glob.glob("/dev/nvidia[0-9]*")
                or os.path.exists("/dev/kfd"))


def device_problem(device: str) -> str | None:
    if device.startswith("cuda") and not gpu_visible():
        return (f"device '{device}' but no GPU is visible to this process (no NVIDIA/ROCm device, or "
                "CUDA_VISIBLE_DEVICES hides them); use `device: auto` (a GPU when there is one) or `device: cpu`")
    return None


def environment_problems(suite: Suite, lines: dict[tuple, int], registry, device: str | None = None) -> list[str]:
    """Every environment problem of `suite`, one message each, like the schema's.
    `device` overrides the suite's (the `--device` of `ftbench run`)."""
    problems = []
    for kind, path, ref in _refs(suite):
        try:
            comp = registry.get(kind, ref.name)
        except UnknownComponentError:
            continue  # reported with the names
        if comp.check is None:
            continue
        params = dict(ref.params)
        if str(params.get("pretrained", "")).startswith(PRETRAIN_PREFIX) or path[0] == "pretrain":
            params["pretrained"] = "none"  # built by the suite's own pretraining job; or trained from scratch
        try:
            validated = comp.params.model_validate(params)
        except ValidationError:
            continue  # reported with the params
        try:
            found = comp.check(validated)
        except Exception as exc:  # a plugin's check must not hide the other problems
            found = [("", f"the {kind} '{ref.name}' check itself failed ({type(exc).__name__}: {exc}); "
                          f"report it to {comp.provider}")]
        for param, problem in found:
            problems.append(f"{where(path + (('params', param) if param else ()), lines)}: {problem}")
    problem = device_problem(device or suite.device)
    if problem:
        problems.append(f"{where(('device',), lines) if device is None else '--device'}: {problem}")
    return problems
