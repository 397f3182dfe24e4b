"""A calibration workload for the speed gate: how fast is this machine right now?

Samples/s of a CPU/GPU-agnostic number depends on the machine and on whatever else
runs on it. `ftbench run --calibrate` times a fixed bare training loop (plain
PyTorch, a timm test model, no ftbench code in it) right before and right after the
suite, in the same process and with the same torch thread count as the runs, and
writes `calibration.json` beside the records. The gate then compares each cell's
throughput *relative to* that loop, a ratio that carries across machines and load:
a busy machine slows both, a slower ftbench slows only the runs.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from ftbench.results.store import write_json_atomic

CALIBRATION_FILE = "calibration.json"
WORKLOAD = {"model": "test_resnet", "batch": 32, "size": 32, "steps": 15}


def bare_loop_samples_per_s(model: str = WORKLOAD["model"], batch: int = WORKLOAD["batch"],
                            size: int = WORKLOAD["size"], steps: int = WORKLOAD["steps"],
                            device: str = "cpu") -> float:
    """Training samples/s of a bare AdamW loop on random data (after 3 warm-up steps)."""
    import timm
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    net = timm.create_model(model, num_classes=10).to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def measure(repeats: int = 3) -> dict:
    """One calibration: the median of `repeats` timings, and what it ran with."""
    import torch

    values = [bare_loop_samples_per_s() for _ in range(repeats)]
    return {"samples_per_s": statistics.median(values), "threads": torch.get_num_threads(), **WORKLOAD}


def write_calibration(folder: Path, before: dict, after: dict) -> dict:
    """The suite's calibration: the mean of the loop's speed before and after it."""
    data = {"samples_per_s": (before["samples_per_s"] + after["samples_per_s"]) / 2,
            "before": before, "after": after}
    write_json_atomic(Path(folder) / CALIBRATION_FILE, data)
    return data


def read_calibration(folder: str | Path) -> float | None:
    """The calibration loop's samples/s of a results folder, or None without one."""
    try:
        value = json.loads((Path(folder) / CALIBRATION_FILE).read_text())["samples_per_s"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None
