"""The built-in strategies (plugins/ftbench_strategies) trained by the core's `fit`.

A tiny timm `test_resnet` (layer groups: conv1, bn1, layer1..layer4, fc) learns a
3-class toy task of coloured squares in a few steps on a CPU.
"""

from __future__ import annotations

import copy
import re

import pydantic
import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

import ftbench.engine.training as training
import ftbench_strategies
from ftbench.components import Backbone, ImageSet, LayerGroup, Params, TrainState
from ftbench.config import BudgetConfig, TrainConfig
from ftbench.engine.data import Preprocess
from ftbench.errors import UserInputError
from ftbench.engine.evaluate import classification_metrics, predict_logits
from ftbench.plugins import Registry, make_plugin_manager
from ftbench_strategies.discriminative_lr import DiscriminativeLR, DiscriminativeLRParams
from ftbench_strategies.freeze import Freeze, FreezeParams, Surgical, SurgicalParams
from ftbench_strategies.gradual_unfreeze import GradualUnfreeze, GradualUnfreezeParams
from ftbench_strategies.l2_sp import L2SP, L2SPParams
from ftbench_strategies.linear_probe import LinearProbe
from ftbench_strategies.lora import LoRA, LoRAParams
from ftbench_strategies.lp_ft import LPFT, LPFTParams
from ftbench_strategies.lwf import LwF, LwFParams
from ftbench_strategies.scratch import Scratch, ScratchParams
from ftbench_strategies.wise_ft import WiSEFT, WiSEFTParams

CPU = torch.device("cpu")
PREP = Preprocess((3, 16, 16), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), CPU)
CFG = TrainConfig(lr=1e-2, batch_size=32, weight_decay=1e-4, schedule="constant", precision="fp32")
ORDER = ["fc", "layer4", "layer3", "layer2", "layer1", "bn1", "conv1"]  # head first


# ---------------------------------------------------------------- fixtures


def make_backbone(arch: str = "test_resnet", num_classes: int = 3, seed: int = 0) -> Backbone:
    """A Backbone whose groups are the model's top-level children with parameters, in
    order, and the classifier last (named by its module path); bare top-level
    parameters join the first group."""
    torch.manual_seed(seed)
    model = timm.create_model(arch, num_classes=num_classes)
    head = model.get_classifier()
    head_ids = {id(p) for p in head.parameters()}
    bare = [n for n, _ in model.named_parameters(recurse=False)]
    groups = []
    for name, child in model.named_children():
        params = [f"{name}.{n}" for n, p in child.named_parameters() if id(p) not in head_ids]
        if params:
            groups.append(LayerGroup(name, bare + params if not groups else params))
    head_name = next(n for n, m in model.named_modules() if m is head)  # "fc", "head.fc", ...
    groups.append(LayerGroup(head_name, [n for n, p in model.named_parameters() if id(p) in head_ids]))
    return Backbone(model=model, data_config={"input_size": (3, 16, 16), "mean": PREP.mean, "std": PREP.std},
                    groups=groups, source_head=nn.Linear(model.num_features, 5))


