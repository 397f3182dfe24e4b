"""Machine fingerprints in records, and the numerics modes that decide what they cover."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftbench import fingerprint as fpmod
from ftbench import numerics
from ftbench.cli import cli
from ftbench.results.records import check_record, load_records

ROOT = Path(__file__).parents[1]
SUITE = """
name: fp
backbones: [{name: toy-timm}]
datasets: [{name: toy, params: {n_per_class: 8}}]
strategies: [{name: toy-full}]
seeds: [0, 1]
budget: {steps: 2}
train: {batch_size: 16}
threads: 1
"""


def test_the_fingerprint_names_the_machine_and_its_id_covers_what_changes_numbers():
    fp = fpmod.fingerprint("cpu", threads=1)
    assert fp["threads"] == 1 and fp["device"] == "cpu" and fp["gpu"] is None
    assert fp["torch_cpu_capability"] in ("DEFAULT", "AVX2", "AVX512") and fp["cpu"]["isa"]
    assert fp["blas"] and fp["onednn"] and fp["libraries"]["timm"] and fp["numerics"]["mode"] == "default"
    assert fp == fpmod.fingerprint("cpu", threads=1)  # stable within a process
    assert fpmod.fingerprint("cpu", threads=2)["id"] != fp["id"]  # threads change the sums

    other_cpu = {**fp, "cpu": {**fp["cpu"], "vendor": "GenuineIntel", "model": "Xeon", "isa": "avx2"}}
    assert fpmod.fingerprint_id(other_cpu) != fp["id"]  # default numerics: the CPU's own code paths
    portable = {**fp, "numerics": {**fp["numerics"], "mode": "portable"}}
    assert fpmod.fingerprint_id(portable) == fpmod.fingerprint_id({**other_cpu, "numerics": portable["numerics"]})
    gpu = {**fp, "device": "cuda", "gpu": {"name": "H100", "capability": "9.0", "driver": "580"}}
    assert fpmod.fingerprint_id(gpu) != fpmod.fingerprint_id({**gpu, "gpu": {**gpu["gpu"], "name": "A100"}})
    assert fpmod.fingerprint_id(gpu) == fpmod.fingerprint_id({**gpu, "gpu": {**gpu["gpu"], "driver": "590"}})


def test_every_record_carries_its_fingerprint_and_status_counts_them(tmp_path):
    suite, out = tmp_path / "fp.yaml", tmp_path / "res"
    suite.write_text(SUITE)
    run = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "run", str(suite), "--results", str(out), "-q"],
                             obj={})
    assert run.exit_code == 0, run.output
    records = load_records(out)
    fps = [r["env"]["fingerprint"] for r in records]
    assert len({fp["id"] for fp in fps}) == 1 and fps[0]["threads"] == 1 and check_record(records[0]) is None
    status = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "status", str(out)], obj={})
    assert f"1 machine fingerprint: {fps[0]['id']}: " in status.output, status.output

    path = next(out.glob("*.json"))  # one record from elsewhere, one older than fingerprints
    data = json.loads(path.read_text())
    data["env"]["fingerprint"] = {**data["env"]["fingerprint"], "id": "0123456789ab"}
    path.write_text(json.dumps(data))
    note = fpmod.summarise([*load_records(out), {"env": {}}])
    assert note.startswith("2 machine fingerprints: ") and "(1 records)" in note and "1 records have none" in note
    assert check_record({**data, "env": {"fingerprint": {"threads": 1}}}).startswith("env.fingerprint.id")


def test_portable_numerics_cannot_start_where_torch_already_runs(monkeypatch):
    for key in numerics.PORTABLE_ENV:
        monkeypatch.delenv(key, raising=False)
    assert numerics.active_mode() == "default"
    numerics.apply("default")  # pins nothing
    with pytest.raises(numerics.NumericsError, match="torch has already computed in this process without ATEN_CPU"):
        numerics.apply("portable")
    assert numerics.active_mode() == "default"  # left as it was
    with pytest.raises(numerics.NumericsError, match="this worker's numerics are default"):
        numerics.check("portable")
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    assert numerics.active_mode() == "custom"
    for key, value in numerics.PORTABLE_ENV.items():
        monkeypatch.setenv(key, value)
    assert numerics.active_mode() == "portable" and numerics.portable_optimizer()
    with pytest.raises(numerics.NumericsError):  # the variables came after torch's first kernel
        numerics.check("portable")


def test_a_portable_suite_pins_its_runs_and_its_checkpoint_key(tmp_path):
    """In a fresh process (the variables must be set before torch starts), in pool
    workers (which inherit them): the runs take ATen's AVX2 kernels and record the portable mode and ftbench's OpenMP wait
    policy; the run ids and the pretraining's key differ from the default mode's,
    whose weights differ."""
    from ftbench.plugins import default_registry
    from ftbench.suite import load_suite, pretrain_key

    suite = tmp_path / "fp.yaml"
    suite.write_text(SUITE + "numerics: portable\n")
    env = {k: v for k, v in os.environ.items() if k not in (*numerics.PORTABLE_ENV, "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run([sys.executable, "-m", "ftbench", "--plugin", "tests.toyplugin", "run", str(suite),
                           "--results", str(tmp_path / "res"), "-q", "-j", "2"], cwd=ROOT, capture_output=True,
                          text=True, env={**env, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 0, done.stderr
    records = load_records(tmp_path / "res")
    fp = records[0]["env"]["fingerprint"]
    assert fp["numerics"] == {"mode": "portable", **numerics.PORTABLE_ENV, "DNNL_MAX_CPU_ISA": None,
                              "MKL_ENABLE_INSTRUCTIONS": None}
    if fp["cpu"]["isa"] != "sse":
        assert fp["torch_cpu_capability"] == "AVX2"
    assert records[0]["config"]["numerics"] == "portable"
    job = load_suite(ROOT / "suites" / "quickstart.yaml", default_registry()).pretrain["letters"]
    assert pretrain_key(job, None, "portable") != pretrain_key(job, None, "default") == pretrain_key(job)

