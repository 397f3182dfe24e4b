"""The training loop every strategy shares.

`fit` trains `model` on a training set (in memory or streamed) until the budget's first limit
is reached. The strategy decides what trains (and at which learning-rate scale),
may change that between epochs and may add a penalty; the core owns the
optimiser, schedule, precision, batch-norm handling, budget and timing.

When only the head trains on a frozen backbone in eval mode without augmentation,
the backbone's features are computed once and the head trains on them: the same
computation, minus the repeated forward passes.
"""

from __future__ import annotations

import math
import time
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ftbench import numerics
from ftbench.components import Backbone, ImageSet, ParamGroup, Strategy, TrainState
from ftbench.config import BudgetConfig, TrainConfig
from ftbench.engine.data import Feed, Preprocess, batches, in_order
from ftbench.errors import Diverged
from ftbench.engine.evaluate import classification_metrics, pre_logits, predict_logits


@dataclass
class FitResult:
    epochs: float = 0.0
    steps: int = 0
    samples: int = 0
    train_seconds: float = 0.0
    data_seconds: float = 0.0
    stopped_by: str = ""
    trainable_params: int = 0  # the most parameters that trained at any point
    curve: list[dict] = field(default_factory=list)


class Budget:
    """Tracks use against the limits; `progress` is the fraction of the binding limit."""

    def __init__(self, cfg: BudgetConfig, steps_per_epoch: int):
        self.cfg = cfg
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.steps = 0
        self.samples = 0
        self.seconds = 0.0

    @property
    def epochs(self) -> float:
        return self.steps / self.steps_per_epoch

    def fractions(self) -> dict[str, float]:
        used = {"epochs": self.epochs, "steps": self.steps, "samples": self.samples, "seconds": self.seconds}
        return {k: used[k] / limit for k, limit in self.cfg.limits().items() if limit is not None}

    def progress(self) -> float:
        return min(1.0, max(self.fractions().values()))

    def exhausted(self) -> str | None:
        """The name of the first limit reached, or None."""
        for name, frac in self.fractions().items():
            if frac >= 1.0 - 1e-9:
                return name
        return None


def lr_factor(cfg: TrainConfig, progress: float) -> float:
    """The schedule's multiplier of the peak lr at `progress` in [0, 1]."""
    p = min(max(progress, 0.0), 1.0)
    if cfg.schedule == "slanted-triangular":  # ULMFiT: short rise (cut_frac 0.1), long linear decay
        cut = cfg.warmup or 0.1
        return p / cut if p < cut else max(0.0, 1 - (p - cut) / (1 - cut)) * (1 - 1 / 32) + 1 / 32
    if cfg.schedule == "onecycle":  # cosine rise for 30% (or warmup), cosine fall to ~0
        cut = cfg.warmup or 0.3
        if p < cut:
            return 0.04 + 0.96 * (1 - math.cos(math.pi * p / cut)) / 2
        return (1 + math.cos(math.pi * (p - cut) / (1 - cut))) / 2
    if cfg.warmup and p < cfg.warmup:
        return p / cfg.warmup
    q = (p - cfg.warmup) / (1 - cfg.warmup) if cfg.warmup else p
    if cfg.schedule == "cosine":
        return (1 + math.cos(math.pi * q)) / 2
    if cfg.schedule == "step":
        return cfg.step_gamma ** ((q >= 0.5) + (q >= 0.75))
    return 1.0


def _is_no_decay(name: str, param: torch.Tensor) -> bool:
    return param.ndim <= 1 or name.endswith(".bias")


def build_optimizer(model: nn.Module, groups: list[ParamGroup], cfg: TrainConfig) -> torch.optim.Optimizer:
    """One optimiser over every parameter a strategy may train; weight decay is kept
    off norms and biases (1-d tensors). Each torch group remembers its base lr."""
    named = dict(model.named_parameters())
    torch_groups, seen = [], set()
    for group in groups:
        unknown = [n for n in group.params if n not in named]
        if unknown:
            raise ValueError(f"strategy named parameters the model lacks: {unknown[:3]}")
        for decay in (True, False):
            params = [named[n] for n in group.params
                      if n not in seen and _is_no_decay(n, named[n]) != decay]
            if params:
                torch_groups.append({"params": params, "base_lr": cfg.lr * group.lr_scale,
                                     "lr": cfg.lr * group.lr_scale,
                                     "weight_decay": cfg.weight_decay if decay else 0.0, "name": group.name})
        seen.update(group.params)
    if not torch_groups:
        raise ValueError("the strategy trains no parameters")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(torch_groups, lr=cfg.lr, momentum=cfg.momentum)
    # Portable numerics: the fused step's sqrt is the exact instruction; the per-tensor
    # step calls MKL's vector sqrt, whose last bit differs between CPUs (ftbench.numerics).
    fused = numerics.portable_optimizer() and all(p.device.type == "cpu" for g in torch_groups for p in g["params"])
    return torch.optim.AdamW(torch_groups, lr=cfg.lr, **({"fused": True} if fused else {}))


