"""The streaming data path: datasets decoded batch by batch by DataLoader workers
give the same batches, the same training and the same records as in memory."""

import json
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ftbench.cli import cli
from ftbench.components import ImageSet, Strategy, StreamedImages
from ftbench.config import BudgetConfig, TrainConfig
from ftbench.engine.corruptions import corrupt, corrupt_images
from ftbench.engine.data import Feed, Preprocess, batches, in_order
from ftbench.errors import DataError, UserInputError
from ftbench.engine.evaluate import predict_logits
from ftbench.results.records import load_records
from ftbench.testing import toy_backbone, toy_images
from ftbench.engine.training import fit
from ftbench_datasets import imagefolder, torchvision_sets
from ftbench_datasets.imagefolder import ImageFolderParams, make_imagefolder
from ftbench_datasets.torchvision_sets import TorchvisionParams, make_torchvision
from tests.test_datasets import _eurosat_root

CPU = torch.device("cpu")


class TensorImages:
    """An image source over a tensor, counting decodes (picklable for workers)."""

    def __init__(self, images: torch.Tensor):
        self.images, self.decoded = images, 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        self.decoded += 1
        return self.images[i].clone()


def _streamed(images: torch.Tensor) -> StreamedImages:
    return StreamedImages(TensorImages(images), tuple(images.shape[1:]))


@pytest.fixture(autouse=True)
def _fresh_loaders():
    for loader in (torchvision_sets._load, imagefolder._load):
        loader.cache_clear()
    yield
    for loader in (torchvision_sets._load, imagefolder._load):
        loader.cache_clear()


# ---------------------------------------------------------------- views and feeds


def test_streamed_views_index_like_tensors():
    images = torch.arange(6 * 3 * 2 * 2, dtype=torch.int64).remainder(256).to(torch.uint8).view(6, 3, 2, 2)
    s = _streamed(images)
    assert len(s) == 6 and s.shape == (6, 3, 2, 2)
    view = s[torch.tensor([4, 1, 5])]
    assert torch.equal(view.materialize(), images[[4, 1, 5]])
    mask = torch.tensor([True, False, True, False, False, True])
    assert torch.equal(s[mask].materialize(), images[mask])
    assert torch.equal(view[torch.tensor([True, False, True])].materialize(), images[[4, 5]])
    subset = ImageSet(s, torch.arange(6)).subset(torch.tensor([2, 3]))
    assert subset.streamed and torch.equal(subset.images.materialize(), images[[2, 3]])
    with pytest.raises(TypeError, match="load"):
        s[0]


def test_a_streamed_image_of_another_size_is_a_clear_error():
    s = StreamedImages(TensorImages(torch.zeros(2, 3, 4, 4, dtype=torch.uint8)), (3, 8, 8))
    with pytest.raises(ValueError, match=r"expected uint8 \(3, 8, 8\).*set `size:`"):
        s.load(0)


@pytest.mark.parametrize("workers", [0, 2])
def test_feed_matches_memory_whichever_way_the_caller_switches(workers):
    images = toy_images(10, 3, 8, seed=0).images  # 30 images
    order = list(batches(len(images), 4, torch.Generator().manual_seed(3))) * 3
    # want images (True) or only the items (False), switching back and forth
    pattern = [True, True, False, True, False, False, True, True, True, False, True] * 3
    pattern = pattern[:len(order)]
    memory = Feed(images, iter(order), lambda i: i, CPU)
    streamed = Feed(_streamed(images), iter(order), lambda i: i, CPU, workers)
    try:
        for want in pattern:
            (a, x), (b, y) = memory.next(want), streamed.next(want)
            assert torch.equal(a, b)
            assert (x is None) == (y is None) == (not want)
            if want:
                assert torch.equal(x, y)
        with pytest.raises(StopIteration):
            streamed.next()
    finally:
        streamed.close()


@pytest.mark.skipif(sys.platform != "linux", reason="fork is used on Linux only")
def test_loader_workers_fork_even_inside_spawned_processes():
    feed = Feed(_streamed(toy_images(4, 3, 8, seed=0).images), [torch.arange(4)], lambda i: i, CPU, workers=2)
    assert feed._loader().multiprocessing_context.get_start_method() == "fork"


def test_in_order_covers_every_image_once():
    images = toy_images(7, 3, 8, seed=1).images
    got = torch.cat(list(in_order(_streamed(images), 5, CPU, workers=2)))
    assert torch.equal(got, images)


# ---------------------------------------------------------------- training and evaluation


class _LinearProbeThenAll(Strategy):
    """Head only (cached features) for the first half, then everything: the run
    switches from feature batches to image batches mid-way."""

    def setup(self, model, backbone):
        head = set(backbone.head_params)
        for name, p in model.named_parameters():
            p.requires_grad = name in head
        return [type(self).group(model)]

    @staticmethod
    def group(model):
        from ftbench.components import ParamGroup
        return ParamGroup([n for n, _ in model.named_parameters()])

    def on_progress(self, model, state):
        if state.progress >= 0.5:
            for p in model.parameters():
                p.requires_grad = True


