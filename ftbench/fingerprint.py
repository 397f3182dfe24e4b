"""Where a run ran: the machine and numeric stack that decide its numbers in the last bits.

Every record carries one (`env.fingerprint`, docs/records.md). Its `id` hashes the
fields that can change a run's numbers: the numerics mode and its variables,
torch's CPU capability, the BLAS and oneDNN versions, the libraries that make the
data and the model, the C library (its libm), the thread count, the determinism
flags, and the device; in
`default` numerics also the CPU (vendor, model, ISA), whose own code paths the
libraries then take, and on a GPU its name, compute capability, CUDA and cuDNN.
Two records with one id should hold equal numbers for equal configs and seeds
(`ftbench reproduce` demands it); across ids only statistical agreement is
expected. The run id says what was asked; the fingerprint says where it ran.

Torch is imported only inside the functions: `ftbench status` reads fingerprints
without it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
from collections import Counter
from importlib import metadata
from typing import Any

from ftbench import numerics

#: Top-level fields the id always covers (CPU and GPU fields are added by mode and device).
ID_FIELDS = ("machine", "numerics", "torch", "torch_cpu_capability", "blas", "onednn", "mkldnn", "libraries",
             "libc", "threads", "device", "determinism")
_LIBRARIES = ("numpy", "pillow", "timm")  # make the data (glyphs, corruptions) and the model


def fingerprint(device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """This process's fingerprint for a run on `device` ("cpu", "cuda", "cuda:1",
    "mps") with `threads` torch CPU threads (default: torch's current count)."""
    import torch

    kind = device.split(":")[0]
    fp: dict[str, Any] = {**_stack(), "device": kind,
                          "threads": threads if threads is not None else torch.get_num_threads(),
                          "determinism": _determinism(), "gpu": _gpu(device) if kind == "cuda" else None,
                          "omp": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}}
    return {"id": fingerprint_id(fp), **fp}


