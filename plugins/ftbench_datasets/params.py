"""The parameter schemas of the built-in datasets (and the torchvision table), apart
from the loaders: `ftbench list` and `ftbench validate` read them without importing
torch. Each loader module re-exports its own.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, WithJsonSchema, field_validator, model_validator

from ftbench.components import Params

def _stream_setting(value: Any) -> Any:
    if value == "auto" or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"use auto, true or false, not {value!r}")


Stream = Annotated[Literal["auto"] | bool, PlainValidator(_stream_setting),
                   WithJsonSchema({"enum": ["auto", True, False]})]


STREAM_HELP = ("decode images batch by batch in DataLoader workers instead of holding them in memory; "
               "auto: stream when the decoded split would exceed FTBENCH_IN_MEMORY_GB (default a quarter "
               "of the machine's memory). Results are the same either way")


class DigitsParams(Params):
    test_fraction: float = Field(0.3, gt=0, lt=1, description="fraction of the images held out as the test split")
    split_seed: int = Field(0, description="seed of the stratified train/test split (not the run seed, "
                                           "so every run is scored on the same test images)")


CHARSETS = {"uppercase": string.ascii_uppercase, "lowercase": string.ascii_lowercase,
            "digits": string.digits}


def _range(value: tuple, name: str, low: float) -> tuple:
    lo, hi = value
    if lo > hi:
        raise ValueError(f"{name} range [{lo}, {hi}] has its low end above its high end")
    if lo < low:
        raise ValueError(f"{name} range must start at {low} or more, got {lo}")
    return value


class GlyphsParams(Params):
    charset: str = Field("uppercase", description="the classes: 'uppercase' (A-Z), 'lowercase' (a-z), "
                                                  "'digits' (0-9), or a string of distinct characters")
    n_train: int = Field(2000, ge=1, description="training images (classes balanced)")
    n_test: int = Field(1000, ge=1, description="test images (classes balanced)")
    size: int = Field(32, ge=8, le=256, description="image side in pixels")
    rotation: tuple[float, float] = Field((-15.0, 15.0), description="rotation range in degrees")
    scale: tuple[float, float] = Field((0.8, 1.1), description="glyph size range; 1 = font size 0.7 x image side")
    translate: float = Field(0.1, ge=0, le=0.5, description="largest shift, as a fraction of the image side")
    stroke_width: tuple[int, int] = Field((0, 1), description="outline width range in pixels (bolder glyphs)")
    noise: float = Field(0.05, ge=0, le=1, description="std of Gaussian pixel noise (pixel values in [0, 1])")
    colour: Literal["mono", "random"] = Field("mono", description="'mono': white on black; 'random': random "
                                                                   "foreground and background colours with contrast")
    background: Literal["plain", "texture"] = Field("plain", description="'plain' or 'texture' (random smooth "
                                                                         "noise or stripes behind the glyph)")
    seed: int = Field(0, description="seed of the generator: the dataset is fixed by its params, not the run seed")
    disk_cache: bool = Field(False, description="also keep the arrays in <cache>/data/ (generation takes about "
                                                "a second per 20k 32 px images, so this rarely pays)")

    @field_validator("charset")
    @classmethod
    def _charset(cls, value: str) -> str:
        chars = CHARSETS.get(value, value)
        if len(chars) < 2 or len(set(chars)) != len(chars) or any(c.isspace() for c in chars):
            raise ValueError(f"charset must be one of {sorted(CHARSETS)} or at least two distinct, "
                             f"non-space characters; got {value!r}")
        return value

    @field_validator("rotation")
    @classmethod
    def _rotation(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _range(value, "rotation", -180)

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _range(value, "scale", 0.1)

    @field_validator("stroke_width")
    @classmethod
    def _stroke(cls, value: tuple[int, int]) -> tuple[int, int]:
        return _range(value, "stroke_width", 0)

    @property
    def classes(self) -> list[str]:
        return list(CHARSETS.get(self.charset, self.charset))


#: The folder layouts `imagefolder` reads (`ftbench list datasets imagefolder` prints this).
IMAGEFOLDER_LAYOUT = """Folder layouts:
    root/<class>/<image>                  one domain: a stratified train/test split
                                          (test_fraction, split_seed)
    root/train/<class>/<image>            pre-split (timm's train.py and ImageNet layout):
    root/val/<class>/<image>              the folders are used as given; without test/,
    root/test/<class>/<image>             val/ is the test split (and the core carves val
                                          from train); without val/, the core carves it
    root/<domain>/<class>/<image>         with train_domain: train and test come from that
                                          domain, every other domain (or those in
                                          test_domains) is a shifted test set
Classes are matched by folder name, so every split and domain needs the same class
folders (PACS, Office-Home and DomainNet are laid out this way). Image files:
.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp."""

#: Split folders that make a root pre-split: train/ and at least one of the others.
PRESPLIT = ("train", "val", "test")


class ImageFolderParams(Params):
    root: str = Field(description="folder of class folders, of train/ val/ test/ folders holding class folders, "
                                  "or of domain folders holding class folders")
    train_domain: str | None = Field(None, description="the domain (subfolder of root) to train and test on; "
                                                       "unset: root itself holds the class folders")
    test_domains: tuple[str, ...] | None = Field(None, description="domains used as shifted test sets; "
                                                                   "default every domain but train_domain")
    size: int = Field(64, ge=8, le=1024, description="resize the shorter side to this and centre-crop a square")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="share of the (train-domain) images held out for "
                                                              "test; unused when root has train/ and test/ or val/")
    split_seed: int = Field(0, description="seed of the stratified train/test split (not the run seed)")
    max_per_class: int | None = Field(None, ge=1, description="keep at most this many images per class and "
                                                              "domain (a fixed random subset)")
    stream: Stream = Field("auto", description=STREAM_HELP)

    @field_validator("test_domains")
    @classmethod
    def _distinct(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"test_domains lists a domain twice: {list(value)}")
        return value

    @model_validator(mode="after")
    def _domains_consistent(self) -> "ImageFolderParams":
        if self.test_domains is not None and self.train_domain is None:
            raise ValueError("test_domains needs train_domain (the domain to train on)")
        if self.train_domain is not None and self.train_domain in (self.test_domains or ()):
            raise ValueError(f"test_domains must not include the train domain '{self.train_domain}'")
        return self


_DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class _Spec:
    """How to load one torchvision dataset."""

    cls: str  # class name in torchvision.datasets
    title: str
    folder: str  # where under root torchvision looks for the files (for messages)
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)  # split -> constructor kwargs
    grey: bool = False
    layout: str | None = None  # layout of an in-memory `.data` array: NHWC, NCHW or NHW
    classes: tuple[str, ...] | None = None  # names when torchvision's are missing or unaligned


def _train_test(style: str, train: str = "train", test: str = "test", val: str | None = None) -> dict:
    if style == "bool":
        return {"train": {"train": True}, "test": {"train": False}}
    if style == "none":  # one split: the test split is carved from it
        return {"train": {}}
    splits = {"train": {"split": train}, "test": {"split": test}}
    if val:
        splits["val"] = {"split": val}
    return splits


SPECS: dict[str, _Spec] = {
    "cifar10": _Spec("CIFAR10", "CIFAR-10", "cifar-10-batches-py", _train_test("bool"), layout="NHWC"),
    "cifar100": _Spec("CIFAR100", "CIFAR-100", "cifar-100-python", _train_test("bool"), layout="NHWC"),
    "svhn": _Spec("SVHN", "SVHN (cropped digits)", ".", _train_test("split"), layout="NCHW", classes=_DIGITS),
    "stl10": _Spec("STL10", "STL-10", "stl10_binary", _train_test("split"), layout="NCHW"),
    # torchvision names MNIST classes "0 - zero"; plain digits align with `digits` and svhn
    "mnist": _Spec("MNIST", "MNIST", "MNIST/raw", _train_test("bool"), grey=True, layout="NHW", classes=_DIGITS),
    "fashionmnist": _Spec("FashionMNIST", "Fashion-MNIST", "FashionMNIST/raw", _train_test("bool"), grey=True,
                          layout="NHW"),
    "flowers102": _Spec("Flowers102", "Oxford Flowers-102", "flowers-102", _train_test("split", val="val")),
    "oxford-pets": _Spec("OxfordIIITPet", "Oxford-IIIT Pets", "oxford-iiit-pet", _train_test("split", "trainval")),
    "dtd": _Spec("DTD", "Describable Textures", "dtd", _train_test("split", val="val")),
    "eurosat": _Spec("EuroSAT", "EuroSAT (RGB)", "eurosat", _train_test("none")),
    "food101": _Spec("Food101", "Food-101", "food-101", _train_test("split")),
    "stanford-cars": _Spec("StanfordCars", "Stanford Cars", "stanford_cars", _train_test("split")),
    "fgvc-aircraft": _Spec("FGVCAircraft", "FGVC Aircraft (variants)", "fgvc-aircraft-2013b",
                           _train_test("split", "trainval")),
    "caltech101": _Spec("Caltech101", "Caltech-101", "caltech101", _train_test("none")),
    "gtsrb": _Spec("GTSRB", "German Traffic Signs", "gtsrb", _train_test("split")),
}


class TorchvisionParams(Params):
    root: str | None = Field(None, description="folder that holds the dataset's files (torchvision's layout); "
                                               "default <cache>/datasets")
    download: bool = Field(False, description="let torchvision download missing files (needs network)")
    size: int | None = Field(None, ge=8, le=1024, description="resize the shorter side to this and centre-crop "
                                                              "a square; required when image sizes differ")
    max_per_split: int | None = Field(None, ge=1, description="keep at most this many images per split "
                                                              "(a fixed random subset; for quick studies)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="test share carved from the data where the "
                                                              "dataset has no test split (eurosat, caltech101)")
    split_seed: int = Field(0, description="seed of carved splits and of the max_per_split subset")
    stream: Stream = Field("auto", description=STREAM_HELP + " (datasets of image files only)")


# ---------------------------------------------------------------- environment checks
# (parameter, problem) pairs for data that is not where the params say, found before
# any run starts (`ftbench validate`, the start of `ftbench run`).


def check_imagefolder(params: ImageFolderParams) -> list[tuple[str, str]]:
    root = Path(params.root).expanduser()
    if not root.is_dir():
        return [("root", f"data folder {root.resolve()} does not exist; set `root:` to a folder of class "
                         "folders (`ftbench list datasets imagefolder` shows the layouts)")]
    wanted = [params.train_domain, *(params.test_domains or ())] if params.train_domain else []
    absent = [d for d in wanted if not (root / d).is_dir()]
    if absent:
        domains = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        return [("train_domain" if params.train_domain in absent else "test_domains",
                 f"domain folder(s) {absent} not in {root.resolve()}; its folders are {domains}")]
    return []


class CheckTorchvision:
    """The files of one torchvision dataset are under `root` (or it may download them)."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, params: TorchvisionParams) -> list[tuple[str, str]]:
        from ftbench.cache import cache_dir

        if params.download:
            return []
        spec = SPECS[self.name]
        root = Path(params.root).expanduser() if params.root else cache_dir() / "datasets"
        folder = root / spec.folder if spec.folder != "." else root
        if folder.exists():
            return []
        return [("root", f"{spec.title} files not found: {folder.resolve()} does not exist; pass "
                         "`download: true` (needs network) or set `root:` to the folder that holds them")]
