"""Suites: YAML in, validated by pydantic, expanded into one RunSpec per combination.

Validation runs in two passes and reports every problem of both at once: the
schema (types, unknown keys, ranges), then the names and parameters of the
components against the plugin registry. Each problem names its field path and,
where the YAML has it, its line.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ftbench.config import BudgetConfig, TrainConfig
from ftbench.corruption_names import check_corruption
from ftbench.errors import SuiteError, UnknownComponentError, UserInputError
from ftbench.plugins import PLURALS
from ftbench.schema_help import did_you_mean, keys_at, load_yaml, unknown_key_message, validate_strictly

PRETRAIN_PREFIX = "pretrain:"
CHECKPOINT_PREFIX = "ftbench:"
# A fixed default, not the machine's core count or -j: CPU float sums depend on how
# work is split over threads, so a run's numbers depend on its thread count. One, as
# a thread that waits at a barrier for another thread whose core a second process
# holds makes a run several times slower (benchmarks/contention.py: 2 threads 3.4x
# slower with one of two cores busy, 1 thread 1.1x); `-j N` fills N cores.
DEFAULT_THREADS = 1


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


class AdaptConfig(_Strict):
    """The unlabelled target domain handed to strategies that adapt (adabn, dann, ...)."""

    domain: str | None = Field(None, description="a shifted domain: the label of a `shifts.datasets` entry (its "
                                                 "train split) or a domain the dataset provides (a disjoint part "
                                                 "of it, left out of that domain's evaluation)")
    corruption: str | None = Field(None, description="a corruption of this dataset's training split instead")
    severity: int = Field(3, ge=1, le=5, description="the corruption's severity, 1-5")
    fraction: float = Field(0.5, gt=0, lt=1, description="for a domain the dataset provides in one split: the "
                                                         "part carved off as unlabelled training images")

    @model_validator(mode="after")
    def _one(self) -> "AdaptConfig":
        if (self.domain is None) == (self.corruption is None):
            raise ValueError("give one of domain or corruption")
        return self

    @property
    def source(self) -> str:
        """A short name of the unlabelled set: domain:<name> or corruption:<name>@<severity>."""
        return f"domain:{self.domain}" if self.domain else f"corruption:{self.corruption}@{self.severity}"


class DatasetEntry(ComponentRef):
    shifts: ShiftConfig = Field(default_factory=ShiftConfig)
    adapt: AdaptConfig | None = Field(None, description="unlabelled target-domain images for strategies that adapt")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="val split carved from train when the dataset has none")


class Dimension(_Strict):
    """One searched key: exactly one of the forms below."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    loguniform: tuple[float, float] | None = Field(None, description="[low, high], sampled on a log scale")
    uniform: tuple[float, float] | None = Field(None, description="[low, high]")
    int_: tuple[int, int] | None = Field(None, alias="int", description="[low, high], integers, both included")
    choice: list[Any] | None = Field(None, min_length=1, description="one of these values")
    grid: list[Any] | None = Field(None, min_length=1, description="these values; the grid sampler tries each")

    @model_validator(mode="after")
    def _one_form(self) -> "Dimension":
        given = [k for k in ("loguniform", "uniform", "int_", "choice", "grid") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of loguniform, uniform, int, choice, grid "
                             "(e.g. {loguniform: [0.0001, 0.1]})")
        for kind in ("loguniform", "uniform", "int_"):
            low_high = getattr(self, kind)
            if low_high is not None and not low_high[0] < low_high[1]:
                raise ValueError(f"{kind.rstrip('_')}: [low, high] needs low < high")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError("loguniform: low must be > 0")
        return self

    @property
    def kind(self) -> str:
        return next(k.rstrip("_") for k in ("loguniform", "uniform", "int_", "choice", "grid")
                    if getattr(self, k) is not None)

    def values(self) -> list[Any]:
        """The listed values of a choice or grid dimension."""
        return list(self.choice if self.choice is not None else self.grid or [])


def _search_key(key: str) -> str:
    section, _, name = key.partition(".")
    if section not in ("train", "params") or not name:
        raise ValueError("search keys are `train.KEY` (a `train:` setting) or `params.KEY` (a strategy parameter)")
    if section == "train" and name not in TrainConfig.model_fields:
        raise ValueError(f"`train:` has no key '{name}'{did_you_mean(name, TrainConfig.model_fields)} "
                         f"(keys: {', '.join(TrainConfig.model_fields)})")
    return key


