"""The contracts between the core and its plugins.

A plugin registers `Component`s. What a component's factory returns depends on its kind:

| kind     | factory(params, **kw) returns                               |
|----------|-------------------------------------------------------------|
| backbone | `Backbone`   (kw: num_classes, seed)                        |
| dataset  | `TaskData`   (kw: seed)                                     |
| strategy | `Strategy`                                                  |
| executor | `Executor`                                                  |
| reporter | a callable(report: dict) -> str                             |
| logger   | an object with lifecycle `@hookimpl` methods (see hookspecs) |

The core knows these shapes, never a backbone, dataset or strategy by name.

This module imports no torch at module level: `ftbench list` and `ftbench validate`
read components and their parameter schemas without it (torch takes seconds to
import). Plugins keep the same rule by registering `lazy("module:attr")` factories.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ftbench.driver.worker import Payload

KINDS = ("backbone", "dataset", "strategy", "executor", "reporter", "logger")


class Params(BaseModel):
    """Base of every component's parameter schema: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    """A component that takes no parameters."""


class lazy:  # noqa: N801  (reads as a function at the call site: lazy("pkg.mod:make"))
    """A factory imported on first call, so registering a component costs no import
    of what it builds with (torch, timm): `Component("full", lazy("pkg.full:Full"), ...)`."""

    def __init__(self, target: str):
        self.target = target
        self._resolved: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        if self._resolved is None:
            module, _, attr = self.target.partition(":")
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._resolved = obj
        return self._resolved

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]  (the factory's, imported on demand)
        return self.resolve().__doc__

    def __reduce__(self):  # pickled by name (process pools), never with the resolved object
        return (lazy, (self.target,))

    def __repr__(self) -> str:
        return f"lazy({self.target!r})"


@dataclass(frozen=True)
class Component:
    """One named thing a plugin provides.

    `params` is a pydantic model: its fields, types, defaults and validators are the
    component's documented parameters (`ftbench list` prints them).
    """

    name: str
    factory: Callable[..., Any]
    params: type[Params] = NoParams
    description: str = ""
    provider: str = ""  # filled in by the plugin manager: which plugin registered it
    notes: str = ""  # longer help `ftbench list KIND NAME` prints (a dataset's folder layout)
    # Environment check, run by `ftbench validate` and before `ftbench run` starts: given
    # validated params, (parameter name, problem) pairs for what is missing (a data
    # folder, a weights file) found without loading anything; keep it torch-free.
    check: Callable[[Any], list[tuple[str, str]]] | None = None

    def summary(self) -> str:
        """The first line of the description, or of the factory's docstring."""
        doc = None if isinstance(self.factory, lazy) else self.factory.__doc__
        text = self.description or (doc or "")
        return text.strip().splitlines()[0] if text.strip() else ""


# ---------------------------------------------------------------- data


class ImageSource(Protocol):
    """Where streamed images come from: `source[i]` decodes image i as uint8 [C, H, W].
    It must be picklable (DataLoader workers may be spawned processes)."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> torch.Tensor: ...


class StreamedImages:
    """Images too large to hold in memory: the items `index` of an `ImageSource`,
    each decoded when a batch needs it (by DataLoader workers while training).
    Every image has the shape `chw`. Indexing with an index tensor or a boolean
    mask gives another view of the same source, as a tensor's would."""

    ndim = 4

    def __init__(self, source: ImageSource, chw: tuple[int, int, int], index: torch.Tensor | None = None):
        import torch

        self.source, self.chw = source, tuple(int(v) for v in chw)
        self.index = torch.arange(len(source)) if index is None else torch.as_tensor(index, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def dtype(self) -> torch.dtype:
        import torch

        return torch.uint8

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), *self.chw)

    def __getitem__(self, key: torch.Tensor | slice) -> "StreamedImages":
        if isinstance(key, int):
            raise TypeError("use load(i) for one image; indexing selects a view")
        return StreamedImages(self.source, self.chw, self.index[key])

    def load(self, i: int) -> torch.Tensor:
        """Image i of this view, decoded, uint8 [C, H, W]."""
        image = self.source[int(self.index[i])]
        if image.dtype != self.dtype or tuple(image.shape) != self.chw:
            raise ValueError(f"streamed image {int(self.index[i])} is {image.dtype} {tuple(image.shape)}, "
                             f"expected uint8 {self.chw}: a streamed dataset needs one image size "
                             "(set `size:` in its params)")
        return image

    def materialize(self) -> torch.Tensor:
        """Every image decoded into one uint8 [N, C, H, W] tensor (for small views)."""
        import torch

        out = torch.empty(self.shape, dtype=torch.uint8)
        for i in range(len(self)):
            out[i] = self.load(i)
        return out

    def __repr__(self) -> str:
        return f"StreamedImages({type(self.source).__name__}, n={len(self)}, chw={self.chw})"


