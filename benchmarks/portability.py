"""Do two different CPUs give bit-identical numbers in `numerics: portable`, and not in default?

Runs one tiny suite (a test_resnet pretrained for a few steps on generated letters,
then full fine-tuning and a linear probe on the digits, with a corruption and a
printed-digits shift, one seed) natively and under qemu-user emulating other CPUs
(`qemu-x86_64 -cpu MODEL`: its own CPUID, so torch, MKL and oneDNN see another
vendor and ISA), once per numerics mode, each in its own cache (the pretraining
runs on each CPU). Then compares every metric the records hold (test, val, shifted
and source accuracies and losses to the last bit, per-example correctness) with
the native run's, and prints per CPU and mode: the fingerprint, whether all
numbers are equal, and the first that differs.

The runs use the sequential executor: qemu-user emulates this process only, and a
pool's workers (new processes) would run natively. The glyph images are generated
natively and handed to the emulated runs through their cache: under qemu 7.2,
torch's grid_sample (which warps the glyphs) crashes in its AVX2 gather, an
emulator fault (the same kernel runs on real AVX2 CPUs). So the emulated runs check
pretraining, fine-tuning and evaluation; whether the generated images depend on
the CPU's kernels is checked natively instead (default and portable modes, AVX-512
and AVX2 kernels, must make the same files). Emulation is slow (~50x): the suite
is a few hundred steps in all, ~5-15 minutes per emulated run on 2 cores.

    apt-get install qemu-user
    python benchmarks/portability.py [--cpus Haswell,EPYC-Rome] [--modes portable,default]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = """\
name: portability
pretrain:
  letters:
    backbone: {{name: timm, params: {{model: test_resnet, input_size: 32}}}}
    dataset: {{name: glyphs, params: {{charset: uppercase, n_train: 520, n_test: 104, disk_cache: true}}}}
    train: {{lr: 0.003, batch_size: 64, schedule: onecycle, weight_decay: 0.05}}
    budget: {{epochs: 1}}
    min_source_acc: 0
backbones: [{{name: timm, label: letters, params: {{model: test_resnet, pretrained: "pretrain:letters"}}}}]
datasets:
  - name: digits
    shifts:
      corruptions: [gaussian_noise]
      severities: [3]
      datasets: [{{name: glyphs, label: printed-digits, params: {{charset: digits, n_train: 10, n_test: 100, seed: 1, disk_cache: true}}}}]
strategies: [{{name: full}}, {{name: linear-probe}}]
seeds: [0]
data: [{{shots: 10}}]
budget: {{samples: 640}}
train: {{optimizer: adamw, lr: 0.003, batch_size: 64, schedule: cosine, weight_decay: 0.01}}
eval: {{source_max: 104, curve_points: 2}}
executor: {{name: sequential}}
threads: 1
numerics: {mode}
"""


def _run(tmp: Path, mode: str, cpu: str | None) -> tuple[Path, float]:
    """Run the suite in `mode`, natively (cpu None) or emulating `cpu` with the native
    run's generated data; its records' folder and seconds."""
    tag = f"{mode}-{cpu or 'native'}"
    if cpu:
        shutil.copytree(tmp / f"cache-{mode}-native" / "data", tmp / f"cache-{tag}" / "data", dirs_exist_ok=True)
    suite = tmp / f"{tag}.yaml"
    suite.write_text(SUITE.format(mode=mode))
    command = [sys.executable, "-m", "ftbench", "run", str(suite), "--results", str(tmp / tag), "-q"]
    if cpu:
        command = ["qemu-x86_64", "-cpu", cpu, *command]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FTBENCH_CACHE": str(tmp / f"cache-{tag}"),
           "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{tag}: the suite failed:\n{done.stderr[-3000:]}")
    return tmp / tag, time.perf_counter() - t0


def _numbers(folder: Path) -> tuple[dict[str, object], dict]:
    """Every metric of every record, flattened by run (cell and seed) and path; and a fingerprint."""
    out, fingerprint = {}, {}
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("format") != "ftbench.run/1":
            continue
        fingerprint = record["env"]["fingerprint"]
        run = f"{record['cell']['strategy']}/{record['cell']['data']}/s{record['seed']}"
        metrics = {k: v for k, v in record["metrics"].items() if k not in ("curve", "time_to_target")}
        metrics["curve"] = [{k: v for k, v in p.items() if k in ("train_loss", "val_acc")}
                            for p in record["metrics"].get("curve") or []]
        _flatten(metrics, run, out)
    return out, fingerprint


def _flatten(value, prefix: str, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}", out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", default="Haswell,EPYC-Rome", help="qemu CPU models (qemu-x86_64 -cpu help)")
    parser.add_argument("--modes", default="portable,default")
    args = parser.parse_args()
    if shutil.which("qemu-x86_64") is None:
        sys.exit("qemu-x86_64 not found: apt-get install qemu-user")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        modes = args.modes.split(",")
        for mode in modes:
            native, seconds = _run(tmp, mode, None)
            reference, fp = _numbers(native)
            print(f"{mode} native ({seconds:.0f} s): fingerprint {fp['id']}, {fp['cpu']['vendor']} "
                  f"{fp['cpu']['isa']}, torch {fp['torch_cpu_capability']}; {len(reference)} numbers", flush=True)
            for cpu in args.cpus.split(","):
                folder, seconds = _run(tmp, mode, cpu)
                numbers, fp = _numbers(folder)
                differ = [k for k in reference if numbers.get(k) != reference[k]]
                first = f"; first: {differ[0]} {reference[differ[0]]!r} vs {numbers.get(differ[0])!r}" if differ else ""
                print(f"{mode} {cpu} ({seconds:.0f} s): fingerprint {fp['id']}, isa {fp['cpu']['isa']}, torch "
                      f"{fp['torch_cpu_capability']}: {'ALL EQUAL' if not differ else f'{len(differ)} of {len(reference)} differ'}"
                      f"{first}", flush=True)
        if len(modes) > 1:
            data = [{p.name: p.read_bytes() for p in (tmp / f"cache-{m}-native" / "data").glob("*")} for m in modes]
            same = all(d == data[0] for d in data)
            print(f"generated glyph images ({len(data[0])} files) in {' and '.join(modes)} modes natively: "
                  f"{'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