def _fit(images, labels, strategy, cfg, workers=0):
    backbone = toy_backbone(num_classes=3, seed=0)
    prep = Preprocess((3, 16, 16), (0.5,) * 3, (0.25,) * 3, CPU, workers=workers)
    train = ImageSet(prep.fit_images(images), labels)
    torch.manual_seed(0)
    result = fit(backbone.model, backbone, strategy, train, cfg=cfg, budget_cfg=BudgetConfig(steps=12),
                 prep=prep, seed=4)
    logits = predict_logits(backbone.model, prep.fit_images(images), prep, 7)
    return backbone.model.state_dict(), result, logits


@pytest.mark.parametrize("strategy, cfg, workers", [
    (Strategy(), TrainConfig(batch_size=8, augment="crop-flip"), 0),
    (_LinearProbeThenAll(), TrainConfig(batch_size=8, cache_features=True), 2),
])
def test_training_on_streamed_images_equals_training_in_memory(strategy, cfg, workers):
    data = toy_images(8, 3, 12, seed=2)  # 12 px images: the model's 16 px needs a resize
    a_state, a_result, a_logits = _fit(data.images, data.labels, strategy, cfg)
    b_state, b_result, b_logits = _fit(_streamed(data.images), data.labels, strategy, cfg, workers)
    assert a_result.steps == b_result.steps == 12 and a_result.samples == b_result.samples
    for name, value in a_state.items():
        assert torch.equal(value, b_state[name]), name
    assert torch.equal(a_logits, b_logits)


def test_head_only_training_decodes_the_images_once():
    data = toy_images(8, 3, 16, seed=2)
    source = TensorImages(data.images)
    streamed = StreamedImages(source, (3, 16, 16))
    cfg = TrainConfig(batch_size=8, cache_features=True)

    class Probe(_LinearProbeThenAll):
        def on_progress(self, model, state):
            pass

    _fit(streamed, data.labels, Probe(), cfg)
    # features once (24) + the final evaluation (24); 12 steps of head training decode nothing
    assert source.decoded == 48


def test_corrupting_a_streamed_set_equals_corrupting_it_in_memory():
    images = toy_images(6, 3, 16, seed=3).images
    for name in ("gaussian_noise", "rotate", "jpeg", "gaussian_blur"):
        streamed = corrupt_images(_streamed(images), name, 4, seed=1)
        assert isinstance(streamed, StreamedImages)
        assert torch.equal(streamed.materialize(), corrupt(images, name, 4, seed=1)), name
    # and a subset corrupted on its own keeps each image's corruption when told where it starts
    assert torch.equal(corrupt(images[5:9], "shot_noise", 2, first=5), corrupt(images, "shot_noise", 2)[5:9])


# ---------------------------------------------------------------- dataset plugins


def _write_domain(root, domain, classes, n=6, size=(20, 14)):
    rng = np.random.default_rng(len(domain))
    for c, cls in enumerate(classes):
        folder = root / domain / cls
        folder.mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 80, (size[1], size[0], 3), dtype=np.uint8)
            pixels[:, :, c] += 150
            Image.fromarray(pixels).save(folder / f"{i}.png")


def test_imagefolder_streams_when_told_or_when_too_large(tmp_path, monkeypatch):
    _write_domain(tmp_path, "photo", ["cat", "dog"])
    memory = make_imagefolder(ImageFolderParams(root=str(tmp_path / "photo"), size=8), seed=0)
    assert not memory.train.streamed
    streamed = make_imagefolder(ImageFolderParams(root=str(tmp_path / "photo"), size=8, stream=True), seed=0)
    assert streamed.train.streamed and streamed.test.streamed
    assert torch.equal(streamed.train.images.materialize(), memory.train.images)
    assert torch.equal(streamed.train.labels, memory.train.labels)
    imagefolder._load.cache_clear()
    monkeypatch.setenv("FTBENCH_IN_MEMORY_GB", str(100 / 1024**3))  # 100 bytes: nothing fits
    auto = make_imagefolder(ImageFolderParams(root=str(tmp_path / "photo"), size=8), seed=0)
    assert auto.train.streamed