def fingerprint_id(fp: dict[str, Any]) -> str:
    """12 hex digits over the fields of `fp` that can change numbers (module docstring)."""
    keyed = {k: fp.get(k) for k in ID_FIELDS}
    if (fp.get("numerics") or {}).get("mode") != "portable":
        keyed["cpu"] = fp.get("cpu")
    if fp.get("device") == "cuda":
        keyed.update(cuda=fp.get("cuda"), cudnn=fp.get("cudnn"),
                     gpu={k: (fp.get("gpu") or {}).get(k) for k in ("name", "capability")})
    canonical = json.dumps(keyed, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def describe(fp: dict[str, Any] | None) -> str:
    """One line a reader can compare: `3f9a0c1d2b4e: AuthenticAMD AMD EPYC (avx512),
    torch 2.14.1 AVX2 kernels, portable numerics, 1 thread, cpu`."""
    if not fp:
        return "no fingerprint (a record older than fingerprints)"
    cpu = fp.get("cpu") or {}
    threads = fp.get("threads")
    where = fp.get("device", "?")
    if fp.get("gpu"):
        where = f"{fp['gpu'].get('name')} (sm {fp['gpu'].get('capability')})"
    return (f"{fp.get('id')}: {cpu.get('vendor') or '?'} {cpu.get('model') or '?'} ({cpu.get('isa') or '?'}), "
            f"torch {fp.get('torch')} {fp.get('torch_cpu_capability')} kernels, "
            f"{(fp.get('numerics') or {}).get('mode', '?')} numerics, {threads} thread{'s' * (threads != 1)}, "
            f"{where}")


def of_record(record: dict) -> dict[str, Any] | None:
    """A record's fingerprint, or None for records written before fingerprints."""
    fp = (record.get("env") or {}).get("fingerprint")
    return fp if isinstance(fp, dict) and fp.get("id") else None


def summarise(records: list[dict]) -> str | None:
    """How many distinct fingerprints `records` come from, each with its count and
    description; None when no record has one."""
    fps = {fp["id"]: fp for r in records if (fp := of_record(r))}
    if not fps:
        return None
    counts = Counter(fp["id"] for r in records if (fp := of_record(r)))
    without = sum(1 for r in records if of_record(r) is None)
    parts = [f"{describe(fps[i])} ({n} records)" if len(fps) > 1 or without else describe(fps[i])
             for i, n in counts.most_common()]
    head = f"{len(fps)} machine fingerprint{'s' * (len(fps) > 1)}"
    tail = f"; {without} records have none (older)" if without else ""
    return f"{head}: {'; '.join(parts)}{tail}"


# ---------------------------------------------------------------- the parts


@functools.lru_cache(maxsize=1)
def _stack() -> dict[str, Any]:
    """What does not change within a process: the CPU, the libraries, the numerics."""
    import torch

    config = torch.__config__.show()
    return {
        "machine": platform.machine(),
        "cpu": _cpu(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numerics": {"mode": numerics.active_mode(),
                     **{k: os.environ.get(k) for k in (*numerics.PORTABLE_ENV, *numerics.OTHER_PATH_VARS)}},
        "blas": " ".join(filter(None, (_first(r"BLAS_INFO=(\w+)", config),
                                       _first(r"Math Kernel Library Version ([\d.]+)", config)))) or None,
        "onednn": _first(r"MKL-DNN v([\w.]+)", config),
        "mkldnn": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "libraries": {"python": platform.python_version(), **{name: _version(name) for name in _LIBRARIES},
                      "freetype": _freetype()},
        "libc": " ".join(platform.libc_ver()).strip() or None,  # its libm computes the scalar exp, log, ...
        "os": platform.platform(),
    }


def _cpu() -> dict[str, Any]:
    """Vendor and model from /proc/cpuinfo (platform.processor() elsewhere); the ISA
    from torch's own CPUID reading (what its kernels dispatch on)."""
    info = _proc_cpuinfo()
    return {"vendor": info.get("vendor_id"), "model": info.get("model name") or platform.processor() or None,
            "family": info.get("cpu family"), "model_id": info.get("model"), "isa": _isa(info)}


def _proc_cpuinfo() -> dict[str, str]:
    try:
        with open("/proc/cpuinfo") as fh:
            block = fh.read().split("\n\n", 1)[0]
    except OSError:
        return {}
    pairs = (line.split(":", 1) for line in block.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _isa(info: dict[str, str]) -> str:
    """The widest vector ISA, plus the extensions that change kernels: "avx512+vnni+bf16"."""
    import torch

    checks = {name: getattr(torch.cpu, f"_is_{name}_supported", None) for name in
              ("avx2", "avx512", "vnni", "avx512_bf16", "amx_tile")}
    have = {name: bool(fn()) for name, fn in checks.items() if fn is not None}
    if not have:  # an older torch: the kernel's flags
        flags = set(info.get("flags", "").split())
        have = {"avx2": "avx2" in flags, "avx512": "avx512f" in flags}
    base = "avx512" if have.get("avx512") else "avx2" if have.get("avx2") else "sse"
    extras = [short for name, short in (("vnni", "vnni"), ("avx512_bf16", "bf16"), ("amx_tile", "amx"))
              if have.get(name) and base == "avx512"]
    return "+".join([base, *extras])


def _determinism() -> dict[str, Any]:
    import torch

    return {"algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "matmul_precision": torch.get_float32_matmul_precision(),
            "cudnn_tf32": bool(torch.backends.cudnn.allow_tf32)}


def _gpu(device: str) -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    index = torch.device(device).index or 0
    major, minor = torch.cuda.get_device_capability(index)
    return {"name": torch.cuda.get_device_name(index), "capability": f"{major}.{minor}", "driver": _driver()}


@functools.lru_cache(maxsize=1)
def _driver() -> str | None:
    """The NVIDIA driver version (nvidia-smi), or None where it cannot be asked."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _freetype() -> str | None:
    """The FreeType Pillow renders the glyph datasets with: another version draws other pixels."""
    try:
        from PIL import features

        return features.version("freetype2")
    except Exception:  # noqa: BLE001 - no Pillow, or one without FreeType
        return None


def _first(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None
