"""Dataset components: digits, glyphs, torchvision by name (against fake roots the
tests lay out), image folders with domains, and their error messages."""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets
from PIL import Image
from pydantic import ValidationError

import ftbench_datasets
from ftbench.errors import DataError
from ftbench_datasets import glyphs, imagefolder, torchvision_sets
from ftbench_datasets.digits import DigitsParams, make_digits
from ftbench_datasets.glyphs import GlyphsParams, make_glyphs
from ftbench_datasets.imagefolder import ImageFolderParams, make_imagefolder
from ftbench_datasets.torchvision_sets import TorchvisionParams, make_torchvision


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """A private cache folder, and no in-process caches carried between tests."""
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))
    for loader in (glyphs._generate, torchvision_sets._load, imagefolder._load):
        loader.cache_clear()


def test_plugin_registers_every_dataset():
    names = {c.name for c in ftbench_datasets.ftbench_register_datasets()}
    assert {"digits", "glyphs", "imagefolder", "cifar10", "cifar100", "svhn", "stl10", "mnist", "fashionmnist",
            "flowers102", "oxford-pets", "dtd", "eurosat", "food101", "stanford-cars", "fgvc-aircraft",
            "caltech101", "gtsrb"} <= names


# ---------------------------------------------------------------- digits


def test_digits_splits_and_pixels():
    task = make_digits(DigitsParams(), seed=0)
    assert task.classes == [str(d) for d in range(10)]
    assert (len(task.train), len(task.test)) == (1257, 540)
    assert task.train.images.shape[1:] == (1, 8, 8) and task.train.images.dtype == torch.uint8
    assert task.train.images.max() == 255 and task.train.images.min() == 0
    # stratified: every class holds about 30% of its images out
    share = torch.bincount(task.test.labels) / (torch.bincount(task.test.labels) + torch.bincount(task.train.labels))
    assert torch.all((share - 0.3).abs() < 0.02)


def test_digits_split_is_fixed_by_split_seed_not_run_seed():
    a, b = make_digits(DigitsParams(), seed=0), make_digits(DigitsParams(), seed=7)
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.train.labels, b.train.labels)
    c = make_digits(DigitsParams(split_seed=1), seed=0)
    assert not torch.equal(a.test.images, c.test.images)
    assert len(make_digits(DigitsParams(test_fraction=0.5), seed=0).test) == 899


def test_digits_results_are_fresh_containers():
    a = make_digits(DigitsParams(), seed=0)
    a.train = a.test
    assert len(make_digits(DigitsParams(), seed=0).train) == 1257


# ---------------------------------------------------------------- glyphs


def test_glyphs_shape_classes_and_balance():
    task = make_glyphs(GlyphsParams(n_train=52, n_test=26), seed=0)
    assert task.classes == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert task.train.images.shape == (52, 3, 32, 32) and task.train.images.dtype == torch.uint8
    assert torch.equal(torch.bincount(task.train.labels), torch.full((26,), 2))
    assert torch.equal(torch.bincount(task.test.labels), torch.ones(26, dtype=torch.long))
    # white glyphs on black: ink covers a visible share of each image, not all of it
    ink = (task.train.images.float().mean(1) > 128).float().mean((1, 2))
    assert torch.all(ink > 0.02) and torch.all(ink < 0.6)


@pytest.mark.parametrize("charset, n", [("digits", 10), ("lowercase", 26), ("XO+", 3)])
def test_glyphs_charsets(charset, n):
    task = make_glyphs(GlyphsParams(charset=charset, n_train=n, n_test=n, size=16), seed=0)
    assert len(task.classes) == n and task.train.images.shape[-1] == 16
    assert task.classes[:1] == {"digits": ["0"], "lowercase": ["a"], "XO+": ["X"]}[charset]


def test_glyphs_are_deterministic_and_ignore_the_run_seed():
    params = GlyphsParams(n_train=40, n_test=20, colour="random", background="texture")
    first = make_glyphs(params, seed=0)
    glyphs._generate.cache_clear()
    again = make_glyphs(GlyphsParams(**params.model_dump()), seed=123)
    assert torch.equal(first.train.images, again.train.images)
    assert torch.equal(first.test.labels, again.test.labels)
    other = make_glyphs(params.model_copy(update={"seed": 1}), seed=0)
    assert not torch.equal(first.train.images, other.train.images)


def test_glyphs_test_set_does_not_depend_on_n_train():
    small = make_glyphs(GlyphsParams(n_train=26, n_test=26), seed=0)
    large = make_glyphs(GlyphsParams(n_train=260, n_test=26), seed=0)
    assert torch.equal(small.test.images, large.test.images)


