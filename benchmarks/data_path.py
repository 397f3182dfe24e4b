"""How fast does data reach the model? ftbench's in-memory batches against a plain
per-sample torchvision DataLoader, on the same 32x32 images.

ftbench holds a dataset as one uint8 tensor and builds each batch with tensor ops
(gather, convert, augment, normalise). The baseline is what a torchvision user
writes: a Dataset of PIL images with ToTensor/Normalize/RandomCrop/Flip transforms
behind a DataLoader. Both produce normalised, augmented float batches; no model
runs, so this measures the data path alone. Prints samples per second and the ratio
(target >= 5x on CPU).

    python benchmarks/data_path.py [--n 10000] [--batch 128] [--workers 0]
"""

from __future__ import annotations

import argparse
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ftbench.engine.data import Preprocess, batches


class PILDataset(Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.pil = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pil)

    def __getitem__(self, i):
        return self.transform(self.pil[i]), self.labels[i]


def per_sample_loader(images, labels, batch: int, workers: int) -> float:
    tf = transforms.Compose([transforms.RandomCrop(32, padding=4, padding_mode="reflect"),
                             transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                             transforms.Normalize((0.5,) * 3, (0.25,) * 3)])
    loader = DataLoader(PILDataset(images, labels, tf), batch_size=batch, shuffle=True, num_workers=workers)
    t0 = time.perf_counter()
    n = sum(len(x) for x, _ in loader)
    return n / (time.perf_counter() - t0)


def in_memory(images, labels, batch: int) -> float:
    prep = Preprocess((3, 32, 32), (0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    images = prep.fit_images(images)
    gen, aug = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    t0 = time.perf_counter()
    n = 0
    for idx in batches(len(images), batch, gen):
        x = prep(images[idx], "crop-flip", aug)
        _ = labels[idx]
        n += len(x)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers for the baseline")
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (args.n,), generator=gen)
    base = [per_sample_loader(images, labels, args.batch, args.workers) for _ in range(2)]
    ours = [in_memory(images, labels, args.batch) for _ in range(2)]
    b, o = max(base), max(ours)
    print(f"{args.n} images 32x32, batch {args.batch}, crop+flip+normalise, {torch.get_num_threads()} threads")
    print(f"torchvision per-sample DataLoader ({args.workers} workers): {b:10.0f} samples/s")
    print(f"ftbench in-memory batches                    : {o:10.0f} samples/s")
    print(f"ratio: {o / b:.1f}x   (target >= 5x)")


if __name__ == "__main__":
    main()
