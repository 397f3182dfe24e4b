"""The results store: one JSON record per run under results/<suite>/, written
atomically, plus claim files so two drivers never run one run twice.

A record is written to a temporary file in the same folder, flushed and fsynced,
then renamed over its final name: a crash leaves either the old file or the new
one, never half of one. A claim is a file created with O_EXCL holding the pid,
host and boot id of its owner, who renews it (touches the file) while the run is
in flight; a claim whose lease ran out, or whose owner is gone (same host, pid not
alive or rebooted since), is stale and may be taken over (docs/records.md).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftbench.errors import FtbenchError

RECORD_FORMAT = "ftbench.run/1"
RESOLVED_SUITE = "suite.resolved.yaml"
_CLAIM_SUFFIX = ".claim"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` so that readers never see a partial file."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=False, allow_nan=True))


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old or the new file."""
    with atomic_file(path) as fh:
        fh.write(text)


@contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO]:
    """A file to write `path` through: a temporary file beside it (unique per writer,
    so two drivers never share one), synced and renamed over `path` when the block
    ends, removed if it raises. Readers see the old or the new file, never a part."""
    with storage_errors(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with storage_errors(path.parent):
            os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would create it, not mkstemp's 0600
            with os.fdopen(fd, mode) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StorageError(FtbenchError):
    """The results folder (or cache) cannot be written: read-only, full, gone."""


@contextmanager
def storage_errors(folder: Path) -> Iterator[None]:
    """Turn an OSError while writing into `folder` into a StorageError naming it."""
    try:
        yield
    except OSError as exc:
        raise StorageError(f"cannot write to {folder}: {exc.strerror or exc}; free space or fix its permissions "
                           "(or pass another folder with --results), then rerun: finished runs are kept") from exc


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once, at import, before any thread
    os.umask(mask)
    return mask


_UMASK = _umask()


class ResultsStore:
    """The folder of one suite's records."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def record_path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.json"

    def write(self, record: dict) -> Path:
        path = self.record_path(record["id"])
        write_json_atomic(path, record)
        return path

    def read(self, run_id: str) -> dict | None:
        """The record of `run_id`, or None if absent or unreadable (a crash before
        the atomic rename leaves no file; a foreign partial file counts as absent)."""
        try:
            with open(self.record_path(run_id)) as fh:
                record = json.load(fh)
        except (OSError, json.JSONDecodeError):
            return None
        return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None

    def is_done(self, run_id: str) -> bool:
        """A run is done when its record exists with status ok. Failed and diverged
        runs are run again by the next `ftbench run`: a transient failure (out of
        memory, a lost node) deserves a retry, and a deterministic one just fails
        again with the same record."""
        return self.done_record(run_id) is not None

    def done_record(self, run_id: str) -> dict | None:
        """The record of `run_id` when the run is done (`is_done`), else None."""
        record = self.read(run_id)
        return record if record is not None and record.get("status") == "ok" else None

    # ------------------------------------------------------------ claims

    def claim_path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}{_CLAIM_SUFFIX}"

    def claim(self, run_id: str) -> bool:
        """Take the claim on `run_id`; False if another live process holds it."""
        with storage_errors(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.claim_path(run_id)
            for _ in range(2):
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    if not claim_is_stale(path):
                        return False
                    path.unlink(missing_ok=True)  # the owner died or its lease ran out: take it over
                    continue
                try:
                    with os.fdopen(fd, "w") as fh:
                        json.dump(_me(), fh)
                except OSError:
                    path.unlink(missing_ok=True)
                    raise
                return True
        return False

    def release(self, run_id: str) -> None:
        self.claim_path(run_id).unlink(missing_ok=True)

    def renew(self, run_id: str) -> bool:
        """Extend this process's lease on `run_id` (the claim file's time is the
        last renewal); False when the claim is no longer this process's."""
        if not self.held_by_me(run_id):
            return False
        try:
            os.utime(self.claim_path(run_id))
        except OSError:
            return False
        return True

    @contextmanager
    def leased(self, run_id: str) -> Iterator[None]:
        """Renew the claim on `run_id` from a thread while the block runs."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(claim_lease_seconds() / 4):
                if not self.renew(run_id):
                    return

        thread = threading.Thread(target=renew, name=f"ftbench-lease-{run_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def held_by_me(self, run_id: str) -> bool:
        owner = self.claim_owner(run_id)
        return owner is not None and (owner.get("host"), owner.get("pid")) == (socket.gethostname(), os.getpid())

    def claim_owner(self, run_id: str) -> dict | None:
        """Who holds the claim on `run_id` ({pid, host, boot_id, since}), or None."""
        return _read_owner(self.claim_path(run_id))

    def claims(self) -> dict[str, dict]:
        """Live claims: run id -> owner (an unreadable claim file: {"unreadable": path})."""
        out = {}
        for path in self.folder.glob(f"*{_CLAIM_SUFFIX}"):
            if not claim_is_stale(path):
                out[path.name[: -len(_CLAIM_SUFFIX)]] = _read_owner(path) or {"unreadable": str(path)}
        return out


def claim_lease_seconds() -> float:
    """How long a claim lives without renewal (FTBENCH_CLAIM_LEASE_S, default 600 s)."""
    try:
        value = float(os.environ.get("FTBENCH_CLAIM_LEASE_S", _DEFAULT_LEASE_S))
    except ValueError:
        return _DEFAULT_LEASE_S
    return value if 0 < value < float("inf") else _DEFAULT_LEASE_S


def claim_is_stale(path: Path) -> bool:
    """A claim is stale, and may be taken over, when its lease ran out (its file was
    not renewed for `claim_lease_seconds()`, whatever host wrote it), or when it
    is from this host and its owner is gone (the pid is not alive, or the host
    rebooted since). An unreadable claim file is stale once a minute old (it may
    be being written)."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    owner = _read_owner(path)
    if owner is None:
        return age > 60
    if age > claim_lease_seconds():
        return True
    if owner["host"] != socket.gethostname():
        return False
    if owner.get("boot_id") and _BOOT_ID and owner["boot_id"] != _BOOT_ID:
        return True
    return not _pid_alive(owner["pid"])


