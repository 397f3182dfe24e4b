"""The results store: one JSON record per run under results/<suite>/, written
atomically, plus claim files so two drivers never run one run twice.

A record is written to a temporary file in the same folder, flushed and fsynced,
then renamed over its final name: a crash leaves either the old file or the new
one, never half of one. Claims (`ftbench.results.claims`) are files created with
O_EXCL beside the records; the store takes, renews and releases them.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from ftbench.errors import FtbenchError
from ftbench.results.claims import CLAIM_SUFFIX, claim_is_stale, claim_lease_seconds, read_owner, this_process
from ftbench.results.records import RECORD_FORMAT

RESOLVED_SUITE = "suite.resolved.yaml"


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
        return self.folder / f"{run_id}{CLAIM_SUFFIX}"

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
                        json.dump(this_process(), fh)
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
        return read_owner(self.claim_path(run_id))

    def claims(self) -> dict[str, dict]:
        """Live claims: run id -> owner (an unreadable claim file: {"unreadable": path})."""
        out = {}
        for path in self.folder.glob(f"*{CLAIM_SUFFIX}"):
            if not claim_is_stale(path):
                out[path.name[: -len(CLAIM_SUFFIX)]] = read_owner(path) or {"unreadable": str(path)}
        return out
