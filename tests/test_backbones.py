"""The timm backbone: weights from files, checkpoints and (simulated) hub, heads,
seeds, data configs, layer groups and the errors users see."""

from __future__ import annotations

import pytest
import timm
import torch
from pydantic import ValidationError
from safetensors.torch import save_file
from torch import nn

import ftbench_timm
from ftbench.engine import checkpoints
from ftbench.errors import BackboneError
from ftbench_timm import TimmParams, describe_groups, layer_groups, make_timm

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def source_model() -> nn.Module:
    torch.manual_seed(1)
    return timm.create_model("test_resnet", num_classes=7).eval()


def _make(num_classes: int = 3, seed: int = 0, **params):
    return make_timm(TimmParams(**params), num_classes=num_classes, seed=seed)


def _all_params(model: nn.Module) -> list[str]:
    return [n for n, _ in model.named_parameters()]


# ---------------------------------------------------------------- weights from files


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_weights_file_round_trip(tmp_path, source_model, suffix):
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file(source_model.state_dict(), str(path))
    else:
        torch.save(source_model.state_dict(), path)
    backbone = _make(model="test_resnet", pretrained=str(path), num_classes=3)
    model = backbone.model.eval()
    assert torch.equal(model.forward_features(X), source_model.forward_features(X))
    # the kept source head on the new model's pre-logits reproduces the source logits
    pre_logits = model.forward_head(model.forward_features(X), pre_logits=True)
    assert torch.allclose(backbone.source_head(pre_logits), source_model(X), atol=1e-6)
    assert model(X).shape == (2, 3) and backbone.pretrained
    assert backbone.source_classes == [str(i) for i in range(7)]
    assert backbone.info == {"model": "test_resnet", "pretrained": str(path), "source": str(path.resolve()),
                             "source_dataset": None}
    assert backbone.data_config["input_size"] == (3, 160, 160)  # timm's config for the architecture


def test_source_names_and_dataset_from_params(tmp_path, source_model):
    path = tmp_path / "w.safetensors"
    save_file(source_model.state_dict(), str(path))
    backbone = _make(model="test_resnet", pretrained=str(path), input_size=48,
                     source_classes=list("abcdefg"), source_dataset={"name": "glyphs", "params": {"n_train": 10}})
    assert backbone.source_classes == list("abcdefg")
    assert backbone.source_dataset == ("glyphs", {"n_train": 10})
    assert backbone.data_config["input_size"] == (3, 48, 48)
    with pytest.raises(BackboneError, match="names 2 classes but the weights' head has 7 outputs"):
        _make(model="test_resnet", pretrained=str(path), source_classes=["a", "b"])


def test_missing_weights_file_lists_alternatives(tmp_path):
    with pytest.raises(BackboneError) as info:
        _make(model="test_resnet", pretrained=str(tmp_path / "nope.safetensors"))
    message = str(info.value)
    assert "nope.safetensors not found" in message
    assert all(alt in message for alt in ("pretrained: hub", "pretrained: none", "ftbench:<key>"))


def test_weights_with_wrong_keys_say_which(tmp_path, source_model):
    state = dict(source_model.state_dict())
    state["extra.weight"] = state.pop("layer1.0.conv1.weight")
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    with pytest.raises(BackboneError, match=r"missing 1 keys, e.g. \['layer1.0.conv1.weight'\].*"
                                            r"unexpected 1 keys, e.g. \['extra.weight'\]"):
        _make(model="test_resnet", pretrained=str(path))


def test_weights_of_another_architecture(tmp_path, source_model):
    path = tmp_path / "w.pth"
    torch.save(source_model.state_dict(), path)
    with pytest.raises(BackboneError, match="does not (fit|match) the model"):
        _make(model="test_efficientnet", pretrained=str(path))