# Checked key by key, so that every bad key of a space is reported at once.
SearchKey = Annotated[str, AfterValidator(_search_key)]


class SearchConfig(_Strict):
    """A hyperparameter search: resolved for a strategy entry from the suite-wide
    `search:` and the entry's own (entry keys win; spaces merge key by key)."""

    space: dict[SearchKey, Dimension] = Field(default_factory=dict,
                                              description="`train.KEY` or `params.KEY` -> the values to search")
    trials: int | None = Field(None, ge=1, description="trials per strategy and cell (the same for every "
                                                       "strategy unless an entry sets its own); default: "
                                                       "the grid's size for the grid sampler")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1,
                             description="tuning seeds; a trial's score is its mean val accuracy over them")
    sampler: Literal["tpe", "random", "grid"] | None = Field(
        None, description="Optuna sampler; default: grid when every dimension is `grid`, else tpe")
    seed: int = Field(0, description="the sampler's seed")
    pruner: Literal["none", "median", "successive-halving"] = Field(
        "none", description="stop unpromising trials early from their learning curve")
    prune_points: int | None = Field(None, ge=1, le=100,
                                     description="a trial measures val accuracy at this many points of its budget "
                                                 "(1/N, 2/N, ...), where the pruner may stop it; default: "
                                                 "eval.curve_points")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="part of each class's labelled budget held out "
                                                             "as the trials' validation set")
    enabled: bool = Field(True, description="false: this strategy entry is not searched")
    select: Literal["validation", "oracle"] = Field(
        "validation", description="validation: the best mean validation accuracy (a fair comparison); "
                                  "oracle: the best mean TEST accuracy, optimistic and labelled so (DomainBed's "
                                  "oracle), never the default")
    allow_unequal_budget: bool = Field(False, description="suite-wide only: let searched strategies have different "
                                                          "numbers of trial runs (trials x tuning seeds); refused "
                                                          "otherwise, as an unfair comparison")

    def resolved_sampler(self) -> str:
        if self.sampler:
            return self.sampler
        return "grid" if self.space and all(d.grid is not None for d in self.space.values()) else "tpe"

    def n_trials(self) -> int | None:
        if self.trials is not None:
            return self.trials
        if self.resolved_sampler() == "grid":
            return math.prod(len(d.values()) for d in self.space.values())
        return None


class SearchOverride(_Strict):
    """A strategy entry's `search:`: any SearchConfig key; the rest come from the suite's."""

    space: dict[SearchKey, Dimension] | None = None
    trials: int | None = Field(None, ge=1)
    seeds: list[int] | None = Field(None, min_length=1)
    sampler: Literal["tpe", "random", "grid"] | None = None
    seed: int | None = None
    pruner: Literal["none", "median", "successive-halving"] | None = None
    prune_points: int | None = Field(None, ge=1, le=100)
    val_fraction: float | None = Field(None, gt=0, lt=1)
    enabled: bool | None = None
    select: Literal["validation", "oracle"] | None = None


class StrategyEntry(ComponentRef):
    train: dict[str, Any] = Field(default_factory=dict, description="overrides of the suite's `train:` for this strategy")
    search: SearchOverride | None = Field(None, description="this strategy's search, over the suite's `search:`")


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
    threads: int | None = Field(None, ge=1, description="torch CPU threads of this pretraining; default the "
                                                        "suite's `threads:`")
    min_source_acc: float | None = Field(None, ge=0, le=100, description="source test accuracy (%) below which "
                                                                         "the pretraining fails and is not cached; "
                                                                         "default twice chance, at most halfway from "
                                                                         "chance to 100%")


class MatrixRule(_Strict):
    backbone: str | None = None
    dataset: str | None = None
    strategy: str | None = None
    data: str | None = None
    seed: Seed | None = None


