"""A conformance kit for plugin authors: call these from your plugin's tests.

    from ftbench.testing import check_strategy
    def test_conforms():
        check_strategy(my_plugin.ftbench_register_strategies()[0])

`check_strategy`, `check_dataset` and `check_backbone` check a component of their
kind; `check_executor` checks an executor against the worker contract
(`ftbench.driver.worker`). Each check raises AssertionError with a message saying
what a component must do.
They run on a tiny timm `test_resnet` and generated data, in seconds on a CPU, on
one torch thread (a tiny model runs fastest on one, and a loaded CI runner is not
slowed further by threads competing for its cores).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
from pathlib import Path

import timm
import torch
from pydantic import Field, ValidationError

import ftbench

from ftbench.components import (Backbone, Component, ImageSet, LayerGroup, Params, Strategy, StreamedImages,
                                TaskData)

# ---------------------------------------------------------------- tiny parts


class ToyDataParams(Params):
    n_per_class: int = Field(24, ge=1, description="training images per class")
    classes: int = Field(3, ge=2, le=6, description="number of classes")
    size: int = Field(16, ge=8, description="image height and width")


def toy_images(n_per_class: int, classes: int, size: int, seed: int) -> ImageSet:
    """Class c is a bright horizontal band at height c plus noise: learnable in a few steps."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    images = torch.randint(0, 60, (len(labels), 3, size, size), generator=gen)
    band = size // classes
    for c in range(classes):
        images[labels == c, :, c * band:(c + 1) * band, :] += 180
    return ImageSet(images.clamp(0, 255).to(torch.uint8), labels)