@dataclass
class ImageSet:
    """Images with int64 labels [N]. `images` is uint8 [N, C, H, W] held in memory
    or, for datasets too large for memory, `StreamedImages` decoded batch by batch."""

    images: torch.Tensor | StreamedImages
    labels: torch.Tensor

    def __post_init__(self) -> None:
        import torch

        if not isinstance(self.images, StreamedImages) and (self.images.dtype != torch.uint8
                                                              or self.images.ndim != 4):
            raise ValueError(f"images must be uint8 [N,C,H,W], got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def streamed(self) -> bool:
        return isinstance(self.images, StreamedImages)

    def subset(self, index: torch.Tensor) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index])


@dataclass
class TaskData:
    """A classification task: class names and splits. `val` may be None (the core
    carves one from train, seeded and stratified). `shifted` holds extra test sets
    the dataset itself provides (other domains), keyed by a short name."""

    classes: list[str]
    train: ImageSet
    test: ImageSet
    val: ImageSet | None = None
    shifted: dict[str, ImageSet] = field(default_factory=dict)


class UnlabelledData:
    """Unlabelled images of the target domain a strategy adapts to: the training
    images of the shifted set the suite names under `adapt:` (never its test
    images), without labels. `source` says which set ("domain:<name>" or
    "corruption:<name>@<severity>"). Images are uint8, already fitted to the model;
    the methods hand out normalised float batches on the model's device."""

    def __init__(self, source: str, images: torch.Tensor | StreamedImages, prep: Any, batch_size: int, seed: int):
        import torch

        self.source, self.images, self.prep, self.batch_size = source, images, prep, batch_size
        self._generator = torch.Generator().manual_seed(seed + 104729)  # apart from the labelled data order
        self._order: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def _take(self, index: torch.Tensor) -> torch.Tensor:
        batch = self.images[index]
        return self.prep(batch.materialize() if isinstance(batch, StreamedImages) else batch)

    def next_batch(self) -> torch.Tensor:
        """The next batch of a seeded endless shuffle, one epoch after another."""
        import torch

        if not self._order:
            self._order = list(torch.randperm(len(self), generator=self._generator).split(self.batch_size))
        return self._take(self._order.pop(0))

    def in_order(self, max_images: int | None = None) -> Iterator[torch.Tensor]:
        """Every image once (the first `max_images`), in order, in batches."""
        import torch

        n = len(self) if max_images is None else min(len(self), max_images)
        for start in range(0, n, self.batch_size):
            yield self._take(torch.arange(start, min(n, start + self.batch_size)))


# ---------------------------------------------------------------- backbones


@dataclass
class LayerGroup:
    """A depth-ordered slice of a model: its name and the names of its parameters."""

    name: str
    params: list[str]


@dataclass
class Backbone:
    """A model ready for the target task, and what it knew before.

    `model` is a timm-style model whose classifier is already the target head
    (`forward_features`, `forward_head(x, pre_logits=True)` and `get_classifier()`).
    `groups` are depth-ordered: stem first, head last; the head group is always last.
    `source_head` maps pre-logits features to the source classes; `source_dataset`
    is (dataset name, params) of the task it was pretrained on, so the runner can
    measure forgetting. `pretrained` is False for a randomly initialised model.
    """

    model: nn.Module
    data_config: dict[str, Any]  # input_size (C,H,W), mean, std
    groups: list[LayerGroup]
    pretrained: bool = True
    source_head: nn.Module | None = None
    source_dataset: tuple[str, dict[str, Any]] | None = None
    source_classes: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # recorded in the run's record

    @property
    def head_params(self) -> list[str]:
        return self.groups[-1].params