class PrimaryComparison(_Strict):
    """One question the study declares before its runs: is `strategy` better than,
    worse than or equivalent to `vs`? Optionally at one backbone, dataset or data
    amount only (labels); otherwise at every task where both ran."""

    strategy: str = Field(description="the strategy label under test")
    vs: str = Field(description="the strategy label it is compared with")
    backbone: str | None = None
    dataset: str | None = None
    data: str | None = None


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
    search: SearchConfig | None = Field(None, description="hyperparameter search for every strategy (docs/suite.md)")
    primary: list[PrimaryComparison] = Field(
        default_factory=list, description="the study's primary comparisons, declared before the runs: the report's "
                                          "one confirmatory family (not part of any run's config or id)")
    exclude: list[MatrixRule] = Field(default_factory=list)
    include: list[MatrixRule] = Field(default_factory=list)
    executor: ComponentRef = Field(default_factory=lambda: ComponentRef(name="sequential"))
    loggers: list[ComponentRef] = Field(default_factory=list, description="experiment trackers that see every "
                                                                          "run (`ftbench list loggers`)")
    device: str = Field("auto", description="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    deterministic: bool = Field(False, description="torch deterministic algorithms (slower on GPU)")
    threads: int = Field(DEFAULT_THREADS, ge=1, description="torch intra-op CPU threads of every run and "
                                                            "pretraining, whatever the executor or -j: the "
                                                            "thread count changes CPU results in the last bits; "
                                                            "more than 1 is fast only on idle cores")
    numerics: Literal["default", "portable"] = Field(
        "default", description="default: the fastest code paths this CPU offers; portable: CPU arithmetic pinned "
                               "to paths every AVX2 CPU takes alike, so another CPU gives equal numbers "
                               "(ftbench.numerics)")
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
    threads: int = DEFAULT_THREADS  # torch CPU threads; recorded in the record's env (like the device)
    numerics: str = "default"  # ftbench.numerics mode; in the config (and id) when not the default
    labels: tuple[str, str, str] = ("", "", "")  # backbone, dataset, strategy labels

    def config(self) -> dict:
        """The resolved config the run id hashes (device excluded: where a run runs
        is not what it is; the record states the device)."""
        return {
            "backbone": {"name": self.backbone.name, "params": self.backbone.params},
            "dataset": {"name": self.dataset.name, "params": self.dataset.params,
                        "shifts": self.dataset.shifts.model_dump(mode="json"),
                        "val_fraction": self.dataset.val_fraction,
                        **({"adapt": self.dataset.adapt.model_dump(mode="json")} if self.dataset.adapt else {})},
            "strategy": {"name": self.strategy.name, "params": self.strategy.params},
            "train": self.train.model_dump(mode="json"),
            "budget": self.budget.model_dump(mode="json"),
            "eval": self.eval.model_dump(mode="json"),
            "seed": self.seed,
            "data": self.data.model_dump(mode="json"),
            "deterministic": self.deterministic,
            **({"numerics": self.numerics} if self.numerics != "default" else {}),
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
                       keys_hint: str = "docs/suite.md describes them",
                       model: type[BaseModel] | None = None) -> list[str]:
    """A problem line per error of `exc` (`model`'s validation at `prefix`): its
    path and line, and for an unknown key the valid ones and the closest."""
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]")))
        path = prefix + loc
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = unknown_key_message(loc[-1], keys_at(model, loc[:-1]) if model else None, keys_hint)
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(f"{_where(path, lines)}: {message}")
    return problems


def load_suite(path: str | Path, registry=None, overrides: tuple[str, ...] = (), environment: bool = False,
               device: str | None = None) -> Suite:
    """Read, validate and (given a registry) check the components of a suite file,
    after applying `overrides` (`apply_overrides`); with `environment`, also check
    that its data, weights and device are there (`ftbench.preflight`; `device`
    overrides the suite's). Raises SuiteError listing every problem found."""
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
    return parse_suite(text, str(path), registry, overrides, environment=environment, device=device)


