"""Suites: YAML in, validated by pydantic, expanded into one RunSpec per combination.

Validation runs in two passes and reports every problem of both at once: the
schema (types, unknown keys, ranges), then the names and parameters of the
components against the plugin registry. Each problem names its field path and,
where the YAML has it, its line.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ftbench.config import BudgetConfig, TrainConfig
from ftbench.corruptions import check_corruption
from ftbench.errors import SuiteError, UnknownComponentError, UserInputError
from ftbench.plugins import PLURALS

PRETRAIN_PREFIX = "pretrain:"
CHECKPOINT_PREFIX = "ftbench:"


Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="what numpy and torch accept: 0 .. 2**32-1")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentRef(_Strict):
    name: str = Field(description="a registered component name (`ftbench list`)")
    label: str | None = Field(None, description="name shown in reports; default: the name (plus params if repeated)")
    params: dict[str, Any] = Field(default_factory=dict, description="the component's parameters")


class ShiftConfig(_Strict):
    corruptions: list[str] = Field(default_factory=list, description="corruptions of the test split")
    severities: list[int] = Field(default_factory=lambda: [3], description="severities 1-5 of each corruption")
    datasets: list[ComponentRef] = Field(default_factory=list, description="other datasets as OOD test sets")
    aliases: dict[str, str] = Field(default_factory=dict,
                                    description="an OOD set's class name -> the target's (STL-10 'car' -> 'automobile')")

    @field_validator("severities")
    @classmethod
    def _severity_range(cls, v: list[int]) -> list[int]:
        if any(s < 1 or s > 5 for s in v):
            raise ValueError("severities must be between 1 and 5")
        return v


class DatasetEntry(ComponentRef):
    shifts: ShiftConfig = Field(default_factory=ShiftConfig)
    val_fraction: float = Field(0.1, ge=0, lt=1, description="val split carved from train when the dataset has none")


class StrategyEntry(ComponentRef):
    train: dict[str, Any] = Field(default_factory=dict, description="overrides of the suite's `train:` for this strategy")


class DataAmount(_Strict):
    shots: int | None = Field(None, ge=1, description="labelled examples per class")
    fraction: float | None = Field(None, gt=0, le=1, description="fraction of each class")
    examples: int | None = Field(None, ge=1, description="labelled examples in all, split across classes "
                                                         "in proportion (VTAB-1k style)")

    @model_validator(mode="after")
    def _one(self) -> "DataAmount":
        if sum(v is not None for v in (self.shots, self.fraction, self.examples)) > 1:
            raise ValueError("give one of shots, fraction or examples")
        return self

    @property
    def label(self) -> str:
        if self.shots is not None:
            return f"{self.shots}-shot"
        if self.examples is not None:
            return f"{self.examples}-examples"
        if self.fraction is not None and self.fraction < 1:
            return f"{self.fraction * 100:g}%"
        return "all"


class EvalConfig(_Strict):
    curve: bool = Field(True, description="evaluate on val during training (learning curve, time to target)")
    curve_points: int = Field(10, ge=1, description="at most this many val evaluations: at the first epoch end "
                                                    "past each 1/curve_points of the budget, and the last")
    target_drop: float = Field(1.0, ge=0, description="time-to-target: first epoch within this many points of the final val accuracy")
    target_acc: float | None = Field(None, description="time-to-target: a fixed val accuracy instead")
    source_max: int | None = Field(2000, ge=1, description="cap on source-task test images for forgetting")


class PretrainJob(_Strict):
    backbone: ComponentRef = Field(description="backbone to train from scratch (pretrained: none)")
    dataset: ComponentRef = Field(description="the source dataset")
    train: TrainConfig = Field(default_factory=TrainConfig)
    budget: BudgetConfig
    seed: Seed = 0


class MatrixRule(_Strict):
    backbone: str | None = None
    dataset: str | None = None
    strategy: str | None = None
    data: str | None = None
    seed: Seed | None = None


class Suite(_Strict):
    name: str = Field(description="names the results folder: results/<name>")
    description: str = ""
    pretrain: dict[str, PretrainJob] = Field(default_factory=dict)
    backbones: list[ComponentRef] = Field(min_length=1)
    datasets: list[DatasetEntry] = Field(min_length=1)
    strategies: list[StrategyEntry] = Field(min_length=1)
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    data: list[DataAmount] = Field(default_factory=lambda: [DataAmount()], min_length=1)
    budget: BudgetConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    exclude: list[MatrixRule] = Field(default_factory=list)
    include: list[MatrixRule] = Field(default_factory=list)
    executor: ComponentRef = Field(default_factory=lambda: ComponentRef(name="sequential"))
    device: str = Field("auto", description="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    deterministic: bool = Field(False, description="torch deterministic algorithms (slower on GPU)")
    loader_workers: int | None = Field(None, ge=0, description="DataLoader worker processes per run that decode "
                                                               "streamed datasets; default the run's CPU threads "
                                                               "but one (at most 8); 0 decodes in the run's process")

    @field_validator("name")
    @classmethod
    def _name_is_a_folder(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v):
            raise ValueError("use letters, digits, '.', '_' and '-' (it names a folder)")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v):
            raise ValueError("use auto, cpu, cuda, cuda:N or mps")
        return v


# ---------------------------------------------------------------- run specs


@dataclass(frozen=True)
class RunSpec:
    """One run: everything that decides its result, plus where it comes from."""

    suite: str
    backbone: ComponentRef
    dataset: DatasetEntry
    strategy: StrategyEntry
    train: TrainConfig
    budget: BudgetConfig
    eval: EvalConfig
    seed: int
    data: DataAmount
    device: str = "auto"
    deterministic: bool = False
    loader_workers: int | None = None  # how data is read, not what: not in the config or id
    labels: tuple[str, str, str] = ("", "", "")  # backbone, dataset, strategy labels

    def config(self) -> dict:
        """The resolved config the run id hashes (device excluded: where a run runs
        is not what it is; the record states the device)."""
        return {
            "backbone": {"name": self.backbone.name, "params": self.backbone.params},
            "dataset": {"name": self.dataset.name, "params": self.dataset.params,
                        "shifts": self.dataset.shifts.model_dump(mode="json"),
                        "val_fraction": self.dataset.val_fraction},
            "strategy": {"name": self.strategy.name, "params": self.strategy.params},
            "train": self.train.model_dump(mode="json"),
            "budget": self.budget.model_dump(mode="json"),
            "eval": self.eval.model_dump(mode="json"),
            "seed": self.seed,
            "data": self.data.model_dump(mode="json"),
            "deterministic": self.deterministic,
        }

    @property
    def id(self) -> str:
        return config_hash(self.config())

    @property
    def cell(self) -> dict:
        b, d, s = self.labels
        return {"backbone": b, "dataset": d, "strategy": s, "data": self.data.label}


def config_hash(config: dict) -> str:
    """16 hex digits of the SHA-256 of `config` as canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- loading


