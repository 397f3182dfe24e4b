"""Does ftbench keep a GPU busy? Its training loop against the model's bare
forward-backward-step on the same device.

ftbench side: a real timm Backbone from the timm plugin (random init), the data
resident on the device as uint8 (`Preprocess.fit_images`), `training.fit` with the
suite defaults for the device (precision auto: bf16 on H100/H200; channels_last on
GPUs). Bare side: the same architecture, precision, memory format and AdamW, on a
synthetic batch that is already normalised float on the device: the most a
hand-written loop can get. Warm-up steps are excluded from both; the clock runs
between `torch.cuda.synchronize()` calls. Prints images/s of each and the ratio
ftbench / bare (target >= 0.9), plus the samples/s that fit itself reports (what a
run record's timing.samples_per_s says).

    python benchmarks/gpu_throughput.py                         # CPU here: resnet18, 64 px, batch 32
    python benchmarks/gpu_throughput.py --device cuda           # resnet50, 224 px, batch 256
    python benchmarks/gpu_throughput.py --device cuda --compile --model vit_base_patch16_224
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from ftbench.components import ImageSet, Strategy
from ftbench.config import BudgetConfig, TrainConfig
from ftbench.engine.data import Preprocess
from ftbench.engine.environment import resolve_device
from ftbench.engine.training import autocast_for, fit
from ftbench_timm import TimmParams, make_timm

CLASSES = 100
DEFAULTS = {"cuda": {"model": "resnet50", "size": 224, "batch": 256, "steps": 50, "warmup": 10, "repeats": 3},
            "cpu": {"model": "resnet18", "size": 64, "batch": 32, "steps": 6, "warmup": 2, "repeats": 1}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _backbone(args, device: torch.device, channels_last: bool):
    backbone = make_timm(TimmParams(model=args.model, pretrained="none", input_size=args.size),
                         num_classes=CLASSES, seed=0)
    model = backbone.model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.compile:
        model.compile()  # in place: parameter names (which fit's groups use) stay as they are
    backbone.model = model
    return backbone


def uint8_data(args) -> ImageSet:
    """Enough images for one epoch per fit call: no epoch-end sync inside the timing."""
    n = args.batch * max(args.steps, args.warmup)
    gen = torch.Generator().manual_seed(0)
    return ImageSet(torch.randint(0, 256, (n, 3, args.size, args.size), dtype=torch.uint8, generator=gen),
                    torch.randint(0, CLASSES, (n,), generator=gen))


def ftbench_throughput(args, device: torch.device, cfg: TrainConfig, data: ImageSet) -> tuple[float, float]:
    """(images/s by the synchronised wall clock, images/s that fit reports)."""
    backbone = _backbone(args, device, cfg.channels_last)
    prep = Preprocess.for_model(backbone.data_config, device, cfg.channels_last)
    train = ImageSet(prep.fit_images(data.images), data.labels)
    kwargs = dict(cfg=cfg, prep=prep, seed=0)
    fit(backbone.model, backbone, Strategy(), train, budget_cfg=BudgetConfig(steps=args.warmup), **kwargs)
    _sync(device)
    t0 = time.perf_counter()
    result = fit(backbone.model, backbone, Strategy(), train, budget_cfg=BudgetConfig(steps=args.steps), **kwargs)
    _sync(device)
    wall = time.perf_counter() - t0
    return result.samples / wall, result.samples / result.train_seconds


def bare_throughput(args, device: torch.device, cfg: TrainConfig) -> float:
    """The model's own forward-backward-step on a ready float batch."""
    model = _backbone(args, device, cfg.channels_last).model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    autocast, scaler = autocast_for(device, cfg)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device, generator=gen)
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (args.batch,), device=device, generator=gen)

    def step() -> None:
        with autocast or nullcontext():
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    for _ in range(args.warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    return args.steps * args.batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ap.add_argument("--model", help="timm model [cuda: resnet50, cpu: resnet18]")
    ap.add_argument("--size", type=int, help="input height and width [cuda: 224, cpu: 64]")
    ap.add_argument("--batch", type=int, help="batch size [cuda: 256, cpu: 32]")
    ap.add_argument("--steps", type=int, help="timed steps [cuda: 50, cpu: 6]")
    ap.add_argument("--warmup", type=int, help="untimed steps first [cuda: 10, cpu: 2]")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="default: on for GPUs")
    ap.add_argument("--compile", action="store_true", help="torch.compile both models (slow to start)")
    ap.add_argument("--repeats", type=int, help="alternating A/B repeats; medians are printed [cuda: 3, cpu: 1]")
    args = ap.parse_args()

    device = resolve_device(args.device)
    for key, value in DEFAULTS["cuda" if device.type == "cuda" else "cpu"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    channels_last = args.channels_last if args.channels_last is not None else device.type == "cuda"
    cfg = TrainConfig(batch_size=args.batch, precision=args.precision, channels_last=channels_last,
                      schedule="constant", optimizer="adamw")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the runner sets it unless the suite is deterministic
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu, {torch.get_num_threads()} threads"
    autocast, _ = autocast_for(device, cfg)
    precision = str(autocast.fast_dtype).removeprefix("torch.") if autocast else "float32"

    data = uint8_data(args)
    ours, reported, bare = [], [], []
    for _ in range(args.repeats):
        wall, said = ftbench_throughput(args, device, cfg, data)
        ours.append(wall)
        reported.append(said)
        bare.append(bare_throughput(args, device, cfg))
    o, b = statistics.median(ours), statistics.median(bare)
    print(f"{args.model}, {args.size}px, batch {args.batch}, {args.steps} timed steps after {args.warmup} "
          f"warm-up, {name}, precision {precision}, "
          f"channels_last {channels_last}, compile {args.compile}; median of {args.repeats}")
    print(f"bare forward-backward-step: {b:9.1f} img/s   (runs: {', '.join(f'{v:.0f}' for v in bare)})")
    print(f"ftbench fit()             : {o:9.1f} img/s   (runs: {', '.join(f'{v:.0f}' for v in ours)})")
    print(f"fit's own samples_per_s   : {statistics.median(reported):9.1f} img/s   (what records report)")
    print(f"ratio ftbench/bare        : {o / b:.3f}   (target >= 0.9)")


if __name__ == "__main__":
    main()
