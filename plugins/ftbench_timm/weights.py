"""Where a backbone's weights come from: nowhere ("none"), timm's hub, a local file,
or a checkpoint in ftbench's pretraining cache ("ftbench:<key>")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import get_pretrained_cfg_value, load_state_dict, split_model_name_tag
from torch import nn

from ftbench.engine import checkpoints
from ftbench.errors import BackboneError

from .groups import classifier_params
from .names import WEIGHT_SUFFIXES, unknown_model_message  # noqa: F401  (re-exported)

ALTERNATIVES = ("`pretrained: /path/to/model.safetensors` (a local weights file), `pretrained: none` "
                "(random init), or `pretrained: ftbench:<key>` (a checkpoint `ftbench pretrain` builds)")


@dataclass
class Loaded:
    """A model with its source head still attached, and what is known of its source."""

    model: nn.Module
    source: str | None  # where the weights came from, for the record
    classes: list[str] | None = None
    dataset: tuple[str, dict[str, Any]] | None = None
    data_config: dict[str, Any] = field(default_factory=dict)  # overrides timm's (from checkpoint meta)


def create_model(name: str, pretrained: bool, input_size: int | None, **kwargs: Any) -> nn.Module:
    """timm.create_model, with `input_size` passed on to models that fix it at creation."""
    arch, _ = split_model_name_tag(name)
    message = unknown_model_message(name)
    if message:
        raise BackboneError(message)
    try:
        fixed = get_pretrained_cfg_value(arch, "fixed_input_size")
    except RuntimeError:  # an architecture without a pretrained config
        fixed = False
    if fixed and input_size:
        # e.g. ViTs size their position embeddings at creation (timm resamples hub weights)
        kwargs["img_size"] = input_size
    return timm.create_model(name, pretrained=pretrained, **kwargs)


def from_hub(name: str, input_size: int | None) -> Loaded:
    try:
        model = create_model(name, True, input_size)
    except BackboneError:
        raise
    except Exception as exc:  # offline: huggingface_hub, urllib and timm each raise their own types
        raise BackboneError(f"could not load timm's pretrained weights for '{name}' ({type(exc).__name__}: "
                            f"{str(exc)[:300]}); without network use {ALTERNATIVES}") from None
    cfg = model.pretrained_cfg
    return Loaded(model, source=cfg.get("hf_hub_id") or f"{cfg.get('architecture')}.{cfg.get('tag')}",
                  classes=_imagenet_classes(model))


def _imagenet_classes(model: nn.Module) -> list[str] | None:
    """WordNet ids (n01440764, ...) of an ImageNet head, the folder names of an
    ImageNet image folder, so a source test set aligns by class name."""
    subset = timm.data.infer_imagenet_subset(model)
    if subset is None:
        return None
    info = timm.data.ImageNetInfo(subset)
    return list(info.label_names()) if info.num_classes() == model.num_classes else None


def _head_size(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> int:
    """Classes of the head stored in `state_dict` (0 when it holds no classifier)."""
    for name in classifier_params(model):
        if name.endswith("weight") and name in state_dict:
            return int(state_dict[name].shape[0])
    return 0


def _check_tensors(state_dict: Any, origin: str) -> None:
    """A state dict maps parameter names to tensors; anything else is not weights."""
    if not isinstance(state_dict, dict):
        raise BackboneError(f"{origin} holds a {type(state_dict).__name__}, not a state dict (name -> tensor)")
    odd = [f"{k} ({type(v).__name__})" for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if odd:
        raise BackboneError(f"{origin} is not a state dict of tensors: {len(odd)} entries are not tensors, e.g. "
                            f"{', '.join(odd[:3])}; save `model.state_dict()` (torch.save or safetensors)")


def _load_into(model: nn.Module, state_dict: dict[str, torch.Tensor], origin: str) -> None:
    _check_tensors(state_dict, origin)
    try:
        result = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise BackboneError(f"{origin} does not fit the model: {str(exc)[:600]}; was it saved from "
                            "this architecture (and input size)?") from None
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"missing {len(result.missing_keys)} keys, e.g. {result.missing_keys[:5]}")
        if result.unexpected_keys:
            parts.append(f"unexpected {len(result.unexpected_keys)} keys, e.g. {result.unexpected_keys[:5]}")
        raise BackboneError(f"{origin} does not match the model's parameters: {'; '.join(parts)}; "
                            "was it saved from this architecture?")


def from_file(name: str, path_text: str, input_size: int | None) -> Loaded:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise BackboneError(f"weights file {path.resolve()} not found; use an existing file, "
                            f"`pretrained: hub` (needs network), or {ALTERNATIVES}")
    try:
        state_dict = load_state_dict(str(path), weights_only=True)
    except Exception as exc:  # safetensors and torch.load raise their own types
        raise BackboneError(f"cannot read weights file {path} ({type(exc).__name__}: {str(exc)[:300]}); "
                            f"it must be a .safetensors file or a torch-saved state dict") from None
    _check_tensors(state_dict, f"weights file {path}")
    model = create_model(name, False, input_size)
    model.reset_classifier(_head_size(model, state_dict))
    _load_into(model, state_dict, f"weights file {path}")
    return Loaded(model, source=str(path.resolve()))


def _trained_model(config: dict[str, Any]) -> str | None:
    """The timm model name a pretraining config built (`ftbench.suite.pretrain_config`)."""
    model = config.get("backbone", {}).get("params", {}).get("model", config.get("model"))
    return model if isinstance(model, str) else None


def from_checkpoint(name: str, key: str, input_size: int | None) -> Loaded:
    rebuild = "rerun `ftbench pretrain` (or the suite that needs it), which rebuilds it"
    if not re.fullmatch(r"[A-Za-z0-9_-]+", key):  # a key names a folder in the cache: never a path
        raise BackboneError(f"'ftbench:{key}' is not a checkpoint key (letters and digits, as `ftbench pretrain` "
                            f"prints); {rebuild}")
    try:
        state_dict, meta = checkpoints.load_checkpoint(key)
    except checkpoints.MissingCheckpoint:
        raise BackboneError(f"no pretrained checkpoint 'ftbench:{key}' in {checkpoints.checkpoint_dir(key).parent}; "
                            f"{rebuild}") from None
    except checkpoints.CorruptCheckpoint as exc:
        raise BackboneError(f"pretrained checkpoint 'ftbench:{key}' is damaged ({exc}); {rebuild}") from None
    config = meta.get("config", {})
    trained_on = _trained_model(config)
    if trained_on and trained_on != name:
        raise BackboneError(f"checkpoint 'ftbench:{key}' holds a '{trained_on}', not a '{name}'; "
                            f"set `model: {trained_on}` or use another checkpoint")
    data_config = dict(meta.get("data_config") or {})
    if input_size is None and data_config.get("input_size"):
        input_size = int(data_config["input_size"][-1])  # a ViT is built for the size it was trained at
    model = create_model(name, False, input_size, num_classes=len(meta["classes"]))
    _load_into(model, state_dict, f"checkpoint 'ftbench:{key}'")
    dataset = config.get("dataset")
    return Loaded(model, source=f"ftbench:{key}", classes=list(meta["classes"]),
                  dataset=(dataset["name"], dict(dataset.get("params") or {})) if dataset else None,
                  data_config=data_config)
