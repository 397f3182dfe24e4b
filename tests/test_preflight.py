"""One validation pass: schema, names and the environment (data folders, weights,
Hub weights offline, GPU), reported at once by `validate` and before `run` starts."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from ftbench.cli import cli

SUITE = """\
name: env
backbones:
  - {{name: timm, params: {{model: test_resnet, pretrained: hub}}}}
  - {{name: timm, label: file, params: {{model: test_resnet, pretrained: {weights}}}}}
datasets:
  - {{name: imagefolder, params: {{root: {root}}}}}
strategies: [{{name: full}}]
budget: {{steps: 2}}
device: {device}
"""


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Offline, with an empty Hugging Face cache, and no probe of the network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))

    def no_network(*args, **kwargs):
        raise AssertionError("offline is declared: nothing may connect")

    monkeypatch.setattr(socket, "create_connection", no_network)


def _suite(tmp_path, root="data", weights="w.safetensors", device="cpu"):
    path = tmp_path / "env.yaml"
    path.write_text(SUITE.format(root=tmp_path / root, weights=tmp_path / weights, device=device))
    return path


def _invoke(*args):
    return CliRunner().invoke(cli, list(args), obj={})


def test_validate_reports_every_environment_problem_at_once(tmp_path, offline, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    result = _invoke("validate", str(_suite(tmp_path, device="cuda")))
    assert result.exit_code == 2, result.output
    out = result.output
    assert "4 problem(s)" in out and "Traceback" not in out
    assert "backbones[0].params.pretrained (line 3): `pretrained: hub` needs timm's weights for 'test_resnet', " \
           "but HF_HUB_OFFLINE is set" in out
    assert f"backbones[1].params.pretrained (line 4): weights file {tmp_path / 'w.safetensors'} does not exist" in out
    assert f"datasets[0].params.root (line 6): data folder {tmp_path / 'data'} does not exist" in out
    assert "device (line 9): device 'cuda' but no GPU is visible" in out


def test_what_is_there_passes(tmp_path, offline):
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "w.safetensors").write_bytes(b"")
    snapshot = tmp_path / "hf" / "models--timm--test_resnet.r160_in1k" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(b"")
    result = _invoke("validate", str(_suite(tmp_path)))
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith(": valid")


def test_unreachable_hub_without_offline_declared(tmp_path, monkeypatch):
    """No HF_HUB_OFFLINE, no cache, and the probe cannot connect (faked: no network call)."""
    from ftbench_timm import names

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    names.hub_reachable.cache_clear()

    def refused(*args, **kwargs):
        raise ConnectionRefusedError("no route")

    monkeypatch.setattr(socket, "create_connection", refused)
    try:
        problems = names.check_timm(names_params(model="test_resnet", pretrained="hub"))
    finally:
        names.hub_reachable.cache_clear()
    assert problems and "the Hugging Face Hub cannot be reached" in problems[0][1]


def names_params(**kw):
    from ftbench_timm import TimmParams

    return TimmParams(**kw)


def test_missing_checkpoint_key_is_named(tmp_path):
    from ftbench_timm.names import check_timm

    (param, problem), = check_timm(names_params(model="test_resnet", pretrained="ftbench:0123456789abcdef"))
    assert param == "pretrained" and "no checkpoint ftbench:0123456789abcdef in the cache" in problem
    assert "pretrained: pretrain:NAME" in problem


def test_schema_and_name_problems_in_one_pass(tmp_path, offline):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nbackbones: [{name: timm, params: {model: test_resnet, pretrained: none}}]\n"
                    "datasets: [{name: digitz}]\nstrategies: [{name: ful}]\nbudget: {steps: -1}\n")
    result = _invoke("validate", str(path))
    assert result.exit_code == 2
    assert "3 problem(s)" in result.output
    assert "budget.steps (line 5): Input should be greater than 0" in result.output
    assert "datasets[0].name (line 3): unknown dataset 'digitz'; did you mean 'digits'?" in result.output
    assert "strategies[0].name (line 4): unknown strategy 'ful'; did you mean 'full'?" in result.output


def test_run_checks_the_environment_first(tmp_path, offline):
    path = _suite(tmp_path)
    result = _invoke("run", str(path), "--results", str(tmp_path / "results"), "-q")
    assert result.exit_code == 2, result.output
    assert "3 problem(s)" in result.output and "data folder" in result.output
    assert not (tmp_path / "results").exists()


def test_run_device_flag_is_checked(tmp_path, offline, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "w.safetensors").write_bytes(b"")
    result = _invoke("run", str(_suite(tmp_path)), "--device", "cuda", "--dry-run")
    assert result.exit_code == 2 and "--device: device 'cuda' but no GPU is visible" in result.output