def _line_index(text: str) -> dict[tuple, int]:
    """Field path -> 1-based line of its node in the YAML text."""
    index: dict[tuple, int] = {}

    def walk(node: yaml.Node, path: tuple) -> None:
        index[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                index[path + (key.value,)] = key.start_mark.line + 1
                walk(value, path + (key.value,))
                index[path + (key.value,)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (i,))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return index
    if root is not None:
        walk(root, ())
    return index


_MAX_DEPTH = 64  # nesting levels; a suite needs about six
_MAX_NODES = 100_000  # values after aliases are expanded; a large suite has a few thousand


def _check_yaml_shape(text: str, source: str) -> None:
    """Refuse YAML that would blow up once built, from its parse events alone
    (nothing is expanded): nesting deeper than `_MAX_DEPTH` (Python recursion) or
    more than `_MAX_NODES` values with aliases expanded (a "billion laughs" bomb).
    Syntax errors are left to the loader, which names their line."""
    sizes: dict[str, int] = {}  # anchor -> values under it, aliases expanded
    stack: list[list] = []  # open collections: [anchor, values so far]
    total = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            line = event.start_mark.line + 1
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append([event.anchor, 1])
                if len(stack) > _MAX_DEPTH:
                    raise SuiteError(source, [f"line {line}: nested more than {_MAX_DEPTH} levels deep; "
                                              "a suite needs a handful (see docs/suite.md)"])
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, size = stack.pop()
            elif isinstance(event, yaml.AliasEvent):
                anchor, size = None, sizes.get(event.anchor, 1)
            elif isinstance(event, yaml.ScalarEvent):
                anchor, size = event.anchor, 1
            else:
                continue
            if anchor:
                sizes[anchor] = size
            if stack:
                stack[-1][1] += size
            total += 0 if stack else size
            if (stack[-1][1] if stack else total) > _MAX_NODES:
                raise SuiteError(source, [f"line {line}: more than {_MAX_NODES:,} values once its aliases (*name) "
                                          "are expanded; write the suite without nested aliases"])
    except yaml.YAMLError:
        return


def _duplicate_keys(text: str) -> list[str]:
    """A problem per mapping key given twice (YAML loaders keep the last silently)."""
    problems: list[str] = []
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node) -> None:
        if id(node) in seen_nodes:  # an alias: checked where it was defined
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in first:
                        problems.append(f"line {line}: key '{key.value}' is given twice (first at line "
                                        f"{first[key.value]}); keep one")
                    first.setdefault(key.value, line)
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return problems
    if root is not None:
        walk(root)
    return problems


