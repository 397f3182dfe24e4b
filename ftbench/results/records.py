"""Run records as readers see them: the record format, the schema of the fields the
report, compare and status read (`RecordSchema`), and `load_records`, which reads a
results folder and sets aside what is not a valid record. No torch: the report
reads per-example correctness with `decode_correct` here."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

RECORD_FORMAT = "ftbench.run/1"


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


class _CellLabels(_Strict):
    """A record's `cell`: the labels a report groups it by."""

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
    """Where and with what the run ran; other keys (plugins, platform) pass through."""

    python: str | None = None  # versions: the gate compares them between sides
    torch: str | None = None
    timm: str | None = None
    ftbench: str | None = None
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
    cell: _CellLabels
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


def encode_correct(correct: np.ndarray) -> str:
    """Per-example correctness as base64 of numpy.packbits (n bits in n/8 bytes)."""
    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool))).decode("ascii")


def decode_correct(text: str, n: int) -> np.ndarray:
    """The boolean array `encode_correct` packed, of length `n`."""
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8), count=n).astype(bool)
