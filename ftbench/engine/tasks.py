"""A run's data beyond its training split: the dataset's TaskData (loaded once per
process), the shifted test sets, the unlabelled images of `adapt:`, and the
source task's test images for forgetting."""

from __future__ import annotations

import functools
import json

import torch

from ftbench.components import ImageSet, TaskData, UnlabelledData
from ftbench.engine.data import Preprocess
from ftbench.errors import DataError, UserInputError
from ftbench.plugins import create, resolved_params
from ftbench.suite.runs import RunSpec


@functools.lru_cache(maxsize=16)
def _load_task(registry, name: str, params_json: str) -> TaskData:
    return create(registry, "dataset", name, json.loads(params_json), seed=0)


def load_task(registry, name: str, params: dict) -> TaskData:
    """A dataset's TaskData, loaded once per process for the same params."""
    return _load_task(registry, name, json.dumps(params, sort_keys=True))


@functools.lru_cache(maxsize=64)
def corrupted_test(registry, name: str, params_json: str, corruption: str, severity: int) -> ImageSet:
    from ftbench.engine.corruptions import corrupt_images

    test = _load_task(registry, name, params_json).test
    return ImageSet(corrupt_images(test.images, corruption, severity, seed=0), test.labels)


def align_classes(target: list[str], other: TaskData, split: ImageSet,
                  aliases: dict[str, str] | None = None) -> tuple[ImageSet, list[str]]:
    """`split` of another dataset relabelled onto `target`'s classes by name (after
    `aliases`: other's name -> target's); samples of classes the target lacks are
    dropped (and named in the return value)."""
    index = {c: i for i, c in enumerate(target)}
    aliases = aliases or {}
    mapping = torch.tensor([index.get(aliases.get(c, c), -1) for c in other.classes])
    labels = mapping[split.labels]
    keep = labels >= 0
    if not keep.any():
        raise DataError(f"no class names in common: target has {target[:5]}..., the shifted set has "
                        f"{other.classes[:5]}...; a shifted dataset must name the target's classes")
    dropped = sorted({other.classes[i] for i in split.labels[~keep].tolist()})
    return ImageSet(split.images[keep], labels[keep]), dropped


def domain_parts(n: int, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(unlabelled, evaluated) indices of a one-split domain: a fixed shuffle (not the
    run seed, so every run scores the same images), the first `fraction` unlabelled."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    cut = round(n * fraction)
    return order[:cut].sort().values, order[cut:].sort().values


def adapt_domain(spec: RunSpec) -> str | None:
    """The `adapt: {domain: ...}` name when it is one the dataset provides (not a
    `shifts.datasets` label)."""
    adapt, shifts = spec.dataset.adapt, spec.dataset.shifts
    if adapt is None or adapt.domain is None or adapt.domain in [r.label or r.name for r in shifts.datasets]:
        return None
    return adapt.domain


def shifted_sets(spec: RunSpec, registry, task: TaskData, prep: Preprocess) -> list[tuple]:
    """(name, fitted images, labels, dropped class names) of every shifted test set."""
    sets = []
    params_json = json.dumps(spec.dataset.params, sort_keys=True)
    for corruption in spec.dataset.shifts.corruptions:
        for severity in spec.dataset.shifts.severities:
            s = corrupted_test(registry, spec.dataset.name, params_json, corruption, severity)
            sets.append((f"{corruption}@{severity}", prep.fit_images(s.images), s.labels, []))
    for name, s in task.shifted.items():
        if adapt_domain(spec) == name:  # the images carved off as unlabelled data are not evaluated
            s = s.subset(domain_parts(len(s), spec.dataset.adapt.fraction)[1])
        sets.append((name, prep.fit_images(s.images), s.labels, []))
    for ref in spec.dataset.shifts.datasets:
        other = load_task(registry, ref.name, resolved_params(registry, "dataset", ref.name, ref.params))
        aligned, dropped = align_classes(task.classes, other, other.test, spec.dataset.shifts.aliases)
        label = ref.label or ref.name
        sets.append((label, prep.fit_images(aligned.images), aligned.labels, dropped))
    return sets


def unlabelled_data(spec: RunSpec, registry, task: TaskData, train: ImageSet, prep: Preprocess) -> UnlabelledData:
    """The suite's `adapt:` set as images only: a shifted set's training images,
    never its test images and never labels."""
    adapt = spec.dataset.adapt
    if adapt is None:
        raise UserInputError(
            f"strategy '{spec.strategy.name}' adapts to unlabelled target data, and dataset "
            f"'{spec.labels[1] or spec.dataset.name}' names none; add `adapt: {{domain: NAME}}` or "
            "`adapt: {corruption: NAME, severity: S}` to its entry in the suite")
    refs = {r.label or r.name: r for r in spec.dataset.shifts.datasets}
    if adapt.corruption is not None:
        from ftbench.engine.corruptions import corrupt_images

        images = corrupt_images(train.images, adapt.corruption, adapt.severity, seed=1)
    elif adapt.domain in refs:
        ref = refs[adapt.domain]
        other = load_task(registry, ref.name, resolved_params(registry, "dataset", ref.name, ref.params))
        images = other.train.images  # its test split is what the shifted evaluation scores
    elif adapt.domain in task.shifted:
        domain = task.shifted[adapt.domain]
        images = domain.images[domain_parts(len(domain), adapt.fraction)[0]]
    else:
        known = sorted(refs) + sorted(task.shifted)
        raise UserInputError(f"adapt: domain '{adapt.domain}' is neither a `shifts.datasets` label nor a "
                             f"domain of dataset '{spec.dataset.name}' (known: {', '.join(known) or 'none'}); "
                             "name one of those, or adapt to a corruption")
    return UnlabelledData(adapt.source, prep.fit_images(images), prep, spec.train.batch_size, spec.seed)


def source_test(spec: RunSpec, registry, backbone, prep: Preprocess) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The source task's test images (fitted, at most `eval.source_max`) and labels,
    for forgetting; None when the backbone keeps no source head."""
    if backbone.source_head is None or backbone.source_dataset is None:
        return None
    name, params = backbone.source_dataset
    source = load_task(registry, name, params).test
    cap = spec.eval.source_max
    if cap is not None and len(source) > cap:
        source = source.subset(torch.arange(cap))
    return prep.fit_images(source.images), source.labels.to(prep.device)