def toy_task(params: ToyDataParams | None = None, *, seed: int = 0) -> TaskData:
    """Generated bands, one per class (a dataset component's factory)."""
    params = params or ToyDataParams()
    return TaskData(classes=[f"band{c}" for c in range(params.classes)],
                    train=toy_images(params.n_per_class, params.classes, params.size, 1),
                    test=toy_images(max(4, params.n_per_class // 2), params.classes, params.size, 2))


class ToyBackboneParams(Params):
    model: str = Field("test_resnet", description="a timm model name")
    pretrained: str = Field("none", description="only 'none': the kit never loads weights")


def toy_backbone(params: ToyBackboneParams | None = None, *, num_classes: int = 3, seed: int = 0) -> Backbone:
    """A timm test model with random weights; groups are its top-level children,
    head last (a backbone component's factory)."""
    params = params or ToyBackboneParams()
    torch.manual_seed(seed)
    model = timm.create_model(params.model, pretrained=False, num_classes=num_classes)
    head_ids = {id(p) for p in model.get_classifier().parameters()}
    groups: dict[str, list[str]] = {}
    head = []
    for name, param in model.named_parameters():
        if id(param) in head_ids:
            head.append(name)
        else:
            groups.setdefault(name.split(".")[0], []).append(name)
    return Backbone(model=model, data_config={"input_size": (3, 16, 16), "mean": (0.5,) * 3, "std": (0.5,) * 3},
                    groups=[LayerGroup(k, v) for k, v in groups.items()] + [LayerGroup("head", head)],
                    pretrained=False)


def toy_strategy(params: Params | None = None) -> Strategy:
    """Everything trains (a strategy component's factory)."""
    return Strategy()


TOY_DATASET = Component("ftbench-toy", toy_task, ToyDataParams, "Generated bands (ftbench.testing).")
TOY_BACKBONE = Component("ftbench-toy-timm", toy_backbone, ToyBackboneParams, "A timm test model (ftbench.testing).")
TOY_STRATEGY = Component("ftbench-toy-full", toy_strategy, Params, "Everything trains (ftbench.testing).")

# `--plugin ftbench.testing` (or a payload's plugins) registers the toys: the worker
# processes of `check_executor` find them by name.


@ftbench.hookimpl
def ftbench_register_backbones() -> list[Component]:
    return [TOY_BACKBONE]


@ftbench.hookimpl
def ftbench_register_datasets() -> list[Component]:
    return [TOY_DATASET]


@ftbench.hookimpl
def ftbench_register_strategies() -> list[Component]:
    return [TOY_STRATEGY]


# ---------------------------------------------------------------- checks


def _one_thread(check):
    """Run `check` on one torch thread, then restore the caller's thread count."""
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return check(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
    return wrapper


def _check_params(component: Component) -> Params:
    assert isinstance(component, Component), f"expected a Component, got {type(component).__name__}"
    assert component.name and component.name == component.name.strip(), "a component needs a name"
    assert component.summary(), f"{component.name}: give it a one-line description (or factory docstring)"
    assert issubclass(component.params, Params), f"{component.name}: params must subclass ftbench.components.Params"
    try:
        defaults = component.params()
    except ValidationError as exc:
        raise AssertionError(f"{component.name}: every parameter needs a default ({exc})") from exc
    try:
        component.params(__no_such_parameter__=1)
    except ValidationError:
        pass
    else:
        raise AssertionError(f"{component.name}: unknown parameters must be rejected (extra='forbid')")
    return defaults


def _train(component: Component, params: Params, seed: int, steps: int = 3):
    from ftbench.config import BudgetConfig, TrainConfig
    from ftbench.engine.data import Preprocess
    from ftbench.engine.training import fit

    backbone = toy_backbone(num_classes=3, seed=0)
    before = copy.deepcopy(backbone.model.state_dict())
    strategy = component.factory(params)
    assert isinstance(strategy, Strategy), f"{component.name}: the factory must return a Strategy"
    task = toy_task()
    prep = Preprocess((3, 16, 16), (0.5,) * 3, (0.5,) * 3, torch.device("cpu"))
    train = ImageSet(prep.fit_images(task.train.images), task.train.labels)
    torch.manual_seed(seed)
    result = fit(backbone.model, backbone, strategy, train, cfg=TrainConfig(batch_size=16, lr=0.01),
                 budget_cfg=BudgetConfig(steps=steps), prep=prep, seed=seed)
    return backbone, strategy, before, result


@_one_thread
def check_strategy(component: Component, params: Params | None = None) -> None:
    """A strategy validates its parameters, trains a few steps, leaves what it
    freezes bitwise unchanged, and is deterministic under a seed."""
    params = params or _check_params(component)
    backbone, strategy, before, result = _train(component, params, seed=0)
    assert result.steps == 3 and result.trainable_params > 0, f"{component.name}: trained nothing"
    trainable = {n for n, p in backbone.model.named_parameters() if p.requires_grad}
    after = backbone.model.state_dict()
    for name, value in before.items():
        if name in after and name not in trainable and after[name].dtype.is_floating_point \
                and "running" not in name and "num_batches" not in name:
            assert torch.equal(value, after[name]), f"{component.name}: frozen parameter {name} changed"
    again, _, _, _ = _train(component, params, seed=0)
    for (name, a), b in zip(backbone.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), f"{component.name}: not deterministic under a fixed seed ({name} differs)"
    _check_record("strategy", component, params)


def _decoded(images) -> torch.Tensor:
    return images.materialize() if isinstance(images, StreamedImages) else images


@_one_thread
def check_dataset(component: Component, params: Params | None = None) -> None:
    """A dataset returns uint8 NCHW images, int labels within its classes, and the
    same data for the same parameters."""
    params = params or _check_params(component)
    task = component.factory(params, seed=0)
    assert isinstance(task, TaskData), f"{component.name}: the factory must return a TaskData"
    for split_name in ("train", "test"):
        split = getattr(task, split_name)
        assert len(split) > 0, f"{component.name}: empty {split_name} split"
        assert split.labels.min() >= 0 and split.labels.max() < len(task.classes), \
            f"{component.name}: {split_name} labels outside 0..{len(task.classes) - 1}"
    again = component.factory(params, seed=0)
    assert torch.equal(_decoded(task.train.images), _decoded(again.train.images)), \
        f"{component.name}: not deterministic"
    _check_record("dataset", component, params)


@_one_thread
def check_backbone(component: Component, params: Params | None = None) -> None:
    """A backbone returns a model with the target head, depth-ordered groups that
    cover every parameter once with the head last, and a data config."""
    params = params or _check_params(component)
    backbone = component.factory(params, num_classes=3, seed=0)
    assert isinstance(backbone, Backbone), f"{component.name}: the factory must return a Backbone"
    names = [n for n, _ in backbone.model.named_parameters()]
    grouped = [n for g in backbone.groups for n in g.params]
    assert sorted(grouped) == sorted(names), f"{component.name}: groups must cover every parameter exactly once"
    head_ids = {id(p) for p in backbone.model.get_classifier().parameters()}
    head = {n for n, p in backbone.model.named_parameters() if id(p) in head_ids}
    assert set(backbone.groups[-1].params) == head, f"{component.name}: the last group must be the classifier"
    c, h, w = backbone.data_config["input_size"]
    x = torch.zeros(2, c, h, w)
    backbone.model.eval()
    assert backbone.model(x).shape == (2, 3), f"{component.name}: the head must have num_classes outputs"
    _check_record("backbone", component, params)


def _check_record(kind: str, component: Component, params: Params) -> None:
    """Run the component in a one-run suite through the real runner; the record must be ok."""
    import tempfile

    from ftbench.plugins import Registry, make_plugin_manager
    from ftbench.engine.runner import execute
    from ftbench.results.records import RECORD_FORMAT
    from ftbench.results.store import ResultsStore
    from ftbench.suite.expand import expand
    from ftbench.suite.load import parse_suite

    plugin = types.ModuleType(f"ftbench_testing_{kind}")
    extra = {"backbone": [TOY_BACKBONE], "dataset": [TOY_DATASET],
             "strategy": [TOY_STRATEGY]}
    extra[kind] = [component]  # the component under test replaces the toy of its kind
    for k, hook in (("backbone", "backbones"), ("dataset", "datasets"), ("strategy", "strategies")):
        setattr(plugin, f"ftbench_register_{hook}", ftbench.hookimpl(lambda comps=extra[k]: comps))
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(plugin)
    registry = Registry(pm)
    names = {k: comps[0].name for k, comps in extra.items()}
    suite = parse_suite(
        f"name: conformance\nbackbones: [{{name: {names['backbone']}}}]\n"
        f"datasets: [{{name: {names['dataset']}}}]\nstrategies: [{{name: {names['strategy']}}}]\n"
        f"budget: {{steps: 2}}\ntrain: {{batch_size: 16}}\nexecutor: {{name: sequential}}\nthreads: 1\n")
    spec = expand(suite)[0]
    ref = getattr(spec, kind).model_copy(update={"params": params.model_dump(mode="json")})
    spec = dataclasses.replace(spec, **{kind: ref})
    with tempfile.TemporaryDirectory() as tmp:
        record = execute(spec, registry, ResultsStore(Path(tmp)))
    assert record["format"] == RECORD_FORMAT
    assert record["status"] == "ok", f"{component.name}: the run failed: {record['error']}"
    assert record["metrics"]["test"]["acc"] is not None


@_one_thread
def check_executor(component: Component, params: Params | None = None) -> None:
    """An executor runs every payload it is given once, through the `run_one` it is
    handed, and yields one record per payload: a run another driver holds comes
    back as the worker's `claimed-elsewhere` stub, a finished run as its finished
    record, every ok record is in the payload's results folder, and one executor
    serves several `map` calls (a search's rounds). Runs two toy runs (seconds; a
    pool's worker processes each import torch first)."""
    import os
    import tempfile

    from ftbench.driver.worker import CLAIMED_ELSEWHERE, Payload, landed, run_payload
    from ftbench.plugins import Registry, current_registry, make_plugin_manager, use_registry
    from ftbench.results.store import ResultsStore
    from ftbench.suite.expand import expand
    from ftbench.suite.load import parse_suite

    params = params or _check_params(component)
    executor = component.factory(params)
    assert callable(getattr(executor, "map", None)), f"{component.name}: the factory must return an object with map()"
    registry = Registry(make_plugin_manager(load_entrypoints=False, extra=(__name__,)))
    suite = parse_suite("name: executor-conformance\nbackbones: [{name: ftbench-toy-timm}]\n"
                        "datasets: [{name: ftbench-toy}]\nstrategies: [{name: ftbench-toy-full}]\nseeds: [0, 1]\n"
                        "budget: {steps: 2}\ntrain: {batch_size: 16}\nthreads: 1\ndevice: cpu\n")
    held, free = expand(suite, registry)
    previous = current_registry()
    use_registry(registry)  # an in-process worker (run_payload) builds its runs from this one
    try:
        assert list(executor.map(run_payload, [])) == [], f"{component.name}: map([]) must yield nothing"
        with tempfile.TemporaryDirectory() as tmp:
            store = ResultsStore(Path(tmp) / "results")
            payloads = [Payload(spec, store.folder, (__name__,), workdir=os.getcwd(), driver_pid=os.getpid())
                        for spec in (held, free)]
            assert store.claim(held.id)  # as another driver would hold it
            first = _records_of(component, executor.map(run_payload, payloads), payloads)
            assert first[held.id]["status"] == CLAIMED_ELSEWHERE, \
                f"{component.name}: a run another driver holds must come back as the worker's stub, not be run"
            assert first[free.id]["status"] == "ok", f"{component.name}: the run failed: {first[free.id].get('error')}"
            assert landed(store, first[free.id]), \
                f"{component.name}: the record is not in the payload's results folder ({store.folder})"
            store.release(held.id)
            second = _records_of(component, executor.map(run_payload, payloads), payloads)
            same = ("started_at", "finished_at")
            assert [second[free.id].get(k) for k in same] == [first[free.id].get(k) for k in same] \
                and second[free.id]["timing"] == first[free.id]["timing"], \
                f"{component.name}: a finished run must come back as its record, not run again"
            assert second[held.id]["status"] == "ok" and landed(store, second[held.id]), \
                f"{component.name}: a second map() (a search's next round) must run what is left"
    finally:
        use_registry(previous)
        close = getattr(executor, "close", None)
        if close is not None:
            close()


def _records_of(component: Component, records, payloads) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for record in records:
        assert isinstance(record, dict) and "id" in record, f"{component.name}: map() must yield record dicts"
        assert record["id"] not in out, f"{component.name}: run {record['id']} came back twice"
        out[record["id"]] = record
    assert set(out) == {p.run_id for p in payloads}, f"{component.name}: map() must yield one record per payload"
    return out