def test_torchvision_file_datasets_stream_and_array_datasets_say_they_cannot(tmp_path, monkeypatch):
    _eurosat_root(tmp_path, {"Forest": (12, 12), "River": (20, 16)})
    with pytest.raises(DataError, match=r"'eurosat': stream: true.*streaming needs one image size.*`size:`"):
        make_torchvision("eurosat", TorchvisionParams(root=str(tmp_path), stream=True), seed=0)
    monkeypatch.setenv("FTBENCH_IN_MEMORY_GB", str(100 / 1024**3))
    with pytest.raises(DataError, match=r"'eurosat'.*more than the in-memory limit.*set `size:`"):
        make_torchvision("eurosat", TorchvisionParams(root=str(tmp_path)), seed=0)
    task = make_torchvision("eurosat", TorchvisionParams(root=str(tmp_path), size=8), seed=0)
    assert task.train.streamed and task.train.images.materialize().shape == (8, 3, 8, 8)
    with pytest.raises(DataError, match=r"'cifar10'.*in memory as one array.*remove `stream: true`"):
        torchvision_sets._split("cifar10", torchvision_sets.SPECS["cifar10"],
                                type("DS", (), {"data": np.zeros((2, 4, 4, 3), np.uint8)})(),
                                np.zeros(2, np.int64), np.arange(2), TorchvisionParams(stream=True))


def test_bad_memory_limit_is_named(monkeypatch, tmp_path):
    _write_domain(tmp_path, "photo", ["cat", "dog"], n=3)
    monkeypatch.setenv("FTBENCH_IN_MEMORY_GB", "lots")
    with pytest.raises(UserInputError, match="FTBENCH_IN_MEMORY_GB='lots' is not a number"):
        make_imagefolder(ImageFolderParams(root=str(tmp_path / "photo"), size=8), seed=0)


# ---------------------------------------------------------------- end to end

SUITE = """
name: stream-{mode}
backbones: [{{name: toy-timm}}]
datasets:
  - name: imagefolder
    params: {{root: {root}, train_domain: photo, size: 12, test_fraction: 0.3, stream: {stream}}}
    shifts: {{corruptions: [gaussian_noise, rotate], severities: [3]}}
strategies: [{{name: full, train: {{augment: flip}}}}, {{name: linear-probe}}, {{name: lp-ft}}]  # cached features
data: [{{shots: 2}}, {{}}]
budget: {{steps: 10}}
train: {{batch_size: 8, lr: 0.01}}
eval: {{curve_points: 3}}
loader_workers: {workers}
executor: {executor}
"""


def _cells(folder):
    out = {}
    for r in load_records(folder):
        assert r["status"] == "ok", r["error"]
        m = r["metrics"]
        curve = [{k: v for k, v in point.items() if k != "train_seconds"} for point in m["curve"]]
        out[(r["cell"]["strategy"], r["cell"]["data"])] = (m["test"], m["shifted"], curve, r["params"])
    return out


def test_a_streamed_suite_gives_the_records_of_the_same_suite_in_memory(tmp_path):
    """Training, feature caching, corrupted and other-domain test sets: every metric
    equal whether the images are held in memory or decoded by two worker processes."""
    for domain in ("photo", "sketch"):
        _write_domain(tmp_path / "data", domain, ["cat", "dog", "owl"])
    results = {}
    pool = "{name: pool, params: {workers: 2}}"  # spawned processes whose DataLoaders fork workers
    for mode, stream, workers, executor in (("memory", "false", 0, "{name: sequential}"),
                                            ("streamed", "true", 2, "{name: sequential}"),
                                            ("pool", "true", 1, pool)):
        path = tmp_path / f"{mode}.yaml"
        path.write_text(SUITE.format(mode=mode, root=json.dumps(str(tmp_path / "data")), stream=stream,
                                     workers=workers, executor=executor))
        out = tmp_path / mode
        result = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "run", str(path), "--results", str(out),
                                          "-q"], obj={})
        assert result.exit_code == 0, result.output
        results[mode] = _cells(out)
    assert len(results["memory"]) == 6
    assert set(results["memory"]["full", "all"][1]) == {"gaussian_noise@3", "rotate@3", "sketch"}
    assert results["streamed"] == results["memory"]
    # pool workers get a share of the machine's threads, so float sums may differ in the last bits
    for cell, (test, shifted, curve, _) in results["memory"].items():
        p_test, p_shifted, p_curve, _ = results["pool"][cell]
        assert p_test["acc"] == pytest.approx(test["acc"], abs=1e-6)
        assert {k: v["acc"] for k, v in p_shifted.items()} == pytest.approx({k: v["acc"] for k, v in shifted.items()},
                                                                            abs=1e-6)
        assert [q["train_loss"] for q in p_curve] == pytest.approx([q["train_loss"] for q in curve], rel=1e-4)
    assert results["memory"]["full", "all"][0]["acc"] > 50  # it learned something (3 classes)


def test_stream_setting_is_auto_true_or_false():
    from pydantic import ValidationError

    assert ImageFolderParams(root="x", stream="true").stream is True
    assert TorchvisionParams(stream="auto").stream == "auto" and TorchvisionParams(stream=False).stream is False
    with pytest.raises(ValidationError, match="use auto, true or false, not 'maybe'"):
        ImageFolderParams(root="x", stream="maybe")
