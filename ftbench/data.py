"""The in-memory data path: subsets, validation splits and on-device batches.

Small datasets are held as uint8 tensors (on the GPU when there is one); each batch
is gathered by index, converted, augmented and normalised as one tensor operation,
so the hot loop does no per-sample Python work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from ftbench.components import ImageSet

# Pre-resize a whole split once when it fits in this many bytes at the model's size;
# larger ones are resized batch by batch.
_PRERESIZE_BYTES = 2 * 1024**3


def _class_permutations(labels: torch.Tensor, seed: int) -> dict[int, torch.Tensor]:
    """Per class, that class's indices in a seeded random order."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for cls in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == cls).flatten()
        out[cls] = idx[torch.randperm(len(idx), generator=gen)]
    return out


def select_subset(labels: torch.Tensor, *, shots: int | None = None, fraction: float | None = None,
                  examples: int | None = None, seed: int) -> torch.Tensor:
    """Indices of a stratified training subset: `shots` per class, `fraction` of
    each class (at least one), or `examples` in all (that fraction of each class).
    Nested: for one seed, the prefix of each class's seeded order is taken, so a
    smaller subset lies inside a larger one; and it depends only on the labels and
    the seed, so every strategy sees the same data.

    >>> labels = torch.tensor([0, 0, 0, 1, 1, 1])
    >>> sorted(select_subset(labels, shots=1, seed=0).tolist()) != []
    True
    """
    if sum(v is not None for v in (shots, fraction, examples)) != 1:
        raise ValueError("give exactly one of shots, fraction or examples")
    if examples is not None:
        fraction = min(1.0, examples / max(1, len(labels)))
    chosen = []
    for idx in _class_permutations(labels, seed).values():
        k = shots if shots is not None else max(1, round(fraction * len(idx)))
        chosen.append(idx[: min(k, len(idx))])
    return torch.sort(torch.cat(chosen)).values


def carve_val(train: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Split `train` into (train, val), stratified and seeded; every class keeps at
    least one training example."""
    train_idx, val_idx = [], []
    for idx in _class_permutations(train.labels, seed).values():
        n_val = min(len(idx) - 1, round(fraction * len(idx)))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return (train.subset(torch.sort(torch.cat(train_idx)).values),
            train.subset(torch.sort(torch.cat(val_idx)).values))


@dataclass
class Preprocess:
    """uint8 batches -> normalised float batches at the model's input size."""

    input_size: tuple[int, int, int]  # C, H, W
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    channels_last: bool = False

    @classmethod
    def for_model(cls, data_config: dict, device: torch.device, channels_last: bool = False) -> "Preprocess":
        """From a backbone's data config (input_size, mean, std)."""
        return cls(tuple(data_config["input_size"]), tuple(data_config["mean"]), tuple(data_config["std"]),
                   device, channels_last)

    def __post_init__(self) -> None:
        c = self.input_size[0]
        self._mean = torch.tensor(self.mean, device=self.device).view(1, c, 1, 1) * 255.0
        self._std = torch.tensor(self.std, device=self.device).view(1, c, 1, 1) * 255.0

    def fit_images(self, images: torch.Tensor) -> torch.Tensor:
        """Match channels and, when the result fits in memory, size, once; uint8 stays uint8."""
        c, h, w = self.input_size
        if images.shape[1] == 1 and c == 3:
            images = images.expand(-1, 3, -1, -1)
        elif images.shape[1] != c:
            raise ValueError(f"images have {images.shape[1]} channels, the model takes {c}")
        if tuple(images.shape[2:]) != (h, w) and len(images) * c * h * w <= _PRERESIZE_BYTES:
            chunks = [self._resize(images[i:i + 4096].float()).round().clamp(0, 255).to(torch.uint8)
                      for i in range(0, len(images), 4096)]
            images = torch.cat(chunks) if chunks else images.new_zeros((0, c, h, w))
        return images.contiguous().to(self.device)

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_size[1:]
        if tuple(x.shape[2:]) == (h, w):
            return x
        return F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)

    def __call__(self, images: torch.Tensor, augment: str = "none",
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x = self._resize(images.to(self.device, non_blocking=True).float())
        if augment != "none":
            x = _augment(x, augment, generator)
        x = (x - self._mean) / self._std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _augment(x: torch.Tensor, how: str, generator: torch.Generator | None) -> torch.Tensor:
    n = x.shape[0]
    if "crop" in how:  # 4-pixel reflect padding, then a random crop per image, batched
        pad = 4
        h, w = x.shape[2:]
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
        x = _crop(padded, dy, dx, h, w)
    if "flip" in how:
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device).view(n, 1, 1, 1)
        x = torch.where(flip, x.flip(3), x)
    return x


def _crop(padded: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, h: int, w: int) -> torch.Tensor:
    n, c = padded.shape[:2]
    rows = (dy.view(n, 1) + torch.arange(h, device=padded.device)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w, device=padded.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=padded.device).view(n, 1, 1, 1)
    chan = torch.arange(c, device=padded.device).view(1, c, 1, 1)
    return padded[batch, chan, rows, cols]


def batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    """Index batches over `n` items: a seeded shuffle, or in order when `generator` is None."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]
