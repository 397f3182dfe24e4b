"""Numerics modes: which code paths torch's CPU arithmetic takes, whatever the host.

- `default`: each library takes the widest path the CPU offers (ATen's AVX-512
  kernels on this project's AMD EPYC, MKL's and oneDNN's own dispatch by CPU model).
  Fastest; float sums come out in another order on another CPU, the last bits
  differ, and training amplifies that into different accuracies.
- `portable`: every library is pinned to a path any x86-64 CPU with AVX2 and FMA
  takes alike: ATen's AVX2 kernels (`ATEN_CPU_CAPABILITY`), MKL's conditional
  numerical reproducibility branch COMPATIBLE (`MKL_CBWR`; its AVX2 branch still
  differs between AMD and Intel in matrix products), oneDNN capped at AVX2
  (`ONEDNN_MAX_CPU_ISA`), and the fused AdamW step (`portable_optimizer`), whose
  square root is the exact instruction (MKL's vector sqrt, which the per-tensor
  step calls, is not correctly rounded and differs between CPUs).

The libraries read these variables once per process (ATen at its first kernel,
MKL and oneDNN at their first call), so `apply` must run before torch computes
anything; worker processes inherit them (pool, local Ray, Slurm); a Ray cluster
gets them through its runtime environment. README's "Reproducibility" section
gives what portable mode costs and on which CPUs it was checked.
"""

from __future__ import annotations

import os
import sys

from ftbench.errors import FtbenchError

MODES: tuple[str, ...] = ("default", "portable")

#: What portable mode sets; the fingerprint records each of these as found.
PORTABLE_ENV: dict[str, str] = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE",
                                "ONEDNN_MAX_CPU_ISA": "AVX2"}
#: Further variables that change which code path a library takes (recorded, never set).
OTHER_PATH_VARS: tuple[str, ...] = ("DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


class NumericsError(FtbenchError):
    """This process cannot run in the numerics mode a suite asks for."""


def environment(mode: str) -> dict[str, str]:
    """The environment variables `mode` needs set before torch starts."""
    _check_mode(mode)
    return dict(PORTABLE_ENV) if mode == "portable" else {}


def active_mode() -> str:
    """The mode this process's environment is in: `portable` when every variable
    of `PORTABLE_ENV` has its value, `default` when none is set, else `custom`."""
    found = {k: os.environ.get(k) for k in PORTABLE_ENV}
    if found == PORTABLE_ENV:
        return "portable"
    return "default" if not any(found.values()) else "custom"


def apply(mode: str) -> None:
    """Put this process (and the workers it starts) in `mode`. `default` pins
    nothing and leaves the environment as it is (the fingerprint records what it
    finds). Raises NumericsError when torch has computed in this process already:
    its libraries read the variables once, so the mode cannot change any more."""
    _check_mode(mode)
    if mode == "default" or active_mode() == mode:
        return
    before = {k: os.environ.get(k) for k in PORTABLE_ENV}
    os.environ.update(environment(mode))
    if not _pinned():
        for key, value in before.items():  # leave the process as it was
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        raise NumericsError(
            f"the suite asks for `numerics: {mode}`, but torch has already computed in this process without "
            f"{_shell(environment(mode))}, and its libraries read those once; run `ftbench run` in a fresh "
            "process, or set them in the environment before Python starts")


def check(mode: str) -> None:
    """Raise NumericsError unless this process runs in `mode` (a worker that did
    not inherit the driver's settings: a Ray or Slurm node started elsewhere).
    Any process is fit for `default`."""
    _check_mode(mode)
    if mode != "default" and (active_mode() != mode or not _pinned()):
        raise NumericsError(
            f"this worker's numerics are {active_mode()} but the suite asks for `numerics: {mode}`: start it "
            f"with {_shell(environment(mode))} in its environment (pool, local Ray and Slurm workers inherit "
            "the driver's; a Ray cluster's get them through its runtime environment)")


def _pinned() -> bool:
    """Whether ATen took the pinned capability. ATen reads it at its first kernel,
    before MKL or oneDNN start, so an ATen that honours it means they will too (a
    CPU without AVX2 runs ATen's baseline kernels either way)."""
    if "torch" not in sys.modules:
        return True  # it will read them when it starts
    import torch

    avx2 = getattr(torch.cpu, "_is_avx2_supported", lambda: True)()
    return not avx2 or torch.backends.cpu.get_cpu_capability() == PORTABLE_ENV["ATEN_CPU_CAPABILITY"].upper()


def portable_optimizer() -> bool:
    """Whether the optimiser step must avoid MKL's vector sqrt (the fused AdamW)."""
    return active_mode() == "portable"


def _shell(env: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in env.items())


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise NumericsError(f"numerics mode '{mode}' is not one of {', '.join(MODES)}")
