"""Crashes, signals and bad input (issue 15): the pool executor, the store and the
parser never lose work and never print a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.results.store import ResultsStore
from ftbench.results.records import load_records

ROOT = Path(__file__).parents[1]
PLUGINS = ("tests.toyplugin", "tests.hardplugin")
BASE = {"name": "hard", "backbones": [{"name": "toy-timm"}], "datasets": [{"name": "toy"}],
        "strategies": [{"name": "toy-full"}], "seeds": [0], "budget": {"steps": 2}, "train": {"batch_size": 16}}


def invoke(*args):
    plugins = [a for p in PLUGINS for a in ("--plugin", p)]
    return CliRunner().invoke(cli, [*plugins, *args], obj={})


def suite_file(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({**BASE, **changes}))
    return path


def _cli_process(*args, env=None) -> subprocess.Popen:
    plugins = [a for p in PLUGINS for a in ("--plugin", p)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "ftbench", *plugins, *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# ---------------------------------------------------------------- 1, 3, 4: the pool executor


def test_a_dying_worker_fails_only_its_own_run_and_the_queue_goes_on(tmp_path):
    path = suite_file(tmp_path, strategies=[{"name": "die"}, {"name": "toy-full"},
                                            {"name": "toy-full", "label": "b", "train": {"lr": 0.01}}])
    result = invoke("run", str(path), "--results", str(tmp_path / "r"), "-q", "-j", "2")
    assert result.exit_code == 1, result.output
    records = load_records(tmp_path / "r")
    assert len(records) == 3
    by_status = {}
    for r in records:
        by_status.setdefault((r["cell"]["strategy"], r["status"]), []).append(r)
    assert {k: len(v) for k, v in by_status.items()} == {("toy-full", "ok"): 1, ("b", "ok"): 1, ("die", "failed"): 1}
    for r in by_status[("die", "failed")]:  # one retry (the default), then failed
        assert r["error"]["type"] == "WorkerLost" and "died 2 time(s)" in r["error"]["message"]
    assert not list((tmp_path / "r").glob("*.claim"))


@pytest.mark.parametrize("signum, code, jobs", [(signal.SIGTERM, 143, 2), (signal.SIGINT, 130, 1)])
def test_an_interrupted_run_stops_now_releases_claims_and_leaves_no_worker(tmp_path, signum, code, jobs):
    pids = tmp_path / "pids"
    pids.mkdir()
    path = suite_file(tmp_path, strategies=[{"name": "sleep", "params": {"seconds": 60}}], seeds=[0, 1, 2, 3])
    pool = ["-j", str(jobs)] if jobs > 1 else []
    proc = _cli_process("run", str(path), "--results", str(tmp_path / "r"), "-q", *pool,
                        env={"FTBENCH_TEST_PIDS": str(pids)})
    try:
        assert _wait_for(lambda: len(list(pids.iterdir())) == jobs, 120), proc.communicate(timeout=5)
        workers = [int(p.name) for p in pids.iterdir()]
        t0 = time.time()
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == code, out
        assert time.time() - t0 < 10 and "Traceback" not in out
        assert ("terminated" if signum == signal.SIGTERM else "interrupted") + ": finished runs are kept" in out
        assert _wait_for(lambda: not any(_alive(p) for p in workers), 5)  # (with jobs 1: the driver itself)
        assert not list((tmp_path / "r").glob("*.claim")) and not list((tmp_path / "r").glob("*.json"))
    finally:
        proc.kill()


def test_workers_exit_when_their_driver_is_killed(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    path = suite_file(tmp_path, strategies=[{"name": "sleep", "params": {"seconds": 60}}], seeds=[0, 1])
    proc = _cli_process("run", str(path), "--results", str(tmp_path / "r"), "-q", "-j", "2",
                        env={"FTBENCH_TEST_PIDS": str(pids)})
    try:
        assert _wait_for(lambda: len(list(pids.iterdir())) == 2, 120), proc.communicate(timeout=5)
        workers = [int(p.name) for p in pids.iterdir()]
        proc.kill()
        proc.wait()
        assert _wait_for(lambda: not any(_alive(p) for p in workers), 5)
    finally:
        proc.kill()


# ---------------------------------------------------------------- 2, 8: records under claims; claims


def _spec_payload(tmp_path, registry):
    from ftbench.driver.worker import Payload
    from ftbench.suite import expand, load_suite

    spec = expand(load_suite(suite_file(tmp_path), registry), registry)[0]
    return Payload(spec, tmp_path / "r")


def test_a_failed_record_never_replaces_a_finished_one_nor_a_live_claim(tmp_path, toy_registry):
    from ftbench.driver.worker import failed_record

    payload = _spec_payload(tmp_path, toy_registry)
    store = payload.store()
    run_id = payload.run_id
    store.write({"format": "ftbench.run/1", "id": run_id, "status": "ok", "marker": 1})
    assert failed_record(payload, "worker died")["marker"] == 1
    assert store.read(run_id)["marker"] == 1 and not list(store.folder.glob("*.claim"))
    store.record_path(run_id).unlink()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        store.claim_path(run_id).write_text(json.dumps({"pid": other.pid, "host": os.uname().nodename}))
        assert failed_record(payload, "worker died")["status"] == "claimed-elsewhere"
        assert store.read(run_id) is None
    finally:
        other.kill()
        other.wait()
    assert failed_record(payload, "worker died")["status"] == "failed"  # the dead owner's claim is taken over
    assert store.read(run_id)["error"]["type"] == "WorkerLost" and not list(store.folder.glob("*.claim"))


def test_a_run_whose_claim_was_taken_over_does_not_overwrite_the_new_owners_record(tmp_path, toy_registry):
    from ftbench.engine.runner import execute

    payload = _spec_payload(tmp_path, toy_registry)
    store = payload.store()
    run_id = payload.run_id
    store.write({"format": "ftbench.run/1", "id": run_id, "status": "ok", "marker": 2})
    assert execute(payload.spec, toy_registry, store)["marker"] == 2  # no claim held: keep theirs
    assert store.read(run_id)["marker"] == 2
    assert store.claim(run_id)
    try:
        assert execute(payload.spec, toy_registry, store).get("marker") is None  # held: a rerun writes
    finally:
        store.release(run_id)


@pytest.mark.parametrize("content", ['{"pid": "abc"}', "[1, 2]", "garbage", '{"pid": 1e400, "host": "x"}',
                                     '{"pid": 100000000000000000000000, "host": "HOST"}'])
def test_garbage_claim_files_neither_crash_run_nor_status(tmp_path, content):
    out = tmp_path / "r"
    path = suite_file(tmp_path)
    dry = invoke("run", str(path), "--results", str(out), "--dry-run")
    run_id = dry.output.splitlines()[2].split()[0]
    out.mkdir()
    claim = out / f"{run_id}.claim"
    claim.write_text(content.replace("HOST", os.uname().nodename))
    fresh = invoke("status", str(out))
    assert fresh.exit_code == 0 and "Traceback" not in fresh.output
    held = invoke("run", str(path), "--results", str(out), "-q")  # a fresh unreadable claim may be mid-write
    assert "Traceback" not in held.output
    if held.exit_code == 0:  # a pid that cannot be alive: taken over at once
        assert len(load_records(out)) == 1 and not claim.exists()
        return
    assert held.exit_code == 1 and f"claim file {claim}" in held.output
    old = time.time() - 120
    os.utime(claim, (old, old))
    result = invoke("run", str(path), "--results", str(out), "-q")
    assert result.exit_code == 0, result.output
    assert len(load_records(out)) == 1 and not claim.exists()


def test_claims_carry_host_and_boot_id_and_expire_by_lease(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    assert store.claim("a")
    owner = store.claim_owner("a")
    assert owner["host"] == os.uname().nodename and owner["pid"] == os.getpid()
    if os.path.exists("/proc/sys/kernel/random/boot_id"):
        assert owner["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert not ResultsStore(tmp_path).claim("a")  # live owner
    # another host's claim: kept while its owner renews it, taken over once its lease ran out
    monkeypatch.setenv("FTBENCH_CLAIM_LEASE_S", "1")
    (tmp_path / "b.claim").write_text(json.dumps({"pid": 1, "host": "elsewhere", "boot_id": "x"}))
    assert not store.claim("b")
    old = time.time() - 5
    os.utime(tmp_path / "b.claim", (old, old))
    assert store.claim("b")
    # this host, another boot: its pids mean nothing now
    (tmp_path / "c.claim").write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                                  "boot_id": "an-earlier-boot"}))
    assert store.claim("c")
    # the owner renews its lease while a run is in flight
    with store.leased("a"):
        os.utime(tmp_path / "a.claim", (old, old))
        assert _wait_for(lambda: time.time() - (tmp_path / "a.claim").stat().st_mtime < 2, 3)
        assert not ResultsStore(tmp_path).claims() == {}


# ---------------------------------------------------------------- 11: records validated on read


CORRUPTIONS = {
    "no id": lambda r: r.pop("id"),
    "string acc": lambda r: r["metrics"]["test"].update(acc="95.0"),
    "env null": lambda r: r.update(env=None),
    "string seed": lambda r: r.update(seed="0"),
    "metrics list": lambda r: r.update(metrics=[]),
    "cell missing": lambda r: r.update(cell={"backbone": "x"}),
    "not json": None,
}


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two")
    path = suite_file(tmp, strategies=[{"name": "toy-full"}, {"name": "toy-full", "label": "b", "train": {"lr": 0.01}}],
                      seeds=[0, 1])
    assert invoke("run", str(path), "--results", str(tmp / "r"), "-q").exit_code == 0
    return tmp / "r"


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_bad_record_is_named_skipped_and_counted(two_seeds, tmp_path, corruption):
    import shutil

    out = tmp_path / "r"
    shutil.copytree(two_seeds, out)
    victim = sorted(out.glob("*.json"))[0]
    if CORRUPTIONS[corruption] is None:
        victim.write_bytes(b'{"format": "ftbench.run/1", "id": \xff')
    else:
        record = json.loads(victim.read_text())
        CORRUPTIONS[corruption](record)
        victim.write_text(json.dumps(record))
    records = load_records(out, quiet=True)
    assert len(records) == 3 and [p for p, _ in records.skipped] == [victim]
    for args in (["report", str(out)], ["compare", str(two_seeds), str(out)], ["status", str(out)]):
        result = invoke(*args)
        assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
        assert f"1 record file(s) skipped as invalid ({victim.name}" in result.output, args


# ---------------------------------------------------------------- 6, 7: the parser and bounds


def _validate_text(tmp_path, text: str | bytes):
    path = tmp_path / "s.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return invoke("validate", str(path))


def test_an_alias_bomb_is_refused_before_anything_is_expanded(tmp_path):
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    text = yaml.safe_dump(BASE) + "extra:\n" + "\n".join("  " + line for line in bomb) + "\n"
    t0 = time.perf_counter()
    result = _validate_text(tmp_path, text)
    assert result.exit_code == 2 and "aliases (*name) are expanded" in result.output
    assert "Traceback" not in result.output


def test_deep_nesting_and_bad_utf8_and_duplicate_keys_are_clear_errors(tmp_path):
    deep = yaml.safe_dump(BASE) + "description: " + "[" * 900 + "]" * 900 + "\n"
    result = _validate_text(tmp_path, deep)
    assert result.exit_code == 2 and "nested more than 64 levels deep" in result.output, result.output
    result = _validate_text(tmp_path, b"name: x\ndescription: \xff\xfe\n")
    assert result.exit_code == 2 and "line 2: not UTF-8 text (byte 0xff" in result.output
    result = _validate_text(tmp_path, yaml.safe_dump(BASE) + "seeds: [1]\n")
    assert result.exit_code == 2 and "key 'seeds' is given twice (first at line" in result.output


@pytest.mark.parametrize("change, where", [
    ({"budget": {"seconds": float("inf")}}, "budget.seconds"),
    ({"budget": {"epochs": "1e400"}}, "budget.epochs"),
    ({"budget": {"steps": 10**30}}, "budget.steps"),
    ({"budget": {"seconds": float("nan")}}, "budget.seconds"),
    ({"seeds": [10**30]}, "seeds[0]"),
    ({"seeds": [-1]}, "seeds[0]"),
])
def test_budgets_and_seeds_are_bounded(tmp_path, change, where):
    text = yaml.safe_dump({**BASE, **change}).replace("'1e400'", "1e400")
    result = _validate_text(tmp_path, text)
    assert result.exit_code == 2 and f"  - {where} (line" in result.output, result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- 12: sys.exit in a strategy


def test_sys_exit_in_a_strategy_fails_that_run_only(tmp_path):
    path = suite_file(tmp_path, strategies=[{"name": "sys-exit"}, {"name": "toy-full"}])
    result = invoke("run", str(path), "--results", str(tmp_path / "r"), "-q")
    assert result.exit_code == 1, result.output
    records = {r["cell"]["strategy"]: r for r in load_records(tmp_path / "r")}
    assert records["toy-full"]["status"] == "ok" and records["sys-exit"]["status"] == "failed"
    assert "SystemExit: the run called sys.exit(3)" in result.output


# ---------------------------------------------------------------- 10: compare with nothing comparable


def test_compare_fails_when_nothing_is_comparable_and_warns_on_budgets(tmp_path):
    from tests.test_compare import CELLS, make_record

    def folder(name, records):
        store = ResultsStore(tmp_path / name)
        for r in records:
            store.write(r)
        return str(tmp_path / name)

    base = folder("base", [make_record(CELLS[0], s, 90.0 + s) for s in range(3)])
    failed = folder("failed", [make_record(CELLS[0], s, 0.0, status="failed") for s in range(3)])
    result = invoke("compare", base, failed)
    assert result.exit_code == 1
    assert "nothing to compare: the current results have no ok runs (3 failed" in result.output
    other = folder("other", [make_record(CELLS[1], s, 90.0 + s) for s in range(3)])
    result = invoke("compare", base, other)
    assert result.exit_code == 1 and "no cell has ok runs in both" in result.output
    longer = [make_record(CELLS[0], s, 90.0 + s) for s in range(3)]
    for r in longer:
        r["budget"]["limits"] = {"epochs": 50}
    result = invoke("compare", base, folder("longer", longer))
    assert result.exit_code == 0 and "warning: budgets differ (baseline epochs=5, current epochs=50)" in result.output


# ---------------------------------------------------------------- 9 and minor: the store's files


@pytest.mark.parametrize("where, error", [("tempfile.mkstemp", PermissionError(13, "Permission denied")),
                                          ("os.fsync", OSError(28, "No space left on device"))])
def test_an_unwritable_or_full_results_folder_is_a_clear_error(tmp_path, monkeypatch, where, error):
    import ftbench.results.store

    def fail(*args, **kwargs):
        raise error

    module, name = where.split(".")
    monkeypatch.setattr(getattr(ftbench.results.store, module), name, fail)
    result = invoke("run", str(suite_file(tmp_path)), "--results", str(tmp_path / "r"), "-q")
    assert result.exit_code == 1 and f"Error: cannot write to {tmp_path / 'r'}: {error.strerror}" in result.output
    assert not isinstance(result.exception, OSError)
    assert not list((tmp_path / "r").glob("*.tmp")) and not list((tmp_path / "r").glob("*.claim"))


def test_records_are_created_with_the_umask_not_0600(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    path = ResultsStore(tmp_path).write({"id": "abc", "status": "ok"})
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # group and others read it unless the umask says no


# ---------------------------------------------------------------- 5: imagefolder and symlinked folders


def test_imagefolder_does_not_follow_a_symlink_loop(tmp_path):
    from ftbench_datasets.imagefolder import ImageFolderParams, make_imagefolder
    from tests.test_datasets import _write_domain

    _write_domain(tmp_path, "photo", ["a", "b"], n=4)
    (tmp_path / "photo" / "a" / "up").symlink_to("..")
    task = make_imagefolder(ImageFolderParams(root=str(tmp_path / "photo"), size=8, test_fraction=0.5), seed=0)
    assert len(task.train) + len(task.test) == 8
    assert torch_equal_labels(task)


def torch_equal_labels(task) -> bool:
    """Labels follow images: the red channel is 60 * class index (see _write_domain)."""
    import torch

    images = torch.cat([task.train.images, task.test.images])
    labels = torch.cat([task.train.labels, task.test.labels])
    return torch.equal((images[:, 0, 0, 0] > 30).long(), labels)


# ---------------------------------------------------------------- minor: weights


def test_a_checkpoint_key_cannot_leave_the_cache_and_string_weights_are_named(tmp_path):
    import torch

    from ftbench.errors import BackboneError
    from ftbench_timm import TimmParams, make_timm

    with pytest.raises(BackboneError, match=r"'ftbench:\.\./\.\.' is not a checkpoint key"):
        make_timm(TimmParams(model="test_resnet", pretrained="ftbench:../.."), num_classes=3, seed=0)
    path = tmp_path / "w.pth"
    torch.save({"fc.weight": "not a tensor", "fc.bias": torch.zeros(3)}, path)
    with pytest.raises(BackboneError, match=r"not a state dict of tensors: 1 entries .* fc.weight \(str\)"):
        make_timm(TimmParams(model="test_resnet", pretrained=str(path)), num_classes=3, seed=0)
