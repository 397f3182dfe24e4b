"""Layer groups of a timm model, in depth order, for freezing and per-depth rates.

Where the model defines `group_matcher` (most timm families), its coarse grouping
decides: the stem, then one group per stage or block, as timm's own layer-wise lr
decay sees them. A group is named by the matcher: its key when the pattern has no
index ("stem"), else the matched text ("layer1", "blocks.3", "stages.0").
Parameters the matcher leaves out (a norm or pooling layer before the classifier)
form a group "neck".

Otherwise (a model without `group_matcher`, or a plain nn.Module) the groups are
the model's top-level children in definition order, each named by its attribute;
parameters held directly by the model get a group each, by their own name.

Either way the classifier's parameters (`get_classifier()`) form the last group,
"head", and every parameter is in exactly one group.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from timm.models import group_parameters
from torch import nn

from ftbench.components import Backbone, LayerGroup


def classifier_params(model: nn.Module) -> list[str]:
    """Names of the parameters of `model.get_classifier()` (empty when it has none)."""
    if not hasattr(model, "get_classifier"):
        return []
    heads = model.get_classifier()
    heads = heads if isinstance(heads, (tuple, list)) else (heads,)
    wanted = {id(h) for h in heads if isinstance(h, nn.Module)}
    names: list[str] = []
    for prefix, module in model.named_modules():
        if id(module) in wanted:
            names += [f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters()]
    return names


def _compiled(matcher: dict[str, Any]) -> list[tuple[str, re.Pattern]]:
    """(key, pattern) pairs of a timm group_matcher dict, in its order."""
    out = []
    for key, spec in matcher.items():
        if spec is None:
            continue
        patterns = [s[0] for s in spec] if isinstance(spec, (list, tuple)) else [spec]
        out += [(key, re.compile(p)) for p in patterns]
    return out


def _group_name(param: str, patterns: list[tuple[str, re.Pattern]], position: int) -> str:
    for key, pattern in patterns:
        match = pattern.match(param)
        if match:
            return match.group(0) if pattern.groups else key
    return "neck" if patterns else f"group{position}"


def _unique(names: list[str], reserved: str) -> list[str]:
    seen = {reserved: 1}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}.{seen[name]}")
    return out


def _matcher_groups(model: nn.Module, head: set[str]) -> list[LayerGroup] | None:
    try:
        matcher = model.group_matcher(coarse=True)
        by_id = group_parameters(model, matcher)
    except (AttributeError, NotImplementedError, TypeError):
        return None
    patterns = _compiled(matcher) if isinstance(matcher, dict) else []
    groups = []
    for position, (_, names) in enumerate(sorted(by_id.items())):
        names = [n for n in names if n not in head]
        if names:
            groups.append(LayerGroup(_group_name(names[0], patterns, position), names))
    return groups


def _child_groups(model: nn.Module, head: set[str]) -> list[LayerGroup]:
    names = [n for n, _ in model.named_parameters() if n not in head]
    # named_parameters lists a module's own parameters, then each child's in order
    return [LayerGroup(top, list(members))
            for top, members in itertools.groupby(names, key=lambda n: n.split(".")[0])]


def layer_groups(model: nn.Module) -> list[LayerGroup]:
    """Depth-ordered groups covering every parameter once; "head" is last."""
    head = classifier_params(model)
    groups = _matcher_groups(model, set(head)) if hasattr(model, "group_matcher") else None
    if groups is None:
        groups = _child_groups(model, set(head))
    names = _unique([g.name for g in groups], reserved="head")
    groups = [LayerGroup(name, g.params) for name, g in zip(names, groups)]
    return [*groups, LayerGroup("head", head)]


def describe_groups(backbone: Backbone) -> list[tuple[str, int]]:
    """(group name, number of parameter elements) per group, in depth order."""
    sizes = {n: p.numel() for n, p in backbone.model.named_parameters()}
    return [(g.name, sum(sizes[n] for n in g.params)) for g in backbone.groups]