# ---------------------------------------------------------------- strategies


@dataclass
class ParamGroup:
    """Parameters that share a learning-rate multiplier (1.0 = the run's lr)."""

    params: list[str]
    lr_scale: float = 1.0
    name: str = ""


@dataclass
class TrainState:
    """What a strategy may look at while training runs."""

    progress: float  # fraction of the budget used, in [0, 1]
    epoch: int  # epochs completed
    step: int  # optimizer steps taken


class Strategy:
    """How fine-tuning happens. Subclass it and override what your method changes.

    The core calls, in order: `setup` once (the model has the target head and the
    pretrained weights), then `on_progress` at every epoch start and at least every
    1/20 of the budget (never mid-step), `schedule_progress` and `penalty` on
    every step, and `eval_models` once at the end. Parameters that never appear in
    the groups `setup` returns never train; the core checks that frozen ones stay
    bitwise unchanged.

    A strategy that adapts to an unlabelled target domain sets `wants_unlabelled`;
    the core then calls `use_unlabelled` before `setup` with the images the suite's
    `adapt:` names (a run without `adapt:` fails with a message saying so). A
    strategy that fits its head in closed form on frozen features sets
    `solves_head`: the core computes the features once and calls `solve_head`
    instead of running the training loop.
    """

    wants_unlabelled: bool = False
    solves_head: bool = False

    def use_unlabelled(self, data: UnlabelledData) -> None:
        """Keep the unlabelled target-domain images (called before `setup`)."""

    def solve_head(self, model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                   val: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        """Fit the head from (features, labels) of the training split, choosing
        hyperparameters on `val`'s (None when there is no val split). Called once,
        after `setup`, when `solves_head` is set."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """What the strategy chose while it ran (a regularisation strength picked on
        val ...), recorded in the run's metrics under "strategy"."""
        return {}

    def setup(self, model: nn.Module, backbone: Backbone) -> list[ParamGroup]:
        """Set `requires_grad` and return the groups of parameters that may train."""
        return [ParamGroup([n for n, _ in model.named_parameters()])]

    def on_progress(self, model: nn.Module, state: TrainState) -> None:
        """Change what trains as the budget is used (gradual unfreezing, LP then FT):
        called at every epoch start and at least every 1/20 of the budget."""

    def schedule_progress(self, progress: float) -> float:
        """Where the run's learning-rate schedule stands when `progress` of the budget
        is used. The default follows the budget; a strategy whose phases each get a
        whole schedule (LP-FT's fine-tuning phase restarts it) maps each phase onto [0, 1]."""
        return progress

    def penalty(self, model: nn.Module, images: torch.Tensor, logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor | None:
        """An extra loss term added to the task loss (L2-SP, LwF), or None.
        `images` is None when the core trains the head on cached features."""
        return None

    def eval_models(self, model: nn.Module) -> dict[str, nn.Module]:
        """Extra models to evaluate besides the trained one, keyed by a label
        (WiSE-FT's mixing coefficients). The trained model is always evaluated."""
        return {}

    def final_model(self, model: nn.Module) -> nn.Module:
        """The model to evaluate (LoRA merges its adapters here)."""
        return model


# ---------------------------------------------------------------- executors


class Executor(Protocol):
    """Runs a list of payloads (`ftbench.driver.worker.Payload`: a run and its
    absolute results folder, picklable). It calls `run_one(payload)` for each,
    wherever it likes (`run_one` is picklable and writes the record itself), and
    yields each record `run_one` returned as it completes; for a run whose worker
    died, it yields `ftbench.driver.worker.failed_record(payload, why)`. An optional
    `close()` is called once the suite is done. docs/architecture.md, "An executor"."""

    def map(self, run_one: Callable[[Payload], dict], payloads: list[Payload]) -> Iterable[dict]: ...