def test_unreadable_weights_file(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(BackboneError, match="cannot read weights file"):
        _make(model="test_resnet", pretrained=str(path))


# ---------------------------------------------------------------- ftbench checkpoints


def _save_checkpoint(source_model: nn.Module, model_name: str = "test_resnet") -> str:
    # the shape of ftbench.suite.pretrain_config
    meta = {"config": {"backbone": {"name": "timm", "params": {"model": model_name, "pretrained": "none"}},
                       "dataset": {"name": "glyphs", "params": {"n_train": 70}}},
            "classes": list("ABCDEFG"), "metrics": {"acc": 99.0},
            "data_config": {"input_size": [3, 32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}
    checkpoints.save_checkpoint("abc123", source_model.state_dict(), meta)
    return "abc123"


def test_ftbench_checkpoint(source_model):
    key = _save_checkpoint(source_model)
    backbone = _make(model="test_resnet", pretrained=f"ftbench:{key}", num_classes=4)
    assert torch.equal(backbone.model.eval().forward_features(X), source_model.forward_features(X))
    assert backbone.source_classes == list("ABCDEFG")
    assert backbone.source_dataset == ("glyphs", {"n_train": 70})
    assert backbone.data_config["input_size"] == (3, 32, 32) and backbone.data_config["std"] == (0.25,) * 3
    assert backbone.info["source"] == f"ftbench:{key}" and backbone.info["source_dataset"] == "glyphs"


def test_damaged_or_missing_checkpoint_says_to_rebuild(source_model):
    with pytest.raises(BackboneError, match=r"no pretrained checkpoint 'ftbench:abc123'.*ftbench pretrain"):
        _make(model="test_resnet", pretrained="ftbench:abc123")
    key = _save_checkpoint(source_model)
    weights = checkpoints.checkpoint_dir(key) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BackboneError, match=r"'ftbench:abc123' is damaged.*rerun `ftbench pretrain`"):
        _make(model="test_resnet", pretrained=f"ftbench:{key}")


def test_checkpoint_of_another_model(source_model):
    key = _save_checkpoint(source_model)
    with pytest.raises(BackboneError, match="holds a 'test_resnet', not a 'test_efficientnet'"):
        _make(model="test_efficientnet", pretrained=f"ftbench:{key}")


# ---------------------------------------------------------------- hub (no network in tests)


def test_hub_offline_names_the_model_and_the_alternatives(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(BackboneError) as info:
        _make(model="test_resnet", pretrained="hub")
    message = str(info.value)
    assert "'test_resnet'" in message and "couldn't connect" in message
    assert "model.safetensors" in message and "pretrained: none" in message and "ftbench pretrain" in message


def test_hub_imagenet_model_gets_imagenet_class_names(monkeypatch):
    real = timm.create_model
    monkeypatch.setattr(timm, "create_model", lambda name, pretrained, **kw: real(name, pretrained=False, **kw))
    backbone = _make(model="test_resnet", pretrained="hub", num_classes=5)
    assert len(backbone.source_classes) == 1000 and backbone.source_classes[0] == "n01440764"
    assert backbone.source_head.out_features == 1000 and backbone.model.num_classes == 5


# ---------------------------------------------------------------- random init, seeds, params


def test_random_init_has_no_source_and_follows_the_seed():
    a = _make(model="test_resnet", pretrained="none", seed=3, input_size=32)
    b = _make(model="test_resnet", pretrained="none", seed=3, input_size=32)
    c = _make(model="test_resnet", pretrained="none", seed=4, input_size=32)
    assert not a.pretrained and a.source_head is None and a.source_classes is None and a.source_dataset is None
    assert a.data_config["input_size"] == (3, 32, 32)
    assert torch.equal(a.model.layer1[0].conv1.weight, b.model.layer1[0].conv1.weight)
    assert not torch.equal(a.model.layer1[0].conv1.weight, c.model.layer1[0].conv1.weight)


def test_new_head_depends_on_the_seed_only(tmp_path, source_model):
    path = tmp_path / "w.safetensors"
    save_file(source_model.state_dict(), str(path))
    torch.manual_seed(99)  # global RNG state before the call must not matter
    a = _make(model="test_resnet", pretrained=str(path), seed=5)
    torch.rand(10)
    b = _make(model="test_resnet", pretrained=str(path), seed=5)
    c = _make(model="test_resnet", pretrained=str(path), seed=6)
    assert torch.equal(a.model.fc.weight, b.model.fc.weight)
    assert not torch.equal(a.model.fc.weight, c.model.fc.weight)


def test_vit_input_size_resizes_the_model():
    backbone = _make(model="test_vit", pretrained="none", input_size=32)
    assert backbone.model(X).shape == (2, 3)


def test_vit_checkpoint_is_rebuilt_at_its_trained_size():
    torch.manual_seed(0)
    vit = timm.create_model("test_vit", img_size=32, num_classes=7).eval()
    key = _save_checkpoint(vit, "test_vit")
    backbone = _make(model="test_vit", pretrained=f"ftbench:{key}")
    assert torch.equal(backbone.model.eval().forward_features(X), vit.forward_features(X))


def test_unknown_model_suggests_names():
    with pytest.raises(ValidationError, match="unknown timm model 'test_resnt'; did you mean 'test_resnet'"):
        TimmParams(model="test_resnt", pretrained="none")


@pytest.mark.parametrize("value", ["imagenet", "weights.bin", "ftbench:"])
def test_pretrained_value_is_validated(value):
    with pytest.raises(ValidationError, match="pretrained must be 'none', 'hub', 'ftbench:<key>'"):
        TimmParams(model="test_resnet", pretrained=value)


def test_plugin_registers_timm():
    (component,) = ftbench_timm.ftbench_register_backbones()
    assert component.name == "timm" and component.params is TimmParams


# ---------------------------------------------------------------- layer groups


def _check_groups(model: nn.Module, groups) -> None:
    flat = [p for g in groups for p in g.params]
    assert sorted(flat) == sorted(_all_params(model)) and len(flat) == len(set(flat))
    assert groups[-1].name == "head" and all(g.params for g in groups[:-1])
    assert len({g.name for g in groups}) == len(groups)


@pytest.mark.parametrize("name, first, middle", [
    ("test_resnet", "stem", ["layer1", "layer2", "layer3", "layer4"]),
    ("test_vit", "stem", [f"blocks.{i}" for i in range(6)]),
    ("test_efficientnet", "stem", [f"blocks.{i}" for i in range(5)]),
])
def test_groups_follow_depth(name, first, middle):
    backbone = _make(model=name, pretrained="none", input_size=32)
    _check_groups(backbone.model, backbone.groups)
    assert [g.name for g in backbone.groups] == [first, *middle, "head"]
    assert backbone.head_params == [n for n in _all_params(backbone.model) if n.startswith(
        {"test_resnet": "fc.", "test_vit": "head.", "test_efficientnet": "classifier."}[name])]
    counts = describe_groups(backbone)
    assert [n for n, _ in counts] == [g.name for g in backbone.groups]
    assert sum(c for _, c in counts) == sum(p.numel() for p in backbone.model.parameters())


def test_norm_before_the_classifier_is_its_own_group():
    backbone = _make(model="test_convnext", pretrained="none", input_size=32)
    _check_groups(backbone.model, backbone.groups)
    assert [g.name for g in backbone.groups][-2:] == ["neck", "head"]
    assert backbone.groups[-2].params == ["head.norm.weight", "head.norm.bias"]


class _Plain(nn.Module):
    """No group_matcher: groups fall back to top-level children in order."""

    def __init__(self):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(4))
        self.stem = nn.Conv2d(3, 4, 3)
        self.act = nn.ReLU()  # no parameters: no group
        self.body = nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4))
        self.fc = nn.Linear(4, 2)

    def get_classifier(self) -> nn.Module:
        return self.fc


def test_groups_of_a_model_without_group_matcher():
    model = _Plain()
    groups = layer_groups(model)
    _check_groups(model, groups)
    assert [(g.name, len(g.params)) for g in groups] == [("token", 1), ("stem", 2), ("body", 4), ("head", 2)]
