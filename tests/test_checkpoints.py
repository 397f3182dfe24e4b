"""The pretraining cache: keys, atomic save/load, corruption detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ftbench.engine import checkpoints
from ftbench.engine.checkpoints import (CorruptCheckpoint, MissingCheckpoint, cache_dir, checkpoint_dir,
                                        checkpoint_key, checkpoint_status, load_checkpoint, remove_checkpoint,
                                        save_checkpoint)

META = {"config": {"model": "test_resnet", "dataset": {"name": "glyphs", "params": {"n_train": 10}}},
        "classes": ["A", "B"], "data_config": {"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.5] * 3},
        "metrics": {"source_acc": 99.0}}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))


def _state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"fc.weight": torch.randn(2, 4, generator=g), "fc.bias": torch.randn(2, generator=g)}


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("FTBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "ftbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "ftbench"


def test_key_is_canonical_and_short():
    key = checkpoint_key({"a": 1, "b": [1, 2]})
    assert key == checkpoint_key({"b": [1, 2], "a": 1})
    assert key != checkpoint_key({"a": 2, "b": [1, 2]})
    assert len(key) == 16 and int(key, 16) >= 0


def test_round_trip():
    key = checkpoint_key(META["config"])
    assert checkpoint_status(key) == "missing"
    folder = save_checkpoint(key, _state(), META)
    assert folder == checkpoint_dir(key)
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "model.safetensors"]
    state, meta = load_checkpoint(key)
    assert all(torch.equal(state[k], v) for k, v in _state().items()) and state.keys() == _state().keys()
    assert meta["classes"] == ["A", "B"] and meta["config"] == META["config"]
    assert meta["data_config"]["input_size"] == [3, 32, 32]
    assert len(meta["digest"]) == 64 and meta["created_at"].endswith("+00:00")
    assert checkpoint_status(key) == "ok"
    # no temporary folders left beside the checkpoint
    assert [p.name for p in folder.parent.iterdir()] == [key]


def test_save_replaces_existing_checkpoint():
    save_checkpoint("k", _state(), META)
    newer = {k: v + 1 for k, v in _state().items()}
    save_checkpoint("k", newer, {**META, "classes": ["X", "Y"]})
    state, meta = load_checkpoint("k")
    assert torch.equal(state["fc.bias"], newer["fc.bias"]) and meta["classes"] == ["X", "Y"]
    assert [p.name for p in checkpoint_dir("k").parent.iterdir()] == ["k"]


def test_meta_must_hold_required_keys():
    with pytest.raises(ValueError, match="classes"):
        save_checkpoint("k", _state(), {"config": {}, "data_config": {}})
    assert checkpoint_status("k") == "missing"


def test_truncated_weights_are_corrupt():
    folder = save_checkpoint("k", _state(), META)
    model = folder / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-10])
    assert checkpoint_status("k") == "corrupt"
    with pytest.raises(CorruptCheckpoint, match="digest"):
        load_checkpoint("k")


def test_missing_or_unreadable_meta_is_corrupt():
    folder = save_checkpoint("k", _state(), META)
    (folder / "meta.json").unlink()
    assert checkpoint_status("k") == "corrupt"
    with pytest.raises(CorruptCheckpoint, match="no meta.json"):
        load_checkpoint("k")
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(CorruptCheckpoint, match="unreadable"):
        load_checkpoint("k")


def test_unparseable_weights_with_matching_digest_are_corrupt():
    folder = save_checkpoint("k", _state(), META)
    (folder / "model.safetensors").write_bytes(b"garbage")
    meta = json.loads((folder / "meta.json").read_text())
    meta["digest"] = checkpoints._sha256(folder / "model.safetensors")
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptCheckpoint, match="cannot be read"):
        load_checkpoint("k")


def test_missing_checkpoint_and_removal():
    with pytest.raises(MissingCheckpoint, match="ftbench pretrain"):
        load_checkpoint("nope")
    save_checkpoint("k", _state(), META)
    remove_checkpoint("k")
    remove_checkpoint("k")  # removing twice is fine
    assert checkpoint_status("k") == "missing"
    assert not Path(checkpoint_dir("k")).exists()