def _me() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "boot_id": _BOOT_ID, "since": time.time()}


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


_BOOT_ID = _boot_id()
_DEFAULT_LEASE_S = 600.0


def _read_owner(path: Path) -> dict | None:
    """The owner a claim file names, or None when it is missing or not a claim
    ({"pid": int, "host": str, ...})."""
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(owner, dict) and type(owner.get("pid")) is int and isinstance(owner.get("host"), str)):
        return None
    return owner


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) still answers kill(0)
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(0) has to do


def iter_record_files(folder: str | Path) -> Iterator[Path]:
    yield from sorted(Path(folder).glob("*.json"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Split(_Strict):
    """The metrics of one evaluated set; what the report reads must be a number."""

    acc: float | None = None
    balanced_acc: float | None = None
    top5: float | None = None
    loss: float | None = None
    n: int | None = None


class _TimeToTarget(_Strict):
    target_acc: float | None = None
    reached: bool = False
    seconds: float | None = None
    steps: int | None = None
    epoch: float | None = None


class _Variant(_Strict):
    test: _Split | None = None
    shifted: dict[str, _Split] | None = None
    source_after: _Split | None = None


class _Metrics(_Strict):
    test: _Split | None = None
    val: _Split | None = None
    shifted: dict[str, _Split] | None = None
    source: dict[str, _Split | int | None] | None = None  # before/after, and the source task's classes
    curve: list[dict[str, float | None]] | None = None
    time_to_target: _TimeToTarget | None = None
    variants: dict[str, _Variant] | None = None


class _Cell(_Strict):
    backbone: str
    dataset: str
    strategy: str
    data: str


class _Budget(_Strict):
    limits: dict[str, float | None] = {}
    used: dict[str, float | None] | None = None
    stopped_by: str | None = None


class _DataAmount(_Strict):
    kind: str | None = None
    value: float | None = None
    n_train: int | None = None


class _Error(_Strict):
    type: str = ""
    message: str = ""
    traceback: str = ""


class _Fingerprint(_Strict):
    """`env.fingerprint` (ftbench.fingerprint): what status, the report and reproduce read."""

    id: str = Field(min_length=1)
    numerics: dict[str, str | None] = {}
    threads: int | None = None
    device: str | None = None


class _Env(_Strict):
    """Where and with what the run ran; other keys (versions, plugins) pass through."""

    device: str | None = None
    device_name: str | None = None
    threads: int | None = None
    code: dict[str, str] | None = None
    fingerprint: _Fingerprint | None = None


class RecordSchema(_Strict):
    """What a run record must hold for the report, compare and status to read it
    (`load_records` checks each file against it): the fields they read, with the
    types they expect. Fields beyond these pass through unchecked."""

    format: Literal["ftbench.run/1"]
    id: str = Field(min_length=1)
    status: Literal["ok", "failed", "diverged", "skipped"]
    cell: _Cell
    seed: int
    metrics: _Metrics = Field(default_factory=_Metrics)
    timing: dict[str, float | None] = {}
    budget: _Budget = Field(default_factory=_Budget)
    params: dict[str, int | None] = {}
    env: _Env = Field(default_factory=_Env)
    data_amount: _DataAmount = Field(default_factory=_DataAmount)
    memory: dict[str, float | str | None] = {}
    error: _Error | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Records(list):
    """Run records, plus `skipped`: (path, why) of each file that is not a valid one."""

    def __init__(self, records=(), skipped: list[tuple[Path, str]] | None = None):
        super().__init__(records)
        self.skipped = skipped or []

    def skipped_note(self) -> str | None:
        """One line naming the skipped files, or None when none was."""
        if not self.skipped:
            return None
        named = "; ".join(f"{path.name}: {why}" for path, why in self.skipped[:5])
        more = f" (and {len(self.skipped) - 5} more)" if len(self.skipped) > 5 else ""
        return (f"{len(self.skipped)} record file(s) skipped as invalid ({named}{more}); fix or delete them "
                "and rerun `ftbench run` to redo those runs")


def check_record(data: Any) -> str | None:
    """Why `data` is not a valid run record (None when it is one)."""
    try:
        RecordSchema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "record"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    return None


def load_records(folder: str | Path, quiet: bool = False) -> Records:
    """Every run record in `folder` (not recursive), sorted by id. Files that are
    not run records (other JSON: baselines, notes) are ignored; a record file that
    is not valid JSON or not a valid record (hand-edited, truncated by a foreign
    tool) is skipped, kept in `.skipped` and named on stderr (unless `quiet`),
    so no run is dropped silently."""
    from ftbench.errors import UserInputError

    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"{folder} is not a results folder; pass results/<suite> as written by `ftbench run`")
    records, skipped = [], []
    for path in iter_record_files(folder):
        try:
            data = json.loads(path.read_bytes())
        except OSError as exc:
            skipped.append((path, f"cannot read it ({exc.strerror})"))
            continue
        except ValueError as exc:  # invalid JSON or UTF-8
            skipped.append((path, f"not valid JSON ({exc})"))
            continue
        if not (isinstance(data, dict) and data.get("format") == RECORD_FORMAT):
            if _looks_like_record(path):
                skipped.append((path, "not an ftbench.run/1 record"))
            continue
        why = check_record(data)
        if why is None:
            records.append(data)
        else:
            skipped.append((path, why))
    out = Records(sorted(records, key=lambda r: r["id"]), skipped)
    if out.skipped and not quiet:
        print(f"warning: {folder}: {out.skipped_note()}", file=sys.stderr)
    return out


def _looks_like_record(path: Path) -> bool:
    """Whether a JSON file's name is a run id's (hex), so its not being a record is news."""
    return all(c in "0123456789abcdef" for c in path.stem) and len(path.stem) >= 8
