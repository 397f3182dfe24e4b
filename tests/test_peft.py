"""The `peft` strategy, and `lora` as peft's LoRA.

`lora` was a hand-written LoRA; these tests pin what made replacing it safe: the
same trainable count (counted by hand per layer), a start equal to the base model,
and a merged model equal to the adapted one with the original architecture.
"""

import pytest
import torch
from click.testing import CliRunner
from torch import nn

pytest.importorskip("peft")

from ftbench.cli import cli  # noqa: E402
from ftbench.results.records import load_records  # noqa: E402
from ftbench_strategies.lora import LoRA, LoRAParams  # noqa: E402
from ftbench_strategies.peft import Peft, PeftParams  # noqa: E402
from tests.test_strategies import logits_of, make_backbone, train  # noqa: E402


def _hand_count(model: nn.Module, rank: int) -> int:
    """LoRA parameters by hand: r * (in * kh * kw) + out * r per plain conv, r * (in + out) per linear,
    head excluded."""
    head = model.get_classifier()
    convs = sum(rank * m.in_channels * m.kernel_size[0] * m.kernel_size[1] + m.out_channels * rank
                for m in model.modules() if type(m) is nn.Conv2d and m.groups == 1)
    linears = sum(rank * (m.in_features + m.out_features) for m in model.modules()
                  if type(m) is nn.Linear and m is not head)
    return convs + linears


@pytest.mark.parametrize("arch", ["test_resnet", "test_vit"])
def test_lora_is_peft_lora_with_the_hand_counted_adapters_and_exact_merge(arch):
    backbone = make_backbone(arch)
    head = sum(p.numel() for p in backbone.model.get_classifier().parameters())
    reference = logits_of(backbone.model)
    strategy = LoRA(LoRAParams(rank=2, alpha=4.0))
    groups = strategy.setup(backbone.model, backbone)
    trainable = sum(backbone.model.get_parameter(n).numel() for g in groups for n in g.params)
    assert trainable == _hand_count(make_backbone(arch).model, 2) + head
    assert torch.allclose(logits_of(backbone.model), reference, atol=1e-6)  # B starts at zero
    with torch.no_grad():
        for name, param in backbone.model.named_parameters():
            if ".lora_B." in name:
                param.normal_(0, 0.05)
    adapted = logits_of(backbone.model)
    assert not torch.allclose(adapted, reference, atol=1e-3)
    merged = strategy.final_model(backbone.model)
    assert [n for n, _ in merged.named_parameters()] == [n for n, _ in make_backbone(arch).model.named_parameters()]
    assert torch.allclose(logits_of(merged), adapted, atol=1e-5)


@pytest.mark.parametrize("method, config, arch, target", [
    ("loha", {"r": 2}, "test_resnet", "all"),
    ("lokr", {"r": 2}, "test_resnet", "conv"),
    ("ia3", {}, "test_resnet", "all"),
    ("vera", {"r": 4}, "test_vit", "linear"),
])
def test_peft_methods_train_only_adapters_and_head_and_merge(method, config, arch, target):
    strategy = Peft(PeftParams(method=method, config=config, target=target))
    backbone, result, before = train(strategy, steps=6, backbone=make_backbone(arch))
    model = backbone.model
    head = {n for n, _ in model.named_parameters() if n.startswith(("fc.", "head."))}
    moved = [n for n, p in model.named_parameters() if p.requires_grad]
    assert moved and all(n in head or f".{method}_" in n or "hada_" in n or "lokr_" in n or "vera_" in n
                         for n in moved), moved
    base = {n.replace(".base_layer.", "."): p for n, p in model.named_parameters()}
    assert all(torch.equal(before[n], base[n]) for n in before if n not in head)  # the backbone stays frozen
    merged = strategy.final_model(model)
    assert [n for n, _ in merged.named_parameters()] == list(before)
    assert torch.allclose(logits_of(merged), logits_of(model), atol=1e-4)
    assert result.trainable_params < sum(p.numel() for p in before.values())


def test_peft_params_say_what_is_wrong():
    with pytest.raises(ValueError, match="unknown peft method 'lorra'; choose one of .*lora"):
        PeftParams(method="lorra")
    with pytest.raises(ValueError, match="peft lora config: .*rank"):
        PeftParams(method="lora", config={"rank": 4})
    with pytest.raises(ValueError, match="give the layers as `target`"):
        PeftParams(config={"target_modules": ["fc"]})


def test_named_targets_that_do_not_exist_are_a_clear_error():
    from ftbench.errors import UserInputError

    backbone = make_backbone()
    with pytest.raises(UserInputError, match="no module named layer9.conv"):
        Peft(PeftParams(target=["layer9.conv"])).setup(backbone.model, backbone)


SUITE = """
name: peft-next-to-builtins
backbones: [{name: toy-timm}]
datasets: [{name: toy}]
strategies:
  - {name: linear-probe}
  - {name: full}
  - {name: lora, params: {rank: 2}}
  - {name: peft, label: loha, params: {method: loha, config: {r: 2}}}
  - {name: peft, label: ia3, params: {method: ia3}}
budget: {steps: 4}
train: {batch_size: 16}
eval: {curve: false}
"""


def test_a_suite_runs_lora_and_two_peft_methods_next_to_builtins(tmp_path):
    (tmp_path / "s.yaml").write_text(SUITE)
    result = CliRunner().invoke(cli, ["--plugin", "tests.toyplugin", "run", str(tmp_path / "s.yaml"),
                                      "--results", str(tmp_path / "res"), "-q"], obj={})
    assert result.exit_code == 0, result.output
    records = {r["cell"]["strategy"]: r for r in load_records(tmp_path / "res")}
    assert set(records) == {"linear-probe", "full", "lora", "loha", "ia3"}
    assert all(r["status"] == "ok" for r in records.values())
    trainable = {k: r["params"]["trainable"] for k, r in records.items()}
    assert trainable["linear-probe"] < trainable["ia3"] < trainable["lora"] < trainable["full"]
    assert trainable["loha"] > trainable["lora"]  # two low-rank pairs per layer


def test_list_strategies_shows_peft_and_its_parameters():
    result = CliRunner().invoke(cli, ["list", "strategies"], obj={})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("peft "))
    assert "method='lora'" in result.output and "target='all'" in result.output and "peft" in row