def toy_images(n: int, seed: int) -> ImageSet:
    """Class c: noise with a bright square in colour channel c at a random place."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.randint(0, 80, (n, 3, 16, 16), generator=gen)
    for i, c in enumerate(labels.tolist()):
        y, x = torch.randint(0, 9, (2,), generator=gen).tolist()
        images[i, c, y:y + 8, x:x + 8] += 150
    return ImageSet(images.clamp(0, 255).to(torch.uint8), labels)


TRAIN, TEST = toy_images(96, seed=1), toy_images(60, seed=2)


def train(strategy, *, steps: int = 15, cfg: TrainConfig = CFG, backbone: Backbone | None = None,
          on_epoch_end=None):
    """(backbone, FitResult, initial parameters by name) after `fit` on the toy task."""
    backbone = backbone or make_backbone()
    before = {n: p.detach().clone() for n, p in backbone.model.named_parameters()}
    torch.manual_seed(0)
    result = training.fit(backbone.model, backbone, strategy, TRAIN, cfg=cfg,
                          budget_cfg=BudgetConfig(steps=steps), prep=PREP, seed=0, on_epoch_end=on_epoch_end)
    return backbone, result, before


def logits_of(model: nn.Module, images: ImageSet = TEST) -> torch.Tensor:
    return predict_logits(model, images.images, PREP, 256)


def group_of(name: str) -> str:
    return name.split(".")[0]


# ---------------------------------------------------------------- registration and params


def test_every_strategy_is_registered_with_documented_params():
    reg = Registry(make_plugin_manager(load_entrypoints=False, extra=("ftbench_strategies",)))
    assert set(reg.names("strategy")) == {
        "full", "linear-probe", "scratch", "freeze", "surgical", "gradual-unfreeze", "discriminative-lr",
        "lp-ft", "l2-sp", "wise-ft", "bitfit", "lora", "peft", "lwf", "feature-extract", "adabn", "dann",
        "self-training"}
    for comp in reg.all("strategy"):
        assert issubclass(comp.params, Params)
        assert all(f.description for f in comp.params.model_fields.values()), comp.name
        assert re.search(r"(19|20)\d\d", comp.factory.__doc__), f"{comp.name}: docstring names no paper"
        assert comp.factory(comp.params()).params == comp.params()  # defaults are valid


@pytest.mark.parametrize("params_cls, bad", [
    (FreezeParams, {"k": -1}),
    (FreezeParams, {"k": 1, "extra": 2}),
    (SurgicalParams, {"block": "top"}),
    (LoRAParams, {"rank": 0}),
    (LoRAParams, {"target": "attention"}),
    (WiSEFTParams, {"alphas": [0.5, 1.5]}),
    (WiSEFTParams, {"alphas": []}),
    (LPFTParams, {"lp_fraction": 1.0}),
    (LwFParams, {"T": 0}),
    (DiscriminativeLRParams, {"decay": 0.5}),  # decay belongs to mode layer-decay
    (DiscriminativeLRParams, {"base": "lora"}),
    (DiscriminativeLRParams, {"base": "freeze", "base_params": {"k": -3}}),
])
def test_bad_params_are_rejected(params_cls, bad):
    with pytest.raises(pydantic.ValidationError):
        params_cls.model_validate(bad)


def test_lwf_takes_lambda_by_its_name_and_records_it_so():
    params = LwFParams.model_validate({"lambda": 0.5})
    assert params.lam == 0.5 and params.model_dump(mode="json") == {"lambda": 0.5, "T": 2.0}
    assert LwFParams.model_validate(params.model_dump(mode="json")) == params


# ---------------------------------------------------------------- what trains


def _names(backbone: Backbone) -> list[str]:
    return [n for n, _ in backbone.model.named_parameters()]


def _lora_count(model: nn.Module, rank: int) -> int:
    """Adapter parameters by hand: r * (in * kh * kw) + out * r per plain conv of the backbone."""
    return sum(rank * m.in_channels * m.kernel_size[0] * m.kernel_size[1] + m.out_channels * rank
               for m in model.modules() if type(m) is nn.Conv2d and m.groups == 1)


FROZEN_RULES = {  # strategy -> (factory, rule: original name -> trains?)
    "full": (lambda: ftbench_strategies.Full(), lambda n: True),
    "linear-probe": (lambda: LinearProbe(), lambda n: group_of(n) == "fc"),
    "scratch": (lambda: Scratch(ScratchParams(init_seed=1)), lambda n: True),
    "freeze": (lambda: Freeze(FreezeParams(k=2)), lambda n: group_of(n) not in ("conv1", "bn1")),
    "surgical": (lambda: Surgical(SurgicalParams(block="last")), lambda n: group_of(n) in ("layer4", "fc")),
    "gradual-unfreeze": (lambda: GradualUnfreeze(), lambda n: True),
    "discriminative-lr": (lambda: DiscriminativeLR(), lambda n: True),
    "lp-ft": (lambda: LPFT(), lambda n: True),
    "l2-sp": (lambda: L2SP(), lambda n: True),
    "wise-ft": (lambda: WiSEFT(), lambda n: True),
    "bitfit": (lambda: ftbench_strategies.BitFit(), lambda n: group_of(n) == "fc" or n.endswith(".bias")),
    "lora": (lambda: LoRA(LoRAParams(rank=2)), lambda n: group_of(n) == "fc"),
    "lwf": (lambda: LwF(), lambda n: True),
}


@pytest.mark.parametrize("name", list(FROZEN_RULES))
def test_strategy_trains_what_it_says_and_learns(name):
    make, trains = FROZEN_RULES[name]
    strategy = make()
    # gradual-unfreeze: 7 epochs, so every group thaws; a probe on random features learns slowly
    steps = {"gradual-unfreeze": 21, "linear-probe": 45}.get(name, 15)
    backbone, result, before = train(strategy, steps=steps)
    after = {n.replace(".base_layer.", "."): p for n, p in backbone.model.named_parameters()}

    expected = sum(p.numel() for n, p in before.items() if trains(n))
    if name == "lora":
        expected += _lora_count(make_backbone().model, rank=2)  # the unwrapped layers
    assert result.trainable_params == expected
    frozen = [n for n in before if not trains(n)]
    assert all(torch.equal(before[n], after[n]) for n in frozen), name
    moved = [n for n in before if trains(n) and not torch.equal(before[n], after[n])]
    assert moved, f"{name}: nothing trained"
    assert result.curve[-1]["train_loss"] < 0.8 * result.curve[0]["train_loss"], result.curve


def test_bitfit_counts_batchnorm_shifts_as_biases():
    backbone = make_backbone()
    groups = ftbench_strategies.BitFit().setup(backbone.model, backbone)
    names = groups[0].params
    assert "bn1.bias" in names and "fc.weight" in names and "bn1.weight" not in names


def test_freeze_and_surgical_reject_impossible_depths():
    backbone = make_backbone()
    with pytest.raises(UserInputError, match="k between 0 and 6"):
        Freeze(FreezeParams(k=7)).setup(backbone.model, backbone)
    with pytest.raises(UserInputError, match="from -6 to 5"):
        Surgical(SurgicalParams(block=6)).setup(backbone.model, backbone)
    chosen = {b: backbone.groups[Surgical(SurgicalParams(block=b)).chosen(backbone)].name
              for b in ("first", "middle", "last", 3, -1)}
    assert chosen == {"first": "conv1", "middle": "layer1", "last": "layer4", 3: "layer2", -1: "layer4"}


def test_scratch_reinitialises_reproducibly():
    a, b = make_backbone(), make_backbone()
    pretrained = copy.deepcopy(a.model.state_dict())
    Scratch(ScratchParams(init_seed=3)).setup(a.model, a)
    Scratch(ScratchParams(init_seed=3)).setup(b.model, b)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["layer1.0.conv1.weight"], pretrained["layer1.0.conv1.weight"])
    assert not torch.equal(sa["fc.weight"], pretrained["fc.weight"])
    assert torch.count_nonzero(sa["layer1.0.bn2.weight"]) == 0  # timm's zero-init of the last BN per block


# ---------------------------------------------------------------- linear probe caching


def test_linear_probe_on_cached_features_matches_running_the_backbone(monkeypatch):
    calls = []
    real = training._features
    monkeypatch.setattr(training, "_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    cached, _, _ = train(LinearProbe(), steps=30)
    assert calls == [1]  # features computed once
    plain, _, _ = train(LinearProbe(), steps=30, cfg=CFG.model_copy(update={"cache_features": False}))
    assert calls == [1]
    assert torch.allclose(cached.model.fc.weight, plain.model.fc.weight, atol=1e-5)
    acc = [classification_metrics(logits_of(b.model), TEST.labels)["acc"] for b in (cached, plain)]
    assert abs(acc[0] - acc[1]) <= 100 / len(TEST)  # at most one test image apart


# ---------------------------------------------------------------- schedules of what trains


def test_gradual_unfreeze_thaws_from_the_top_one_group_per_interval():
    strategy = GradualUnfreeze()
    changed_after_epoch = []
    backbone = make_backbone()
    start = {n: p.detach().clone() for n, p in backbone.model.named_parameters()}

    def record(epoch, point):
        now = dict(backbone.model.named_parameters())
        changed_after_epoch.append({group_of(n) for n in start if not torch.equal(start[n], now[n])})

    train(strategy, steps=21, backbone=backbone, on_epoch_end=record)  # 3 steps an epoch, interval 1/7
    assert [g for _, g in strategy.unfrozen_log] == ORDER
    assert [p for p, _ in strategy.unfrozen_log] == pytest.approx([i / 7 for i in range(7)])
    assert changed_after_epoch == [set(ORDER[:e + 1]) for e in range(7)]


def test_gradual_unfreeze_thaws_several_groups_when_epochs_are_long():
    backbone = make_backbone()
    strategy = GradualUnfreeze(GradualUnfreezeParams(interval=0.1))
    strategy.setup(backbone.model, backbone)
    strategy.on_progress(backbone.model, TrainState(progress=0.25, epoch=1, step=5))
    assert [g for _, g in strategy.unfrozen_log] == ORDER[:3]
    trainable = {group_of(n) for n, p in backbone.model.named_parameters() if p.requires_grad}
    assert trainable == set(ORDER[:3])


def test_lp_ft_probes_then_fine_tunes_from_the_probed_head(monkeypatch):
    calls = []
    real = training._features
    monkeypatch.setattr(training, "_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    backbone = make_backbone()
    start = {n: p.detach().clone() for n, p in backbone.model.named_parameters()}
    body_moved = []

    def record(epoch, point):
        body_moved.append(any(not torch.equal(start[n], p) for n, p in backbone.model.named_parameters()
                              if group_of(n) != "fc"))

    train(LPFT(LPFTParams(lp_fraction=0.5)), steps=18, backbone=backbone, on_epoch_end=record)
    assert body_moved == [False, False, False, True, True, True]  # epochs start at 0, 1/6, ..., 5/6
    assert calls == [1]  # the probing phase trained on cached features


@pytest.mark.parametrize("restart", [True, False])
def test_lp_ft_restarts_the_schedule_for_fine_tuning(monkeypatch, restart):
    seen = []
    real = training.lr_factor
    monkeypatch.setattr(training, "lr_factor", lambda cfg, p: seen.append(p) or real(cfg, p))
    cfg = CFG.model_copy(update={"schedule": "cosine"})
    train(LPFT(LPFTParams(lp_fraction=0.5, restart_schedule=restart)), steps=20, cfg=cfg)
    budget = [i / 20 for i in range(20)]  # progress before each step
    if restart:  # each half runs the whole schedule: 0, 0.1, ..., 0.9 twice
        assert seen == pytest.approx([p * 2 for p in budget[:10]] * 2)
    else:
        assert seen == pytest.approx(budget)


def test_lp_ft_scales_only_the_backbone_rate():
    backbone = make_backbone()
    groups = LPFT(LPFTParams(ft_lr_scale=0.1)).setup(backbone.model, backbone)
    assert {g.name: g.lr_scale for g in groups} == {"head": 1.0, "backbone": 0.1}


# ---------------------------------------------------------------- discriminative rates


def _base_lr_by_group(strategy, backbone: Backbone, cfg: TrainConfig = CFG) -> dict[str, float]:
    """The optimiser's base lr of each layer group's parameters (one rate per group)."""
    groups = strategy.setup(backbone.model, backbone)
    optimizer = training.build_optimizer(backbone.model, groups, cfg)
    name_of = {id(p): n for n, p in backbone.model.named_parameters()}
    rates: dict[str, set[float]] = {}
    for g in optimizer.param_groups:
        for p in g["params"]:
            rates.setdefault(group_of(name_of[id(p)]), set()).add(g["base_lr"])
    assert all(len(r) == 1 for r in rates.values()), rates
    return {group: r.pop() for group, r in rates.items()}


def test_discriminative_lr_divides_the_rate_by_factor_per_group_down():
    rates = _base_lr_by_group(DiscriminativeLR(), make_backbone())
    assert rates == pytest.approx({g: CFG.lr / 2.6 ** d for d, g in enumerate(ORDER)})


def test_layer_decay_multiplies_by_decay_per_group_down():
    params = DiscriminativeLRParams(mode="layer-decay", decay=0.5)
    rates = _base_lr_by_group(DiscriminativeLR(params), make_backbone())
    assert rates == pytest.approx({g: CFG.lr * 0.5 ** d for d, g in enumerate(ORDER)})


def test_discriminative_lr_composes_with_the_base_strategy():
    backbone = make_backbone()
    strategy = DiscriminativeLR(DiscriminativeLRParams(base="freeze", base_params={"k": 2}))
    rates = _base_lr_by_group(strategy, backbone)
    assert set(rates) == set(ORDER[:5])  # conv1 and bn1 are frozen: not in the optimiser
    assert rates["layer1"] == pytest.approx(CFG.lr / 2.6 ** 4)

    strategy = DiscriminativeLR(DiscriminativeLRParams(base="gradual-unfreeze"))
    _, result, _ = train(strategy, steps=21)
    assert [g for _, g in strategy.base.unfrozen_log] == ORDER


# ---------------------------------------------------------------- penalties and variants


def test_l2_sp_penalty_is_the_stated_formula():
    backbone = make_backbone()
    strategy = L2SP(L2SPParams(alpha=0.3, beta=0.2))
    strategy.setup(backbone.model, backbone)
    model = backbone.model
    with torch.no_grad():
        model.layer2[0].conv1.weight.add_(0.1)
    n = model.layer2[0].conv1.weight.numel()
    head = model.fc.weight.pow(2).sum() + model.fc.bias.pow(2).sum()
    value = strategy.penalty(model, None, torch.zeros(1, 3), torch.zeros(1))
    assert value.item() == pytest.approx(0.3 / 2 * 0.01 * n + 0.2 / 2 * head.item(), rel=1e-5)


def test_wise_ft_mixes_the_start_and_the_fine_tuned_model():
    backbone = make_backbone()
    start = copy.deepcopy(backbone.model)  # pretrained backbone with the initial head
    strategy = WiSEFT()
    train(strategy, backbone=backbone)
    variants = strategy.eval_models(backbone.model)
    assert list(variants) == ["alpha=0", "alpha=0.25", "alpha=0.5", "alpha=0.75", "alpha=1"]
    assert torch.allclose(logits_of(variants["alpha=0"]), logits_of(start), atol=1e-6)
    assert torch.allclose(logits_of(variants["alpha=1"]), logits_of(backbone.model), atol=1e-6)
    mid, a, b = variants["alpha=0.5"].state_dict(), start.state_dict(), backbone.model.state_dict()
    for key in ("layer1.0.conv1.weight", "fc.bias", "bn1.running_mean"):
        assert torch.allclose(mid[key], (a[key] + b[key]) / 2, atol=1e-6)
    assert not torch.equal(a["bn1.running_mean"], b["bn1.running_mean"])  # buffers moved and got mixed


def test_lwf_with_zero_weight_is_full_fine_tuning():
    full, _, _ = train(ftbench_strategies.Full())
    lwf, _, _ = train(LwF(LwFParams(lam=0.0)))
    for (n, p), (_, q) in zip(full.model.named_parameters(), lwf.model.named_parameters()):
        assert torch.equal(p, q), n


def test_lwf_keeps_the_source_outputs_closer_than_full_fine_tuning():
    def source_drift(strategy) -> float:
        backbone = make_backbone()
        before = predict_logits(backbone.model, TEST.images, PREP, 256, head=backbone.source_head)
        cfg = CFG.model_copy(update={"lr": 1e-2})
        train(strategy, backbone=backbone, cfg=cfg)
        model = strategy.final_model(backbone.model)
        after = predict_logits(model, TEST.images, PREP, 256, head=backbone.source_head)
        return F.kl_div(after.log_softmax(1), before.log_softmax(1), log_target=True, reduction="batchmean").item()

    assert source_drift(LwF(LwFParams(lam=10.0))) < 0.5 * source_drift(ftbench_strategies.Full())


def test_lwf_needs_a_source_head():
    backbone = make_backbone()
    backbone.source_head = None
    with pytest.raises(UserInputError, match="source-task head"):
        LwF().setup(backbone.model, backbone)


# ---------------------------------------------------------------- LoRA


def test_lora_merged_model_matches_the_adapted_one():
    strategy = LoRA(LoRAParams(rank=2))
    backbone, _, before = train(strategy)
    model = backbone.model
    assert any(torch.count_nonzero(p) for n, p in model.named_parameters() if ".lora_B." in n)
    merged = strategy.final_model(model)
    assert [n for n, _ in merged.named_parameters()] == list(before)  # the original architecture
    assert torch.allclose(logits_of(merged), logits_of(model), atol=1e-5)


def test_lora_starts_as_the_base_model_and_merges_linear_layers():
    backbone = make_backbone("test_vit")
    reference = logits_of(backbone.model)
    strategy = LoRA(LoRAParams(rank=3, target="linear"))
    groups = strategy.setup(backbone.model, backbone)
    assert torch.allclose(logits_of(backbone.model), reference, atol=1e-6)  # B = 0
    assert strategy.wrapped and all("blocks" in w for w in strategy.wrapped)
    adapters = [n for n in groups[0].params if ".lora_" in n]
    assert len(adapters) == 2 * len(strategy.wrapped)
    with torch.no_grad():
        for name in adapters:
            if ".lora_B." in name:
                backbone.model.get_parameter(name).normal_(0, 0.05)
    adapted = logits_of(backbone.model)
    assert not torch.allclose(adapted, reference, atol=1e-3)
    assert torch.allclose(logits_of(strategy.final_model(backbone.model)), adapted, atol=1e-5)


# ---------------------------------------------------------------- with the timm backbone plugin


@pytest.mark.parametrize("name", list(FROZEN_RULES))
def test_strategy_runs_on_the_timm_plugins_backbone(name):
    """Every strategy on `ftbench_timm`'s own layer groups (test_vit): what `setup`
    leaves out of its groups never moves, and the trained model evaluates."""
    plugin = pytest.importorskip("ftbench_timm")
    params = plugin.TimmParams(model="test_vit", pretrained="none", input_size=16)
    backbone = plugin.make_timm(params, num_classes=3, seed=0)
    backbone.source_head = backbone.source_head or nn.Linear(backbone.model.num_features, 5)
    strategy = FROZEN_RULES[name][0]()
    named: list[str] = []
    setup = strategy.setup

    def recording_setup(model, bb):
        groups = setup(model, bb)
        named.extend(n for g in groups for n in g.params)
        return groups

    strategy.setup = recording_setup
    _, result, before = train(strategy, steps=4, backbone=backbone)
    after = {n.replace(".base_layer.", "."): p for n, p in backbone.model.named_parameters()}
    untouched = [n for n in before if n not in named and n in after]
    assert all(torch.equal(before[n], after[n]) for n in untouched)
    assert 0 < result.trainable_params <= sum(p.numel() for p in backbone.model.parameters())
    logits = logits_of(strategy.final_model(backbone.model))
    assert logits.shape == (len(TEST), 3) and torch.isfinite(logits).all()
