"""The streaming path for datasets too large for memory: speed and memory against
the alternatives, on the same image files.

Writes N JPEG images (class folders) to a temporary folder, then measures one epoch
of augmented, normalised batches (crop + flip, no model) three ways:

  baseline  torchvision ImageFolder + per-sample transforms behind a DataLoader
            with W workers (what a torchvision user writes)
  streamed  ftbench `imagefolder` with stream: true: W DataLoader workers decode,
            the batch is cropped, flipped and normalised as one tensor op
  memory    ftbench in memory: decode everything once (timed apart), then batches

and, in child processes, how much memory loading the dataset and running that
epoch takes, streamed and in memory. Prints samples/s, ratios and MB.

    python benchmarks/streaming.py [--n 6000] [--size 64] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from ftbench.engine.data import Feed, Preprocess, batches
from ftbench.engine.environment import proc_status_kb
from ftbench_datasets.imagefolder import ImageFolderParams, make_imagefolder

MEAN, STD = (0.5,) * 3, (0.25,) * 3


def write_images(root: Path, n: int, size: int, classes: int = 10) -> None:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
    for i in range(n):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"c{i % classes}" / f"{i}.jpg", quality=90)


def baseline(root: Path, size: int, batch: int, workers: int) -> float:
    tf = transforms.Compose([transforms.RandomCrop(size, padding=4, padding_mode="reflect"),
                             transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                             transforms.Normalize(MEAN, STD)])
    loader = DataLoader(datasets.ImageFolder(str(root), tf), batch_size=batch, shuffle=True, num_workers=workers)
    t0 = time.perf_counter()
    n = sum(len(x) for x, _ in loader)
    return n / (time.perf_counter() - t0)


def ftbench_epoch(root: Path, size: int, batch: int, workers: int, stream: bool) -> tuple[float, float]:
    """(samples/s of one epoch, seconds spent decoding up front)."""
    t0 = time.perf_counter()
    task = make_imagefolder(ImageFolderParams(root=str(root), size=size, test_fraction=0.01, stream=stream), seed=0)
    decode_s = time.perf_counter() - t0
    prep = Preprocess((3, size, size), MEAN, STD, torch.device("cpu"), workers=workers)
    images = prep.fit_images(task.train.images)
    order = batches(len(images), batch, torch.Generator().manual_seed(0))
    aug = torch.Generator().manual_seed(1)
    feed = Feed(images, order, lambda idx: idx, prep.device, workers)
    t0 = time.perf_counter()
    n = 0
    for _, x in feed:
        n += len(prep(x, "crop-flip", aug))
    feed.close()
    return n / (time.perf_counter() - t0), decode_s


def child_growth_mb(root: Path, size: int, batch: int, stream: bool) -> float:
    """How far (MB) a fresh process's peak resident memory rises above where it
    stood after its imports, while it loads the dataset and runs one epoch. Decoding
    runs in the process (0 workers), so the figure holds everything the data costs."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import streaming; "
            "base = streaming.vm_kb('VmRSS'); "
            f"streaming.ftbench_epoch(streaming.Path({str(root)!r}), {size}, {batch}, 0, {stream}); "
            "print(streaming.vm_kb('VmHWM') - base)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1]) / 1024


def vm_kb(field: str) -> int:
    """A memory figure of this process (Linux). VmHWM, the peak, belongs to this
    process image (ru_maxrss would carry over the parent's peak across exec)."""
    value = proc_status_kb(field)
    if value is None:
        raise RuntimeError(f"no {field} in /proc/self/status (this measurement needs Linux)")
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_images(root, args.n, args.size)
        base = max(baseline(root, args.size, args.batch, args.workers) for _ in range(2))
        streamed = max(ftbench_epoch(root, args.size, args.batch, args.workers, True)[0] for _ in range(2))
        memory, decode_s = ftbench_epoch(root, args.size, args.batch, args.workers, False)
        mem_peak = child_growth_mb(root, args.size, args.batch, False)
        stream_peak = child_growth_mb(root, args.size, args.batch, True)
    decoded_mb = args.n * 3 * args.size ** 2 / 2**20
    print(f"{args.n} JPEG images {args.size}x{args.size} ({decoded_mb:.0f} MB decoded), batch {args.batch}, "
          f"crop+flip+normalise, {args.workers} workers, {torch.get_num_threads()} threads")
    print(f"torchvision ImageFolder, per-sample transforms : {base:9.0f} samples/s")
    print(f"ftbench streamed (stream: true)                : {streamed:9.0f} samples/s   "
          f"ratio {streamed / base:.2f}x")
    print(f"ftbench in memory (after {decode_s:.1f} s decoding)      : {memory:9.0f} samples/s   "
          f"ratio {memory / base:.1f}x")
    print(f"memory to load + run one epoch (peak RSS over the imports): in memory {mem_peak:.0f} MB, "
          f"streamed {stream_peak:.0f} MB")
    print(json.dumps({"baseline": base, "streamed": streamed, "memory": memory, "decode_s": decode_s,
                      "peak_mb_memory": mem_peak, "peak_mb_streamed": stream_peak}))


if __name__ == "__main__":
    main()
