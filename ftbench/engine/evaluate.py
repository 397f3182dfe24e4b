"""Evaluation: top-1, balanced (macro) accuracy, top-5 and loss on one split."""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from ftbench.engine.data import Preprocess, in_order
from ftbench.results.records import encode_correct


def pre_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pooled features that the classifier takes (timm's `forward_head(pre_logits=True)`)."""
    return model.forward_head(model.forward_features(x), pre_logits=True)


@torch.no_grad()
def predict_logits(model: nn.Module, images, prep: Preprocess, batch_size: int,
                   head: nn.Module | None = None, autocast=None) -> torch.Tensor:
    """Logits for uint8 `images` (a tensor or StreamedImages), by `model` or, given `head`, by `head` on the model's
    pre-logits features (the source head for forgetting)."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for batch in in_order(images, batch_size, prep.device, prep.workers):
            x = prep(batch)
            with autocast or nullcontext():
                logits = head(pre_logits(model, x)) if head is not None else model(x)
            out.append(logits.float())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, per_example: bool = False) -> dict:
    """Accuracy metrics in percent: acc, balanced_acc (mean per-class recall over the
    classes present), top5 (None with 5 classes or fewer), loss (mean cross-entropy), n.
    With `per_example`, also `correct`: which examples were right, as packed bits
    (`encode_correct`), so a report can pair two runs on one test set (McNemar)."""
    labels = labels.to(logits.device)
    if len(labels) == 0:
        return {"acc": None, "balanced_acc": None, "top5": None, "loss": None, "n": 0}
    pred = logits.argmax(1)
    correct = (pred == labels).float()
    classes = torch.unique(labels)
    recalls = torch.stack([correct[labels == c].mean() for c in classes])
    top5 = None
    if logits.shape[1] > 5:
        top5 = (logits.topk(5, dim=1).indices == labels.view(-1, 1)).any(1).float().mean().item() * 100
    return {
        "acc": correct.mean().item() * 100,
        "balanced_acc": recalls.mean().item() * 100,
        "top5": top5,
        "loss": F.cross_entropy(logits, labels).item(),
        "n": len(labels),
    } | ({"correct": encode_correct(correct.bool().cpu().numpy())} if per_example else {})