def test_glyph_domains_differ():
    plain = make_glyphs(GlyphsParams(n_train=26, n_test=26, noise=0), seed=0).train.images.float()
    colour = make_glyphs(GlyphsParams(n_train=26, n_test=26, noise=0, colour="random", background="texture"),
                         seed=0).train.images.float()
    # mono images are grey (equal channels) on black; colour ones are neither
    assert torch.equal(plain[:, 0], plain[:, 1]) and (plain == 0).float().mean() > 0.4
    assert (colour[:, 0] - colour[:, 1]).abs().mean() > 10 and (colour == 0).float().mean() < 0.1


def test_glyphs_disk_cache_round_trip(tmp_path):
    params = GlyphsParams(n_train=26, n_test=26, disk_cache=True)
    first = make_glyphs(params, seed=0)
    files = list((tmp_path / "cache" / "data").glob("glyphs-*.npz"))
    assert len(files) == 1
    glyphs._generate.cache_clear()
    again = make_glyphs(params, seed=0)
    assert torch.equal(first.train.images, again.train.images) and torch.equal(first.test.labels, again.test.labels)


@pytest.mark.parametrize("bad, message", [
    ({"charset": "AA"}, "distinct"),
    ({"rotation": (10, -10)}, "low end above its high end"),
    ({"stroke_width": (-1, 1)}, "must start at 0"),
    ({"colour": "blue"}, "mono"),
    ({"n_train": 0}, "greater than or equal to 1"),
    ({"unknown": 1}, "Extra inputs are not permitted"),
])
def test_glyph_params_are_validated(bad, message):
    with pytest.raises(ValidationError, match=message):
        GlyphsParams(**bad)


# ---------------------------------------------------------------- torchvision (fake roots)


def _cifar10_root(root: Path, monkeypatch) -> np.ndarray:
    """CIFAR-10's pickled batches with 4 images each; returns the first train batch's images (NCHW)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    first = None
    for name in names:
        data = rng.integers(0, 256, (4, 3 * 32 * 32), dtype=np.uint8)
        first = data.reshape(4, 3, 32, 32) if first is None else first
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": data, "labels": [0, 1, 2, 9]}, fh)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": classes}, fh)

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    # torchvision checks each file against CIFAR-10's published checksums: point them at ours
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[n, md5(n)] for n in names[:5]])
    monkeypatch.setattr(cls, "test_list", [[names[5], md5(names[5])]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5("batches.meta")})
    return first


def _mnist_root(root: Path) -> None:
    """MNIST's raw idx files: 6 train and 3 test images of 28x28."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 6), ("t10k", 3)):
        images = np.arange(n * 28 * 28, dtype=np.uint8).reshape(n, 28, 28)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">iiii", 2051, n, 28, 28) + images.tobytes())
        labels = np.arange(n, dtype=np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">ii", 2049, n) + labels.tobytes())


def test_cifar10_from_a_fake_root(tmp_path, monkeypatch):
    first = _cifar10_root(tmp_path, monkeypatch)
    task = make_torchvision("cifar10", TorchvisionParams(root=str(tmp_path)), seed=0)
    assert task.classes[:2] == ["airplane", "automobile"] and len(task.classes) == 10
    assert (len(task.train), len(task.test)) == (20, 4) and task.val is None
    assert torch.equal(task.train.images[:4], torch.from_numpy(first))  # NCHW, pixels untouched
    assert task.train.labels[:4].tolist() == [0, 1, 2, 9]


def test_cifar10_resize_and_cap(tmp_path, monkeypatch):
    _cifar10_root(tmp_path, monkeypatch)
    params = TorchvisionParams(root=str(tmp_path), size=16, max_per_split=5)
    task = make_torchvision("cifar10", params, seed=0)
    assert task.train.images.shape == (5, 3, 16, 16) and task.test.images.shape == (4, 3, 16, 16)
    assert torch.equal(task.train.labels, make_torchvision("cifar10", params, seed=9).train.labels)


def test_mnist_from_a_fake_root(tmp_path):
    _mnist_root(tmp_path)
    task = make_torchvision("mnist", TorchvisionParams(root=str(tmp_path)), seed=0)
    assert task.classes == [str(d) for d in range(10)]  # aligned with `digits` and svhn
    assert task.train.images.shape == (6, 1, 28, 28) and task.test.images.shape == (3, 1, 28, 28)
    assert task.train.labels.tolist() == list(range(6))
    assert task.train.images[0, 0, 0, 5].item() == 5


def _eurosat_root(root: Path, sizes: dict[str, tuple[int, int]]) -> None:
    for cls, size in sizes.items():
        folder = root / "eurosat" / "2750" / cls
        folder.mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", size, (40 * i, 10, 200)).save(folder / f"{cls}_{i}.png")


def test_dataset_without_test_split_gets_a_carved_one(tmp_path):
    _eurosat_root(tmp_path, {"Forest": (12, 12), "River": (12, 12), "SeaLake": (12, 12)})
    task = make_torchvision("eurosat", TorchvisionParams(root=str(tmp_path), test_fraction=0.2), seed=0)
    assert task.classes == ["Forest", "River", "SeaLake"]
    assert (len(task.train), len(task.test)) == (12, 3)
    assert torch.equal(torch.bincount(task.test.labels), torch.ones(3, dtype=torch.long))
    assert task.train.images.shape[1:] == (3, 12, 12)


