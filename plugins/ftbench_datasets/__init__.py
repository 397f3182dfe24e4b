"""ftbench's built-in datasets: scikit-learn digits, generated glyphs, torchvision
datasets by name and image folders (with domains). Registered through the
`ftbench` entry-point group like any third-party plugin.
"""

from __future__ import annotations

import importlib

import ftbench
from ftbench.components import Component, lazy

from .params import (IMAGEFOLDER_LAYOUT, SPECS, CheckTorchvision, DigitsParams, GlyphsParams, ImageFolderParams,
                     TorchvisionParams, check_imagefolder)

__all__ = ["DigitsParams", "GlyphsParams", "ImageFolderParams", "TorchvisionParams", "make_digits",
           "make_glyphs", "make_imagefolder", "make_torchvision"]

#: The loaders and their modules, imported when first used (they import torch).
_LOADERS = {"make_digits": "digits", "make_glyphs": "glyphs", "make_imagefolder": "imagefolder",
            "make_torchvision": "torchvision_sets"}


def __getattr__(name: str):
    if name in _LOADERS:
        return getattr(importlib.import_module(f"{__name__}.{_LOADERS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Torchvision:
    """The loader of one torchvision dataset, by name (a picklable, lazy factory)."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, params: TorchvisionParams, *, seed: int):
        from .torchvision_sets import make_torchvision

        return make_torchvision(self.name, params, seed=seed)


def _lazy(loader: str) -> lazy:
    return lazy(f"{__name__}.{_LOADERS[loader]}:{loader}")


@ftbench.hookimpl
def ftbench_register_datasets() -> list[Component]:
    components = [
        Component("digits", _lazy("make_digits"), DigitsParams,
                  "scikit-learn's handwritten digits: 1797 real 8x8 grey images, bundled, offline"),
        Component("glyphs", _lazy("make_glyphs"), GlyphsParams,
                  "generated character images (Pillow's font) with controllable rotation, scale, "
                  "stroke, noise, colour and background; offline"),
        Component("imagefolder", _lazy("make_imagefolder"), ImageFolderParams,
                  "images in class folders: one tree, train/ val/ test/ trees, or one tree per domain "
                  "(PACS / Office-Home layout)", notes=IMAGEFOLDER_LAYOUT, check=check_imagefolder),
    ]
    for name, spec in SPECS.items():
        components.append(Component(name, _Torchvision(name), TorchvisionParams,
                                    f"{spec.title} via torchvision.datasets.{spec.cls}; files under `root`, "
                                    "or `download: true`",
                                    notes=f"Files: <root>/{spec.folder} as torchvision.datasets.{spec.cls} lays "
                                          "them out (<root> defaults to <cache>/datasets).",
                                    check=CheckTorchvision(name)))
    return components