def apply_overrides(raw: dict, overrides: tuple[str, ...] | list[str]) -> dict:
    """`raw` with each `dotted.path=VALUE` set (VALUE parsed as YAML; a number in
    the path indexes a list): `train.lr=0.01`, `seeds=[0,1]`, `strategies.1.train.lr=0.1`.
    Raises UserInputError for a malformed override or a path through a non-mapping."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise UserInputError(f"-o {item!r}: write KEY=VALUE with a dotted KEY, e.g. -o train.lr=0.01 "
                                 "or -o seeds=[0,1]")
        try:
            value = load_yaml(text)
        except yaml.YAMLError as exc:
            raise UserInputError(f"-o {item!r}: the value is not valid YAML ({getattr(exc, 'problem', exc)})") from exc
        if "space" in parts[:-2]:  # a search space's keys hold a dot: `space.train.lr` is one key
            at = parts.index("space") + 1
            parts[at:at + 2] = [".".join(parts[at:at + 2])]
        node: Any = raw
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise UserInputError(f"-o {item!r}: '{'.'.join(parts[:depth])}' is a list of {len(node)}; "
                                         f"index it with 0-{len(node) - 1}")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise UserInputError(f"-o {item!r}: '{'.'.join(parts[:depth])}' is a single value, not a section")
    return raw


def parse_suite(text: str, source: str = "<suite>", registry=None, overrides: tuple[str, ...] = (),
                environment: bool = False, device: str | None = None) -> Suite:
    _check_yaml_shape(text, source)
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SuiteError(source, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from exc
    if not isinstance(raw, dict):
        raise SuiteError(source, ["the file must be a YAML mapping with keys name, backbones, datasets, strategies, budget"])
    duplicates = _duplicate_keys(text)
    if duplicates:
        raise SuiteError(source, duplicates)
    if overrides:  # validated below like the file itself
        raw = apply_overrides(raw, overrides)
    lines = _line_index(text)
    try:
        suite = validate_strictly(Suite, raw)
    except ValidationError as exc:
        raise SuiteError(source, _pydantic_problems(exc, lines, model=Suite) + _raw_name_problems(raw, lines, registry)
                         + _raw_search_problems(raw, lines, registry)) from exc
    problems = _check_semantics(suite, lines, registry)
    if environment and registry is not None:
        from ftbench.preflight import environment_problems

        problems += environment_problems(suite, lines, registry, device)
    if problems:
        raise SuiteError(source, problems)
    return suite


def _check_semantics(suite: Suite, lines: dict[tuple, int], registry) -> list[str]:
    problems: list[str] = []
    for i, entry in enumerate(suite.strategies):
        try:
            validate_strictly(TrainConfig, {**suite.train.model_dump(), **entry.train})
        except ValidationError as exc:
            problems += _pydantic_problems(exc, lines, ("strategies", i, "train"), model=TrainConfig)
    for i, entry in enumerate(suite.datasets):
        for j, name in enumerate(entry.shifts.corruptions):
            try:
                check_corruption(name, 1)
            except UserInputError as exc:
                problems.append(f"{_where(('datasets', i, 'shifts', 'corruptions', j), lines)}: {exc}")
        problems += _check_adapt(entry, ("datasets", i, "adapt"), lines)
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
    problems += _check_primary(suite, lines, known)
    problems += _check_search(suite, lines, registry)
    problems += _check_duplicate_runs(suite, lines, registry)
    if registry is not None:
        problems += _check_components(suite, lines, registry)
    return problems


def _check_primary(suite: Suite, lines: dict[tuple, int], known: dict[str, list[str]]) -> list[str]:
    """Every label a primary comparison names is one of the suite's."""
    problems = []
    for i, entry in enumerate(suite.primary):
        for key, kind in (("strategy", "strategy"), ("vs", "strategy"), ("backbone", "backbone"),
                          ("dataset", "dataset"), ("data", "data")):
            value = getattr(entry, key)
            if value is not None and value not in known[kind]:
                close = difflib.get_close_matches(value, known[kind], n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                problems.append(f"{_where(('primary', i, key), lines)}: '{value}' is no {kind} of this suite{hint} "
                                f"({kind} labels: {', '.join(known[kind])})")
        if entry.strategy == entry.vs:
            problems.append(f"{_where(('primary', i), lines)}: compares '{entry.strategy}' with itself; name two "
                            "different strategies")
    return problems


def resolve_search(suite: Suite, entry: StrategyEntry) -> SearchConfig | None:
    """The search of one strategy entry: the suite's `search:` under the entry's own
    (entry keys win, spaces merge key by key); None when it searches nothing."""
    base = suite.search.model_dump(by_alias=True, exclude_none=True) if suite.search else {}
    own = entry.search.model_dump(by_alias=True, exclude_none=True) if entry.search else {}
    if not base and not own:
        return None
    merged = {**base, **own, "space": {**base.get("space", {}), **own.get("space", {})}}
    config = SearchConfig.model_validate(merged)
    return config if config.enabled and config.space else None


def _check_search(suite: Suite, lines: dict[tuple, int], registry) -> list[str]:
    """Every searched value must be one the run would accept, and every searched
    strategy gets the same number of trial runs (unless `allow_unequal_budget`)."""
    problems: list[str] = []
    budgets: dict[str, tuple[int, int]] = {}  # strategy label -> (trials, tuning seeds)
    for i, (label, entry) in enumerate(zip(_labels(suite.strategies), suite.strategies)):
        try:
            config = resolve_search(suite, entry)
        except ValidationError as exc:
            problems += _pydantic_problems(exc, lines, ("strategies", i, "search"), model=SearchConfig)
            continue
        if config is None:
            continue
        where = ("search",) if entry.search is None or entry.search.space is None else ("strategies", i, "search")
        if config.n_trials() is None:
            problems.append(f"{_where(where, lines)}: set `trials:` (how many configurations each strategy "
                            f"tries; the same for every strategy keeps the comparison fair)")
        else:
            budgets[label] = (config.n_trials(), len(config.seeds))
        params_model = _strategy_params(registry, entry.name)
        train = {**suite.train.model_dump(mode="json"), **entry.train}
        for key, dim in config.space.items():
            problems += _dimension_problems(where + ("space", key), key, dim, config.resolved_sampler(), entry.name,
                                            entry.params, train, params_model, lines)
    if len({t * n for t, n in budgets.values()}) > 1 and not (suite.search and suite.search.allow_unequal_budget):
        problems.append(f"{_where(('strategies',), lines)}: the searched strategies get different tuning budgets "
                        f"({unequal_budgets(budgets)}), so the comparison favours the better-tuned ones: give "
                        "every entry the same `trials:` and tuning `seeds:` (a grid's size is its trials), or set "
                        "`allow_unequal_budget: true` under the suite's `search:` to compare them anyway")
    return list(dict.fromkeys(problems))  # a suite-wide problem is found once per entry


def unequal_budgets(budgets: dict[str, tuple[int, int]]) -> str:
    """"full 9 trials x 1 seed, lp-ft 3 trials x 1 seed" for label -> (trials, seeds)."""
    return ", ".join(f"{label} {t} trials x {n} seed{'s' if n != 1 else ''}" for label, (t, n) in budgets.items())


def search_budgets(suite: Suite) -> dict[str, tuple[int, int]]:
    """Strategy label -> (trials, tuning seeds) of each searched strategy entry."""
    out = {}
    for label, entry in zip(_labels(suite.strategies), suite.strategies):
        config = resolve_search(suite, entry)
        if config is not None and config.n_trials() is not None:
            out[label] = (config.n_trials(), len(config.seeds))
    return out


def _strategy_params(registry, name: Any) -> type[BaseModel] | None:
    if registry is None or not isinstance(name, str):
        return None
    try:
        return registry.get("strategy", name).params
    except UnknownComponentError:
        return None  # reported with the components


def _dimension_problems(path: tuple, key: str, dim: Dimension, sampler: str, strategy: str, params: dict,
                        train: dict, params_model: type[BaseModel] | None, lines: dict[tuple, int]) -> list[str]:
    """What is wrong with one searched dimension of a strategy entry: a range under
    the grid sampler, a parameter the strategy does not have, values it refuses."""
    problems = []
    section, _, name = key.partition(".")
    if sampler == "grid" and dim.kind not in ("grid", "choice"):
        problems.append(f"{_where(path, lines)}: the grid sampler needs `grid:` or `choice:` values, "
                        f"not {dim.kind}; use sampler: tpe or random for ranges")
    if section == "params" and params_model is not None and name not in params_model.model_fields:
        known = [f.alias or n for n, f in params_model.model_fields.items()]
        return problems + [f"{_where(path, lines)}: strategy '{strategy}' has no parameter '{name}'"
                           f"{did_you_mean(name, known)} (its parameters: {', '.join(known) or 'none'})"]
    samples = dim.values() or list(getattr(dim, dim.kind if dim.kind != "int" else "int_"))
    model, base = (TrainConfig, train) if section == "train" else (params_model, params)
    if model is None:
        return problems
    for value in samples:
        try:
            validate_strictly(model, {**base, name: value})
        except ValidationError as exc:
            own = [e for e in exc.errors() if tuple(e["loc"][:1]) in ((name,), ())]
            if not own:
                continue  # another key's problem, reported where that key is
            what = f"`train.{name}`" if section == "train" else f"`params.{name}` of '{strategy}'"
            problems.append(f"{_where(path, lines)}: {value!r} is not a valid {what}: {own[0]['msg']}")
    return problems


def _raw_search_problems(raw: dict, lines: dict[tuple, int], registry) -> list[str]:
    """The search-space problems of a suite that failed the schema, found from its
    raw YAML wherever a dimension is well-formed, so that one pass reports them
    with the schema's problems."""
    def space_of(node: Any) -> dict:
        search = node.get("search") if isinstance(node, dict) else None
        space = search.get("space") if isinstance(search, dict) else None
        return space if isinstance(space, dict) else {}

    def sampler_of(*nodes: Any) -> str:
        for node in nodes:
            search = node.get("search") if isinstance(node, dict) else None
            if isinstance(search, dict) and isinstance(search.get("sampler"), str):
                return search["sampler"]
        return "tpe"  # grid only when asked for (or all-grid): a range's problem shows in the next pass

    problems: list[str] = []
    strategies = raw.get("strategies") if isinstance(raw.get("strategies"), list) else []
    base_train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    for i, entry in enumerate(strategies):
        if not isinstance(entry, dict) or (isinstance(entry.get("search"), dict)
                                           and entry["search"].get("enabled") is False):
            continue
        own = space_of(entry)
        spaces = [(("search", "space"), space_of(raw)), (("strategies", i, "search", "space"), own)]
        params = entry.get("params") if isinstance(entry.get("params"), dict) else {}
        train = {**base_train, **(entry.get("train") if isinstance(entry.get("train"), dict) else {})}
        for prefix, space in spaces:
            for key, value in space.items():
                try:
                    _search_key(str(key))
                    dim = Dimension.model_validate(value)
                except (ValueError, ValidationError):
                    continue  # the schema's problem
                if prefix[0] == "search" and key in own:
                    continue  # the entry's own dimension replaces the suite's
                problems += _dimension_problems(prefix + (key,), key, dim, sampler_of(entry, raw), entry.get("name"),
                                                params, train, _strategy_params(registry, entry.get("name")), lines)
    return list(dict.fromkeys(problems))


def _check_adapt(entry: DatasetEntry, path: tuple, lines: dict[tuple, int]) -> list[str]:
    adapt = entry.adapt
    if adapt is None:
        return []
    if adapt.corruption is not None:
        try:
            check_corruption(adapt.corruption, adapt.severity)
        except UserInputError as exc:
            return [f"{_where(path + ('corruption',), lines)}: {exc}"]
    return []


def _entry_identity(kind: str, entry, suite: Suite, registry) -> str:
    """What an entry contributes to its runs' configs (and so their ids); labels are
    not part of it: a label names a run, it does not make a different one."""
    ref = entry
    if registry is not None:
        try:
            ref = _resolve(registry, kind, entry)
        except Exception:  # noqa: BLE001 - an unknown name or bad params is reported by _check_components
            ref = entry
    identity: dict[str, Any] = {"name": ref.name, "params": ref.params}
    if kind == "dataset":
        identity.update(shifts=entry.shifts.model_dump(mode="json"), val_fraction=entry.val_fraction,
                        adapt=entry.adapt.model_dump(mode="json") if entry.adapt else None)
    if kind == "strategy":
        identity["train"] = {**suite.train.model_dump(mode="json"), **entry.train}
    return json.dumps(identity, sort_keys=True, default=str)


def _check_duplicate_runs(suite: Suite, lines: dict[tuple, int], registry) -> list[str]:
    """Entries that would expand to runs with one config (one id): their records
    would overwrite each other, so they are refused here, naming both."""
    problems = []
    for kind, key in (("backbone", "backbones"), ("dataset", "datasets"), ("strategy", "strategies")):
        seen: dict[str, int] = {}
        for i, entry in enumerate(getattr(suite, key)):
            identity = _entry_identity(kind, entry, suite, registry)
            if identity in seen:
                j = seen[identity]
                problems.append(
                    f"{_where((key, i), lines)}: expands to the same runs as {_where((key, j), lines)} "
                    f"('{entry.label or entry.name}' and '{getattr(suite, key)[j].label or entry.name}': one name, "
                    "params and settings once defaults are filled in), so one's records would replace the "
                    "other's; a label alone does not make a different run: remove one, or change its params")
            else:
                seen[identity] = i
    for key, values, show in (("seeds", suite.seeds, lambda v: f"seed {v}"),
                              ("data", suite.data, lambda d: f"data '{d.label}'")):
        seen_value: dict[Any, int] = {}
        for i, value in enumerate(values):
            ident = value.label if key == "data" else value  # {} and {fraction: 1} are both 'all'
            if ident in seen_value:
                problems.append(f"{_where((key, i), lines)}: repeats {_where((key, seen_value[ident]), lines)} "
                                f"({show(value)}); each run would be planned twice, or two would share a report "
                                "cell: remove the repeat")
            else:
                seen_value[ident] = i
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
    refs += [("logger", ("loggers", i), e) for i, e in enumerate(suite.loggers)]
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
            validate_strictly(comp.params, params)
        except ValidationError as exc:
            problems += _pydantic_problems(exc, lines, path + ("params",),
                                           f"`ftbench list {PLURALS[kind]} {ref.name}` describes them", comp.params)
    return problems


def _raw_name_problems(raw: dict, lines: dict[tuple, int], registry) -> list[str]:
    """Unknown component names in a suite that failed the schema, so that one pass
    reports them with the schema's problems."""
    if registry is None:
        return []
    entries = [(kind, (key, i), e) for kind, key in (("backbone", "backbones"), ("dataset", "datasets"),
                                                     ("strategy", "strategies"))
               for i, e in enumerate(raw.get(key) if isinstance(raw.get(key), list) else [])]
    entries.append(("executor", ("executor",), raw.get("executor")))
    problems = []
    for kind, path, entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            try:
                registry.get(kind, entry["name"])
            except UnknownComponentError as exc:
                problems.append(f"{_where(path + ('name',), lines)}: {exc}")
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
    checkpoint_keys = {name: pretrain_key(job, registry, suite.numerics) for name, job in suite.pretrain.items()}
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
    specs: list[RunSpec] = []
    for b, d, s, seed, amount, labels in combos:
        specs.append(RunSpec(
            suite=suite.name,
            backbone=_resolve(registry, "backbone", _with_checkpoint(b, checkpoint_keys)),
            dataset=_resolve(registry, "dataset", d),
            strategy=_resolve(registry, "strategy", s),
            train=TrainConfig.model_validate({**suite.train.model_dump(), **s.train}),
            budget=suite.budget, eval=suite.eval, seed=seed, data=amount,
            device=suite.device, deterministic=suite.deterministic, loader_workers=suite.loader_workers,
            threads=suite.threads, numerics=suite.numerics, labels=labels))
    _refuse_shared_ids(suite.name, specs)
    return specs


def _refuse_shared_ids(source: str, specs: list[RunSpec]) -> None:
    """Validation refuses entries that repeat a run; this catches any other way two
    runs could get one id (their records would silently replace each other)."""
    first: dict[str, RunSpec] = {}
    problems = []
    for spec in specs:
        other = first.setdefault(spec.id, spec)
        if other is not spec:
            problems.append(f"runs {'/'.join(other.labels)} {other.data.label} seed {other.seed} and "
                            f"{'/'.join(spec.labels)} {spec.data.label} seed {spec.seed} have one config "
                            f"(id {spec.id}); make them differ or remove one")
    if problems:
        raise SuiteError(source, problems)


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


def pretrain_config(job: PretrainJob, registry=None, numerics: str = "default") -> dict:
    """The resolved config of a pretraining job; its hash addresses the checkpoint.
    A numerics mode other than the default is part of it: its weights differ."""
    backbone = _resolve(registry, "backbone", job.backbone.model_copy(
        update={"params": {**job.backbone.params, "pretrained": "none"}}))
    dataset = _resolve(registry, "dataset", job.dataset)
    return {"backbone": {"name": backbone.name, "params": backbone.params},
            "dataset": {"name": dataset.name, "params": dataset.params},
            "train": job.train.model_dump(mode="json"), "budget": job.budget.model_dump(mode="json"),
            "seed": job.seed, **({"numerics": numerics} if numerics != "default" else {})}


def pretrain_key(job: PretrainJob, registry=None, numerics: str = "default") -> str:
    return config_hash(pretrain_config(job, registry, numerics))


def total_budget(specs: list[RunSpec]) -> dict[str, float]:
    """Sum of each limit over the runs that set it."""
    totals: dict[str, float] = {}
    for spec in specs:
        for k, v in spec.budget.limits().items():
            if v is not None:
                totals[k] = totals.get(k, 0) + v
    return totals