def test_images_of_different_sizes_need_a_size(tmp_path):
    _eurosat_root(tmp_path, {"Forest": (12, 12), "River": (20, 16)})
    with pytest.raises(DataError, match=r"'eurosat'.*differ in size.*set `size:`"):
        make_torchvision("eurosat", TorchvisionParams(root=str(tmp_path)), seed=0)
    torchvision_sets._load.cache_clear()
    task = make_torchvision("eurosat", TorchvisionParams(root=str(tmp_path), size=8), seed=0)
    assert task.train.images.shape[1:] == (3, 8, 8)


def test_missing_files_say_where_and_how(tmp_path):
    with pytest.raises(DataError) as info:
        make_torchvision("cifar10", TorchvisionParams(root=str(tmp_path / "nowhere")), seed=0)
    message = str(info.value)
    assert "'cifar10'" in message and str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert "download: true" in message and "place the files there" in message


def test_default_root_is_under_the_cache(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "cache" / "datasets" / "MNIST" / "raw")):
        make_torchvision("mnist", TorchvisionParams(), seed=0)


# ---------------------------------------------------------------- image folders


def _write_domain(root: Path, domain: str, classes: list[str], n: int = 4, size: tuple[int, int] = (20, 14)) -> None:
    for c, cls in enumerate(classes):
        folder = root / domain / cls
        folder.mkdir(parents=True)
        for i in range(n):
            colour = (60 * c, 20 * i, 255 if domain == "sketch" else 0)
            Image.new("RGB", size, colour).save(folder / f"{i}.png")


def test_imagefolder_single_domain(tmp_path):
    _write_domain(tmp_path, "photo", ["cat", "dog"], n=5)
    task = make_imagefolder(ImageFolderParams(root=str(tmp_path / "photo"), size=16, test_fraction=0.4), seed=0)
    assert task.classes == ["cat", "dog"] and task.shifted == {}
    assert (len(task.train), len(task.test)) == (6, 4)
    assert task.train.images.shape[1:] == (3, 16, 16)
    # the red channel tells the class apart (60 * class index), checking labels follow images
    assert torch.equal((task.test.images[:, 0, 0, 0] > 30).long(), task.test.labels)


def test_imagefolder_domains_become_shifted_sets(tmp_path):
    for domain in ("photo", "sketch", "art"):
        _write_domain(tmp_path, domain, ["cat", "dog", "fox"])
    task = make_imagefolder(ImageFolderParams(root=str(tmp_path), train_domain="photo", size=8), seed=0)
    assert sorted(task.shifted) == ["art", "sketch"]
    assert len(task.shifted["sketch"]) == 12 and task.shifted["sketch"].images[:, 2].float().mean() > 250
    assert len(task.train) + len(task.test) == 12
    only = make_imagefolder(ImageFolderParams(root=str(tmp_path), train_domain="photo", test_domains=("art",),
                                              size=8, max_per_class=3), seed=0)
    assert list(only.shifted) == ["art"] and len(only.shifted["art"]) == 9
    assert len(only.train) + len(only.test) == 9


def test_imagefolder_domain_with_other_classes_is_an_error(tmp_path):
    _write_domain(tmp_path, "photo", ["cat", "dog", "fox"])
    _write_domain(tmp_path, "sketch", ["cat", "dog", "owl"])
    with pytest.raises(DataError, match=r"domain 'sketch' lacks \['fox'\] and has extra \['owl'\].*'photo'"):
        make_imagefolder(ImageFolderParams(root=str(tmp_path), train_domain="photo"), seed=0)


def test_imagefolder_missing_root_and_domain(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        make_imagefolder(ImageFolderParams(root=str(tmp_path / "nope")), seed=0)
    _write_domain(tmp_path, "photo", ["cat", "dog"])
    with pytest.raises(DataError, match=r"domain\(s\) \['clipart'\] not found.*\['photo'\]"):
        make_imagefolder(ImageFolderParams(root=str(tmp_path), train_domain="clipart"), seed=0)


def test_imagefolder_class_without_images(tmp_path):
    _write_domain(tmp_path, "photo", ["cat", "dog"])
    (tmp_path / "photo" / "emu").mkdir()
    with pytest.raises(DataError, match="emu"):
        make_imagefolder(ImageFolderParams(root=str(tmp_path / "photo")), seed=0)


def test_imagefolder_params_are_validated():
    with pytest.raises(ValidationError, match="needs train_domain"):
        ImageFolderParams(root="x", test_domains=("a",))
    with pytest.raises(ValidationError, match="must not include the train domain"):
        ImageFolderParams(root="x", train_domain="a", test_domains=("a", "b"))