def autocast_for(device: torch.device, cfg: TrainConfig):
    """(autocast context or None, grad scaler or None) for the configured precision."""
    precision = cfg.precision
    if precision == "auto":
        if device.type != "cuda":
            return None, None
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp32":
        return None, None
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" and device.type == "cuda" else None
    return torch.autocast(device_type=device.type, dtype=dtype), scaler


def _set_bn_modes(model: nn.Module, cfg: TrainConfig) -> None:
    model.train()
    if cfg.bn == "eval":
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                if not any(p.requires_grad for p in module.parameters()):
                    module.eval()


def _trainable(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


# The strategy is consulted (`on_progress`) at every epoch start and at least this
# often in budget terms, so phases (LP-FT, gradual unfreezing) switch on time even
# when the whole budget is one or two epochs.
PHASE_CHECKS = 20


def fit(model: nn.Module, backbone: Backbone, strategy: Strategy, train: ImageSet, *,
        cfg: TrainConfig, budget_cfg: BudgetConfig, prep: Preprocess, seed: int,
        val: ImageSet | None = None, curve_points: int = 10,
        on_epoch_end: Callable[[int, dict], None] | None = None,
        select_val: ImageSet | None = None, should_stop: Callable[[dict], bool] | None = None) -> FitResult:
    """Train `model` in place under the budget. `train.images` should already be
    fitted to the model (`Preprocess.fit_images`). Data order is drawn from a
    generator seeded by `seed` alone, so every strategy sees the same batches.

    Training runs in segments that end at an epoch end or every 1/PHASE_CHECKS of
    the budget; each starts with `strategy.on_progress`. The learning curve gets a
    point (train loss; val accuracy at up to `curve_points` of them) whenever a
    1/curve_points mark of the budget is passed: few-shot runs have hundreds of
    tiny epochs, and evaluating each would cost more than training. `should_stop`
    sees each point with a val accuracy; True ends training there ("pruned").

    A strategy that `solves_head` gets the frozen backbone's features of `train` and
    `select_val` (the val split, for choosing its hyperparameters) once instead."""
    device = prep.device
    groups = strategy.setup(model, backbone)
    if strategy.solves_head:
        return _solve_head(model, strategy, groups, train, select_val, cfg, prep)
    optimizer = build_optimizer(model, groups, cfg)
    autocast, scaler = autocast_for(device, cfg)
    head = model.get_classifier()
    head_names = set(backbone.head_params)
    budget = Budget(budget_cfg, math.ceil(len(train) / cfg.batch_size))
    result = FitResult()
    aug_gen = torch.Generator().manual_seed(seed + 7919)
    labels = train.labels.to(device)
    features: torch.Tensor | None = None
    epoch, next_check, next_point = 0, 1 / PHASE_CHECKS, 1 / curve_points
    loss_sum, n_steps = torch.zeros((), device=device), 0
    pruned = False
    feed = Feed(train.images, _batch_stream(len(train), cfg.batch_size, torch.Generator().manual_seed(seed)),
                lambda item: item[0], device, prep.workers)
    with closing(feed):  # stops a streaming loader's workers however training ends
        while budget.exhausted() is None:
            strategy.on_progress(model, TrainState(budget.progress(), epoch, budget.steps))
            _set_bn_modes(model, cfg)
            trainable = _trainable(model)
            result.trainable_params = max(result.trainable_params, sum(
                p.numel() for n, p in model.named_parameters() if n in trainable))
            head_only = (cfg.cache_features and cfg.augment == "none" and trainable <= head_names
                         and (cfg.bn == "eval" or not _has_bn(model)))
            if head_only and features is None:
                t0 = time.perf_counter()
                features = _features(model, train.images, prep, cfg, autocast)
                result.data_seconds += time.perf_counter() - t0
                budget.seconds += time.perf_counter() - t0  # the budget pays for the features once
            elif not head_only:
                features = None  # the backbone may change: cached features would go stale
            epoch_ended = False
            while True:
                t0 = time.perf_counter()
                (idx, epoch_ended), images = feed.next(images=not head_only)
                dev_idx = idx.to(device)
                y = labels[dev_idx]
                x = None if head_only else prep(images, cfg.augment, aug_gen)
                t1 = time.perf_counter()
                factor = lr_factor(cfg, strategy.schedule_progress(budget.progress()))
                for g in optimizer.param_groups:
                    g["lr"] = g["base_lr"] * factor
                with autocast or nullcontext():
                    logits = head(features[dev_idx]) if head_only else model(x)
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
                    extra = strategy.penalty(model, x, logits, y)
                    if extra is not None:
                        loss = loss + extra
                _backward_step(model, optimizer, scaler, loss, cfg.grad_clip)
                loss_sum += loss.detach()  # summed on the device: no host sync per step
                n_steps += 1
                result.data_seconds += t1 - t0
                budget.steps += 1
                budget.samples += len(idx)
                budget.seconds += time.perf_counter() - t0
                if epoch_ended or budget.exhausted() or budget.progress() >= next_check:
                    break
            next_check = (math.floor(budget.progress() * PHASE_CHECKS) + 1) / PHASE_CHECKS
            epoch += epoch_ended
            last = budget.exhausted() is not None
            if not (last or budget.progress() >= next_point or epoch_ended and on_epoch_end):
                continue
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            mean_loss = (loss_sum / max(n_steps, 1)).item()  # one host sync per curve point or epoch
            if not math.isfinite(mean_loss):
                raise Diverged(f"training loss became {mean_loss} by epoch {epoch + 1}; "
                               "lower the learning rate or set train.grad_clip")
            point = {"epoch": round(budget.epochs, 4), "step": budget.steps, "samples": budget.samples,
                     "train_seconds": round(budget.seconds, 4), "progress": round(budget.progress(), 4),
                     "train_loss": mean_loss}
            if last or budget.progress() >= next_point:
                next_point = (math.floor(budget.progress() * curve_points) + 1) / curve_points
                if val is not None and len(val):
                    logits = predict_logits(model, val.images, prep, cfg.eval_batch_size, autocast=autocast)
                    point["val_acc"] = classification_metrics(logits, val.labels)["acc"]
                result.curve.append(point)
                loss_sum, n_steps = torch.zeros((), device=device), 0
                pruned = should_stop is not None and not last and "val_acc" in point and should_stop(point)
            if epoch_ended and on_epoch_end is not None:
                on_epoch_end(epoch, point)
            if pruned:
                break
    result.epochs, result.steps, result.samples = budget.epochs, budget.steps, budget.samples
    result.train_seconds, result.stopped_by = budget.seconds, budget.exhausted() or ("pruned" if pruned else "")
    return result


def _solve_head(model: nn.Module, strategy: Strategy, groups: list[ParamGroup], train: ImageSet,
                val: ImageSet | None, cfg: TrainConfig, prep: Preprocess) -> FitResult:
    """Features once (the linear probe's cached-features path), then the strategy's
    closed-form head. Its cost: one pass over train (and val), plus the solve."""
    autocast, _ = autocast_for(prep.device, cfg)
    t0 = time.perf_counter()
    features = _features(model, train.images, prep, cfg, autocast)
    val_pair = None
    if val is not None and len(val):
        val_pair = (_features(model, val.images, prep, cfg, autocast), val.labels.to(prep.device))
    t1 = time.perf_counter()
    strategy.solve_head(model, (features, train.labels.to(prep.device)), val_pair)
    seconds = time.perf_counter() - t0
    named = dict(model.named_parameters())
    return FitResult(epochs=1.0, steps=0, samples=len(train), train_seconds=seconds, data_seconds=t1 - t0,
                     stopped_by="solved",
                     trainable_params=sum(named[n].numel() for g in groups for n in g.params))


def _batch_stream(n: int, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, bool]]:
    """(index batch, is it the epoch's last) over endless seeded epochs."""
    while True:
        chunks = list(batches(n, batch_size, generator))
        for i, idx in enumerate(chunks):
            yield idx, i == len(chunks) - 1


def _backward_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler, loss: torch.Tensor,
                   grad_clip: float | None) -> None:
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


def _has_bn(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def _features(model: nn.Module, images, prep: Preprocess, cfg: TrainConfig, autocast) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = []
    for batch in in_order(images, cfg.eval_batch_size, prep.device, prep.workers):
        with autocast or nullcontext():
            out.append(pre_logits(model, prep(batch)).float())
    model.train(was_training)
    return torch.cat(out)
