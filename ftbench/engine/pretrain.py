"""The pretraining stage: train a backbone on a source dataset once, cache it.

A checkpoint is addressed by the hash of its resolved job config, so a suite that
names it reuses it and never trains it twice; a missing, partial or corrupt
checkpoint (its digest no longer matches) is rebuilt, never used.
"""

from __future__ import annotations

import sys
import time

import torch

from ftbench import numerics
from ftbench.engine import checkpoints
from ftbench.components import ImageSet, Strategy
from ftbench.engine.data import Preprocess, default_workers
from ftbench.engine.evaluate import classification_metrics, predict_logits
from ftbench.engine.environment import resolve_device, seed_everything
from ftbench.engine.tasks import load_task
from ftbench.fingerprint import fingerprint
from ftbench.errors import FtbenchError
from ftbench.plugins import create
from ftbench.suite.schema import DEFAULT_THREADS, PretrainJob
from ftbench.suite.expand import pretrain_config, pretrain_key
from ftbench.engine.training import autocast_for, fit


class PretrainFailed(FtbenchError):
    """A pretraining reached no better than its threshold over chance."""


def _check_learned(name: str, job: PretrainJob, meta: dict, cached: str = "") -> None:
    """Raise PretrainFailed when the source test accuracy in `meta` is below the
    job's `min_source_acc` (default twice chance, at most halfway to 100%)."""
    classes = len(meta["classes"])
    acc = meta["metrics"]["test"]["acc"]
    chance = 100 / classes
    # Twice chance, but never past halfway from chance to 100% (2 classes: 75%, not 100%)
    threshold = job.min_source_acc if job.min_source_acc is not None else min(2 * chance, (chance + 100) / 2)
    if acc is not None and acc >= threshold:
        return
    shown = "unmeasured (no test images)" if acc is None else f"{acc:.1f}%"
    raise PretrainFailed(
        f"pretrain {name}: {cached}source test accuracy {shown} is below {threshold:.1f}% "
        f"(chance is {chance:.1f}% on {classes} classes) after {meta['metrics'].get('steps')} steps: the backbone "
        "learned (almost) nothing, so nothing downstream would mean anything. Give it a larger `budget:` (steps, "
        "samples or epochs), or lower the job's `min_source_acc:` if this accuracy is what you expect")


def ensure_pretrained(name: str, job: PretrainJob, registry, device: str = "auto",
                      log=lambda msg: print(msg, file=sys.stderr), threads: int = DEFAULT_THREADS,
                      numerics_mode: str = "default") -> str:
    """The checkpoint key of `job` in `numerics_mode`, training and storing it first
    unless a valid checkpoint is cached. Raises PretrainFailed (and caches nothing)
    when the trained backbone's source accuracy is near chance."""
    key = pretrain_key(job, registry, numerics_mode)
    status = checkpoints.checkpoint_status(key)
    if status == "ok":
        _check_learned(name, job, checkpoints.checkpoint_meta(key),
                       cached=f"the cached checkpoint {key} ({checkpoints.checkpoint_dir(key)}) has ")
        log(f"pretrain {name}: reusing cached checkpoint {key} ({checkpoints.checkpoint_dir(key)})")
        return key
    if status == "corrupt":
        log(f"pretrain {name}: checkpoint {key} is corrupt or partial; rebuilding it")
        checkpoints.remove_checkpoint(key)
    numerics.check(numerics_mode)
    config = pretrain_config(job, registry, numerics_mode)
    log(f"pretrain {name}: training {config['backbone']['params'].get('model', job.backbone.name)} on "
        f"{job.dataset.name} (budget {job.budget.model_dump(exclude_none=True)})")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # the checkpoint's weights depend on it, like a run's numbers
    try:
        state, meta = train_source_model(config, job, registry, device)
        meta["fingerprint"] = fingerprint(str(resolve_device(device)), threads)  # where its weights came from
    finally:
        torch.set_num_threads(previous)
    meta["threads"] = threads
    _check_learned(name, job, meta)
    checkpoints.save_checkpoint(key, state, meta)
    log(f"pretrain {name}: source test accuracy {meta['metrics']['test']['acc']:.1f}% -> {key}")
    return key


def train_source_model(config: dict, job: PretrainJob, registry, device_name: str) -> tuple[dict, dict]:
    """Train the job's backbone from scratch on its source dataset; (state dict, meta)."""
    seed_everything(job.seed)
    device = resolve_device(device_name)
    task = load_task(registry, job.dataset.name, config["dataset"]["params"])
    backbone = create(registry, "backbone", job.backbone.name, config["backbone"]["params"],
                      num_classes=len(task.classes), seed=job.seed)
    model = backbone.model.to(device)
    dc = backbone.data_config
    prep = Preprocess.for_model(dc, device, workers=default_workers())
    train = ImageSet(prep.fit_images(task.train.images), task.train.labels)
    strategy = Strategy()  # the base strategy trains every parameter
    t0 = time.perf_counter()
    result = fit(model, backbone, strategy, train, cfg=job.train, budget_cfg=job.budget, prep=prep, seed=job.seed)
    autocast, _ = autocast_for(device, job.train)
    logits = predict_logits(model, prep.fit_images(task.test.images), prep, job.train.eval_batch_size,
                            autocast=autocast)
    meta = {
        "config": config,
        "classes": task.classes,
        "data_config": {"input_size": list(dc["input_size"]), "mean": list(dc["mean"]), "std": list(dc["std"])},
        "metrics": {"test": classification_metrics(logits, task.test.labels),
                    "train_seconds": result.train_seconds, "wall_seconds": time.perf_counter() - t0,
                    "steps": result.steps, "epochs": result.epochs, "stopped_by": result.stopped_by},
    }
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return state, meta


def pretrain_suite(suite, registry, device: str | None = None, log=None) -> dict[str, str]:
    """Ensure every pretraining job of `suite`, in its numerics mode (set here, before
    torch computes: `ftbench.numerics.apply`); job name -> checkpoint key."""
    kwargs = {"log": log} if log else {}
    if suite.pretrain:
        numerics.apply(suite.numerics)
    return {name: ensure_pretrained(name, job, registry, device or suite.device, threads=job.threads or suite.threads,
                                    numerics_mode=suite.numerics, **kwargs)
            for name, job in suite.pretrain.items()}
