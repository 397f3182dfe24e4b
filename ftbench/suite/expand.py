"""Expansion: a suite's matrix into one `RunSpec` per combination, component params
resolved with their defaults, `pretrain:NAME` into the key of that job's checkpoint."""

from __future__ import annotations

import itertools

from ftbench.config import TrainConfig
from ftbench.errors import SuiteError
from ftbench.plugins import resolved_params
from ftbench.suite.runs import RunSpec, config_hash
from ftbench.suite.schema import (CHECKPOINT_PREFIX, PRETRAIN_PREFIX, ComponentRef, MatrixRule, PretrainJob, Suite,
                                  entry_labels)


def _matches(rule: MatrixRule, labels: dict) -> bool:
    return all(getattr(rule, k) is None or getattr(rule, k) == labels[k] for k in labels)


def expand(suite: Suite, registry=None) -> list[RunSpec]:
    """Every combination of the suite's matrix, less `exclude` matches, plus
    `include` combinations. Component params are resolved with their defaults when
    a registry is given; `pretrain:NAME` becomes `ftbench:<key>` of that job's
    checkpoint (a hash of its config, so known before it is trained)."""
    checkpoint_keys = {name: pretrain_key(job, registry, suite.numerics) for name, job in suite.pretrain.items()}
    b_labels, d_labels = entry_labels(suite.backbones), entry_labels(suite.datasets)
    s_labels = entry_labels(suite.strategies)
    combos = []
    for (bi, b), (di, d), (si, s), seed, amount in itertools.product(
            enumerate(suite.backbones), enumerate(suite.datasets), enumerate(suite.strategies),
            suite.seed_list, suite.data):
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
            backbone=resolve_ref(registry, "backbone", _with_checkpoint(b, checkpoint_keys)),
            dataset=resolve_ref(registry, "dataset", d),
            strategy=resolve_ref(registry, "strategy", s),
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


def resolve_ref(registry, kind: str, ref: ComponentRef) -> ComponentRef:
    """`ref` with its params validated and every default filled in (unchanged without a registry)."""
    if registry is None:
        return ref
    return ref.model_copy(update={"params": resolved_params(registry, kind, ref.name, ref.params)})


def pretrain_config(job: PretrainJob, registry=None, numerics: str = "default") -> dict:
    """The resolved config of a pretraining job; its hash addresses the checkpoint.
    A numerics mode other than the default is part of it: its weights differ."""
    backbone = resolve_ref(registry, "backbone", job.backbone.model_copy(
        update={"params": {**job.backbone.params, "pretrained": "none"}}))
    dataset = resolve_ref(registry, "dataset", job.dataset)
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
