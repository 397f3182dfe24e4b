"""Does the harness cost anything? ftbench's training loop against a plain PyTorch loop.

Both train the same model (same init) on the same in-memory data for the same
number of steps, alternating A/B/A/B in one process so machine noise hits both.
The plain loop gets its data already normalised as float tensors (the fastest a
hand-written loop can be); ftbench converts uint8 batches on the fly, as it does
in real runs. Prints each throughput and the median over the A/B pairs of the ratio
ftbench / plain (target >= 0.97): pairing cancels the slow drifts of a shared
machine, which move both halves of a pair together.

    python benchmarks/overhead.py [--model resnet10t] [--steps 40] [--batch 64] [--size 32]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import timm
import torch
import torch.nn.functional as F

from ftbench.components import Backbone, ImageSet, LayerGroup, Strategy
from ftbench.config import BudgetConfig, TrainConfig
from ftbench.engine.data import Preprocess
from ftbench.engine.training import fit, lr_factor


def plain_loop(model, x, y, steps, batch, cfg) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(0)
    model.train()
    t0 = time.perf_counter()
    step = 0
    while step < steps:
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            for g in opt.param_groups:
                g["lr"] = cfg.lr * lr_factor(cfg, step / steps)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step == steps:
                break
    return steps * batch / (time.perf_counter() - t0)


def ftbench_loop(model, images, y, steps, batch, cfg, prep) -> float:
    names = [n for n, _ in model.named_parameters()]
    backbone = Backbone(model=model, data_config={}, groups=[LayerGroup("all", names[:-2]), LayerGroup("head", names[-2:])])
    result = fit(model, backbone, Strategy(), ImageSet(images, y), cfg=cfg,
                 budget_cfg=BudgetConfig(steps=steps), prep=prep, seed=0)
    return result.samples / result.train_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet10t")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    n = args.batch * 8
    images = torch.randint(0, 256, (n, 3, args.size, args.size), dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,))
    prep = Preprocess((3, args.size, args.size), (0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    x_float = prep(images)  # the plain loop's pre-normalised copy
    cfg = TrainConfig(batch_size=args.batch, lr=1e-3, eval_batch_size=256)
    base = timm.create_model(args.model, num_classes=10)

    plain_loop(copy.deepcopy(base), x_float, labels, 5, args.batch, cfg)  # warm-up: allocator, kernels
    plain, ours = [], []
    for _ in range(args.repeats):
        plain.append(plain_loop(copy.deepcopy(base), x_float, labels, args.steps, args.batch, cfg))
        ours.append(ftbench_loop(copy.deepcopy(base), images, labels, args.steps, args.batch, cfg, prep))
    p, o = statistics.median(plain), statistics.median(ours)
    ratio = statistics.median(b / a for a, b in zip(plain, ours))
    print(f"model {args.model}, {args.size}px, batch {args.batch}, {args.steps} steps, "
          f"{torch.get_num_threads()} threads, {args.repeats} alternating A/B pairs")
    print(f"plain PyTorch loop : {p:8.1f} img/s median   (runs: {', '.join(f'{v:.0f}' for v in plain)})")
    print(f"ftbench fit()      : {o:8.1f} img/s median   (runs: {', '.join(f'{v:.0f}' for v in ours)})")
    print(f"ratio ftbench/plain: {ratio:.3f} (median of pairs)   (target >= 0.97)")


if __name__ == "__main__":
    main()
