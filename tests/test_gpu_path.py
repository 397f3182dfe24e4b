"""The GPU fast path's settings, checked on CPU where they can be; CUDA-only parts skip."""

import pytest
import torch

from ftbench.config import TrainConfig
from ftbench.engine.runner import execute
from ftbench.engine.environment import resolve_device
from ftbench.results.store import ResultsStore
from ftbench.suite import expand, parse_suite
from ftbench.engine.training import autocast_for

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


def test_cpu_defaults_to_fp32_and_bf16_can_be_asked_for():
    cpu = torch.device("cpu")
    assert autocast_for(cpu, TrainConfig()) == (None, None)  # auto on CPU: fp32
    ctx, scaler = autocast_for(cpu, TrainConfig(precision="bf16"))
    assert scaler is None and ctx.fast_dtype == torch.bfloat16
    _, scaler = autocast_for(cpu, TrainConfig(precision="fp16"))
    assert scaler is None  # a grad scaler only on CUDA


@cuda
def test_cuda_auto_precision_is_bf16_or_fp16_with_a_scaler():
    ctx, scaler = autocast_for(torch.device("cuda"), TrainConfig())
    if torch.cuda.is_bf16_supported():
        assert ctx.fast_dtype == torch.bfloat16 and scaler is None
    else:
        assert ctx.fast_dtype == torch.float16 and scaler is not None


def test_asking_for_cuda_without_one_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(Exception, match="torch sees no CUDA GPU; use device: auto or cpu"):
        resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "mps")


@pytest.mark.parametrize("train", ["{channels_last: true}", "{precision: bf16}"])
def test_channels_last_and_bf16_runs_on_cpu(toy_registry, tmp_path, train):
    suite = parse_suite("name: fast\nbackbones: [{name: toy-timm}]\ndatasets: [{name: toy}]\n"
                        f"strategies: [{{name: toy-full}}]\nbudget: {{steps: 3}}\ntrain: {train}\n", "s", toy_registry)
    record = execute(expand(suite, toy_registry)[0], toy_registry, ResultsStore(tmp_path))
    assert record["status"] == "ok", record["error"]
    assert record["metrics"]["test"]["acc"] is not None


@cuda
def test_a_run_on_cuda_records_gpu_memory(toy_registry, tmp_path):
    suite = parse_suite("name: gpu\nbackbones: [{name: toy-timm}]\ndatasets: [{name: toy}]\n"
                        "strategies: [{name: toy-full}]\nbudget: {steps: 3}\ndevice: cuda\n", "s", toy_registry)
    record = execute(expand(suite, toy_registry)[0], toy_registry, ResultsStore(tmp_path))
    assert record["status"] == "ok" and record["memory"]["gpu_peak_mb"] > 0