def _where(path: tuple, lines: dict[tuple, int]) -> str:
    shown = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
    for cut in range(len(path), 0, -1):  # the root line says nothing: a missing top key has none
        if path[:cut] in lines:
            return f"{shown or '<top>'} (line {lines[path[:cut]]})"
    return shown or "<top>"


def _pydantic_problems(exc: ValidationError, lines: dict[tuple, int], prefix: tuple = (),
                       keys_hint: str = "see docs/suite.md for the keys") -> list[str]:
    problems = []
    for err in exc.errors():
        path = prefix + tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown key; check its spelling ({keys_hint})"
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(f"{_where(path, lines)}: {message}")
    return problems


def load_suite(path: str | Path, registry=None) -> Suite:
    """Read, validate and (given a registry) check the components of a suite file.
    Raises SuiteError listing every problem found."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"cannot read suite {path}: {exc.strerror}; pass the path of a suite YAML file "
                             "(the shipped ones are in suites/)") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SuiteError(str(path), [f"line {line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset "
                                     f"{exc.start}); save the suite as UTF-8"]) from None
    return parse_suite(text, str(path), registry)


def parse_suite(text: str, source: str = "<suite>", registry=None) -> Suite:
    _check_yaml_shape(text, source)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SuiteError(source, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from exc
    if not isinstance(raw, dict):
        raise SuiteError(source, ["the file must be a YAML mapping with keys name, backbones, datasets, strategies, budget"])
    duplicates = _duplicate_keys(text)
    if duplicates:
        raise SuiteError(source, duplicates)
    lines = _line_index(text)
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        raise SuiteError(source, _pydantic_problems(exc, lines)) from exc
    problems = _check_semantics(suite, lines, registry)
    if problems:
        raise SuiteError(source, problems)
    return suite


def _check_semantics(suite: Suite, lines: dict[tuple, int], registry) -> list[str]:
    problems: list[str] = []
    for i, entry in enumerate(suite.strategies):
        try:
            TrainConfig.model_validate({**suite.train.model_dump(), **entry.train})
        except ValidationError as exc:
            problems += _pydantic_problems(exc, lines, ("strategies", i, "train"))
    for i, entry in enumerate(suite.datasets):
        for j, name in enumerate(entry.shifts.corruptions):
            try:
                check_corruption(name, 1)
            except UserInputError as exc:
                problems.append(f"{_where(('datasets', i, 'shifts', 'corruptions', j), lines)}: {exc}")
    for i, entry in enumerate(suite.backbones):
        ref = str(entry.params.get("pretrained", ""))
        if ref.startswith(PRETRAIN_PREFIX) and ref[len(PRETRAIN_PREFIX):] not in suite.pretrain:
            problems.append(f"{_where(('backbones', i, 'params', 'pretrained'), lines)}: no pretrain job named "
                            f"'{ref[len(PRETRAIN_PREFIX):]}'; define it under `pretrain:` "
                            f"(jobs: {', '.join(suite.pretrain) or 'none'})")
    for kind, key in (("backbone", "backbones"), ("dataset", "datasets"), ("strategy", "strategies")):
        labels = [_label(e, getattr(suite, key)) for e in getattr(suite, key)]
        for dup in sorted({x for x in labels if labels.count(x) > 1}):
            problems.append(f"{key}: two entries share the label '{dup}'; give each a distinct `label:`")
    known = {"backbone": _labels(suite.backbones), "dataset": _labels(suite.datasets),
             "strategy": _labels(suite.strategies), "data": [d.label for d in suite.data]}
    for rules, key in ((suite.exclude, "exclude"), (suite.include, "include")):
        for i, rule in enumerate(rules):
            for field, values in known.items():
                value = getattr(rule, field)
                if value is not None and value not in values:
                    problems.append(f"{_where((key, i, field), lines)}: '{value}' matches no {field} "
                                    f"(labels: {', '.join(values)})")
    if registry is not None:
        problems += _check_components(suite, lines, registry)
    return problems


def _check_components(suite: Suite, lines: dict[tuple, int], registry) -> list[str]:
    problems = []
    refs: list[tuple[str, tuple, ComponentRef]] = []
    refs += [("backbone", ("backbones", i), e) for i, e in enumerate(suite.backbones)]
    refs += [("dataset", ("datasets", i), e) for i, e in enumerate(suite.datasets)]
    refs += [("dataset", ("datasets", i, "shifts", "datasets", j), o)
             for i, e in enumerate(suite.datasets) for j, o in enumerate(e.shifts.datasets)]
    refs += [("strategy", ("strategies", i), e) for i, e in enumerate(suite.strategies)]
    refs += [("executor", ("executor",), suite.executor)]
    for name, job in suite.pretrain.items():
        refs += [("backbone", ("pretrain", name, "backbone"), job.backbone),
                 ("dataset", ("pretrain", name, "dataset"), job.dataset)]
    for kind, path, ref in refs:
        try:
            comp = registry.get(kind, ref.name)
        except UnknownComponentError as exc:
            problems.append(f"{_where(path + ('name',), lines)}: {exc}")
            continue
        params = {k: v for k, v in ref.params.items()}
        if kind == "backbone" and str(params.get("pretrained", "")).startswith(PRETRAIN_PREFIX):
            params["pretrained"] = "none"  # resolved to a checkpoint at expansion
        try:
            comp.params.model_validate(params)
        except ValidationError as exc:
            problems += _pydantic_problems(exc, lines, path + ("params",),
                                           f"`ftbench list {PLURALS[kind]}` shows its parameters")
    return problems


def _label(entry: ComponentRef, siblings: list[ComponentRef]) -> str:
    if entry.label:
        return entry.label
    same = [e for e in siblings if e.name == entry.name and not e.label]
    if len(same) <= 1 or not entry.params:
        return entry.name
    return entry.name + "(" + ",".join(f"{k}={v}" for k, v in sorted(entry.params.items())) + ")"


def _labels(entries: list[ComponentRef]) -> list[str]:
    return [_label(e, entries) for e in entries]


# ---------------------------------------------------------------- expansion


def _matches(rule: MatrixRule, labels: dict) -> bool:
    return all(getattr(rule, k) is None or getattr(rule, k) == labels[k] for k in labels)


def expand(suite: Suite, registry=None) -> list[RunSpec]:
    """Every combination of the suite's matrix, less `exclude` matches, plus
    `include` combinations. Component params are resolved with their defaults when
    a registry is given; `pretrain:NAME` becomes `ftbench:<key>` of that job's
    checkpoint (a hash of its config, so known before it is trained)."""
    checkpoint_keys = {name: pretrain_key(job, registry) for name, job in suite.pretrain.items()}
    b_labels, d_labels, s_labels = _labels(suite.backbones), _labels(suite.datasets), _labels(suite.strategies)
    combos = []
    for (bi, b), (di, d), (si, s), seed, amount in itertools.product(
            enumerate(suite.backbones), enumerate(suite.datasets), enumerate(suite.strategies),
            suite.seeds, suite.data):
        labels = {"backbone": b_labels[bi], "dataset": d_labels[di], "strategy": s_labels[si],
                  "data": amount.label, "seed": seed}
        excluded = any(_matches(r, labels) for r in suite.exclude)
        included = any(_matches(r, labels) for r in suite.include)
        if not excluded or included:
            combos.append((b, d, s, seed, amount, (b_labels[bi], d_labels[di], s_labels[si])))
    specs = []
    for b, d, s, seed, amount, labels in combos:
        specs.append(RunSpec(
            suite=suite.name,
            backbone=_resolve(registry, "backbone", _with_checkpoint(b, checkpoint_keys)),
            dataset=_resolve(registry, "dataset", d),
            strategy=_resolve(registry, "strategy", s),
            train=TrainConfig.model_validate({**suite.train.model_dump(), **s.train}),
            budget=suite.budget, eval=suite.eval, seed=seed, data=amount,
            device=suite.device, deterministic=suite.deterministic, loader_workers=suite.loader_workers,
            labels=labels))
    return specs


def _with_checkpoint(ref: ComponentRef, keys: dict[str, str]) -> ComponentRef:
    pre = str(ref.params.get("pretrained", ""))
    if not pre.startswith(PRETRAIN_PREFIX):
        return ref
    job = pre[len(PRETRAIN_PREFIX):]
    return ref.model_copy(update={"params": {**ref.params, "pretrained": CHECKPOINT_PREFIX + keys[job]}})


def _resolve(registry, kind: str, ref: ComponentRef) -> ComponentRef:
    if registry is None:
        return ref
    comp = registry.get(kind, ref.name)
    params = comp.params.model_validate(ref.params).model_dump(mode="json")
    return ref.model_copy(update={"params": params})


def pretrain_config(job: PretrainJob, registry=None) -> dict:
    """The resolved config of a pretraining job; its hash addresses the checkpoint."""
    backbone = _resolve(registry, "backbone", job.backbone.model_copy(
        update={"params": {**job.backbone.params, "pretrained": "none"}}))
    dataset = _resolve(registry, "dataset", job.dataset)
    return {"backbone": {"name": backbone.name, "params": backbone.params},
            "dataset": {"name": dataset.name, "params": dataset.params},
            "train": job.train.model_dump(mode="json"), "budget": job.budget.model_dump(mode="json"),
            "seed": job.seed}


def pretrain_key(job: PretrainJob, registry=None) -> str:
    return config_hash(pretrain_config(job, registry))


def total_budget(specs: list[RunSpec]) -> dict[str, float]:
    """Sum of each limit over the runs that set it."""
    totals: dict[str, float] = {}
    for spec in specs:
        for k, v in spec.budget.limits().items():
            if v is not None:
                totals[k] = totals.get(k, 0) + v
    return totals
