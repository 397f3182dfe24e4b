"""The data path: subsets, validation splits and batches on the device.

Datasets that fit are held as uint8 tensors (on the GPU when there is one); each
batch is gathered by index, converted, augmented and normalised as one tensor
operation, so the hot loop does no per-sample Python work. Larger ones arrive as
`StreamedImages`: a DataLoader's workers decode each batch's images (into pinned
memory when the device is a GPU) while the model trains on the previous one, and the
same batched conversion, augmentation and normalisation follow on the device. Both
paths draw the same index order and the same augmentation, so a run gives the same
result whichever path its data takes.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, Iterator, TypeVar

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ftbench.components import ImageSet, StreamedImages
from ftbench.errors import UserInputError

T = TypeVar("T")

# Pre-resize a whole split once when it fits in this many bytes at the model's size;
# larger ones are resized batch by batch.
_PRERESIZE_BYTES = 2 * 1024**3


def class_permutations(labels: torch.Tensor, seed: int) -> dict[int, torch.Tensor]:
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
    for idx in class_permutations(labels, seed).values():
        k = shots if shots is not None else max(1, round(fraction * len(idx)))
        chosen.append(idx[: min(k, len(idx))])
    return torch.sort(torch.cat(chosen)).values


def carve_val(train: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Split `train` into (train, val), stratified and seeded; every class keeps at
    least one training example."""
    train_idx, val_idx = [], []
    for idx in class_permutations(train.labels, seed).values():
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
    workers: int = 0  # DataLoader workers that decode streamed datasets (0: in this process)

    @classmethod
    def for_model(cls, data_config: dict, device: torch.device, channels_last: bool = False,
                  workers: int = 0) -> "Preprocess":
        """From a backbone's data config (input_size, mean, std)."""
        return cls(tuple(data_config["input_size"]), tuple(data_config["mean"]), tuple(data_config["std"]),
                   device, channels_last, workers)

    def __post_init__(self) -> None:
        c = self.input_size[0]
        self._mean = torch.tensor(self.mean, device=self.device).view(1, c, 1, 1) * 255.0
        self._std = torch.tensor(self.std, device=self.device).view(1, c, 1, 1) * 255.0

    def fit_images(self, images: torch.Tensor | StreamedImages) -> torch.Tensor | StreamedImages:
        """Match channels and, when the result fits in memory, size, once; uint8 stays uint8.
        The result moves to the device when it fits there (`fits_on_device`). Streamed
        images stay streamed: each batch is matched on the device instead."""
        c, h, w = self.input_size
        grey_to_rgb = images.shape[1] == 1 and c == 3  # expanded here, or per batch in __call__
        if images.shape[1] != c and not grey_to_rgb:
            raise ValueError(f"images have {images.shape[1]} channels, the model takes {c}")
        if isinstance(images, StreamedImages):
            return images
        if grey_to_rgb:
            images = images.expand(-1, 3, -1, -1)
        if tuple(images.shape[2:]) != (h, w) and len(images) * c * h * w <= _PRERESIZE_BYTES:
            chunks = [self._resize(images[i:i + 4096].float()).to(torch.uint8) for i in range(0, len(images), 4096)]
            images = torch.cat(chunks) if chunks else images.new_zeros((0, c, h, w))
        images = images.contiguous()
        free = torch.cuda.mem_get_info(self.device)[0] if self.device.type == "cuda" else None
        return images.to(self.device) if fits_on_device(images.numel(), free) else images

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        """Float images at the model's size, rounded to whole uint8 levels, so images
        resized once up front and those resized batch by batch are the same."""
        h, w = self.input_size[1:]
        if tuple(x.shape[2:]) == (h, w):
            return x
        x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        return x.round_().clamp_(0, 255)

    def __call__(self, images: torch.Tensor, augment: str = "none",
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x = images.to(self.device, non_blocking=True)
        if x.shape[1] == 1 and self.input_size[0] == 3:
            x = x.expand(-1, 3, -1, -1)
        x = self._resize(x.float())
        if augment != "none":
            x = _augment(x, augment, generator)
        x = (x - self._mean) / self._std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def fits_on_device(nbytes: int, free_bytes: int | None) -> bool:
    """Whether a uint8 split of `nbytes` should live on the accelerator: always on the
    CPU (free_bytes None), else when it takes at most a third of the free memory, so
    the model, activations and the other splits keep room. A split that stays in host
    memory is gathered there and each batch is copied over."""
    return free_bytes is None or nbytes <= free_bytes // 3


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


# ---------------------------------------------------------------- streaming


def default_workers() -> int:
    """DataLoader workers for streamed datasets when a suite does not say: the run's
    CPU threads but one, at most 8 (an executor running several runs on one machine
    gives each a share of the threads, and so of the decoding processes)."""
    return max(0, min(8, torch.get_num_threads() - 1))


def memory_limit_bytes() -> int:
    """Decoded datasets larger than this stream instead of being held in memory:
    FTBENCH_IN_MEMORY_GB if set, else a quarter of the machine's physical memory."""
    env = os.environ.get("FTBENCH_IN_MEMORY_GB")
    if env:
        try:
            return int(float(env) * 1024**3)
        except ValueError:
            raise UserInputError(f"FTBENCH_IN_MEMORY_GB={env!r} is not a number of gigabytes; "
                                 "set it to one, e.g. FTBENCH_IN_MEMORY_GB=8") from None
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 16 GB of memory
        return 4 * 1024**3


class _Decode(Dataset):
    """A map-style dataset over a StreamedImages view, for the DataLoader."""

    def __init__(self, images: StreamedImages):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images.load(i)


class Feed(Generic[T]):
    """Batches for a sequence of items that each name an index batch (`index_of`):
    `next()` returns (item, uint8 images) or, with `images=False`, (item, None).

    In-memory images are gathered by index. Streamed images are decoded by a
    DataLoader whose batch sampler draws from the same item sequence, so the order
    is the one an in-memory run sees; the loader runs ahead by a few batches. When a
    caller wants items without images (a head training on cached features), the
    loader stops and the items it had drawn are handed out first, in order, so no
    item is skipped or repeated whichever way the caller switches."""

    def __init__(self, images: torch.Tensor | StreamedImages, items: Iterable[T],
                 index_of: Callable[[T], torch.Tensor], device: torch.device, workers: int = 0):
        self.images, self.items, self.index_of = images, iter(items), index_of
        self.device, self.workers = device, workers
        self._drawn: deque[T] = deque()  # drawn from `items` by the loader, not yet returned
        self._batches: Iterator[torch.Tensor] | None = None

    def next(self, images: bool = True) -> tuple[T, torch.Tensor | None]:
        """The next item and its images; StopIteration when the items run out."""
        if not isinstance(self.images, StreamedImages):
            item = next(self.items)
            return item, self.images[self.index_of(item)] if images else None
        if not images:
            self.close()
            return (self._drawn.popleft() if self._drawn else next(self.items)), None
        if self._batches is None:
            self._batches = iter(self._loader())
        batch = next(self._batches)
        return self._drawn.popleft(), batch

    def __iter__(self) -> Iterator[tuple[T, torch.Tensor]]:
        while True:
            try:
                yield self.next()
            except StopIteration:
                return

    def _sampler(self) -> Iterator[list[int]]:
        for item in list(self._drawn):  # drawn by a loader that was stopped: replay them first
            yield self.index_of(item).tolist()
        for item in self.items:
            self._drawn.append(item)
            yield self.index_of(item).tolist()

    def _loader(self) -> DataLoader:
        workers = self.workers
        # Fork where it is safe (Linux): a run inside a spawned executor process would
        # otherwise spawn each worker too, a fresh interpreter importing torch (seconds).
        context = "fork" if workers and sys.platform == "linux" else None
        return DataLoader(_Decode(self.images), batch_sampler=self._sampler(), num_workers=workers,
                          pin_memory=self.device.type == "cuda", prefetch_factor=4 if workers else None,
                          multiprocessing_context=context)

    def close(self) -> None:
        """Stop the loader's workers (batches they decoded ahead are dropped, their
        items are kept for the next call)."""
        batches, self._batches = self._batches, None
        shutdown = getattr(batches, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def in_order(images: torch.Tensor | StreamedImages, batch_size: int, device: torch.device,
             workers: int = 0) -> Iterator[torch.Tensor]:
    """Every image once, in order, in batches of `batch_size` (for evaluation). A set
    of one batch is decoded in this process: starting workers would cost more."""
    workers = workers if len(images) > batch_size else 0
    feed = Feed(images, batches(len(images), batch_size, None), lambda idx: idx, device, workers)
    try:
        for _, batch in feed:
            yield batch
    finally:
        feed.close()
