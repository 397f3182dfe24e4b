"""One run: a RunSpec in, a record on disk out, whatever happens in between.

    spec --> dataset plugin -> TaskData -> val carve -> data-amount subset
         --> backbone plugin -> model with target head (+ kept source head)
         --> strategy plugin -> training.fit under the budget
         --> evaluate: test, shifted sets, source task before/after, variants
         --> record (ok | failed | diverged) written atomically

A failure anywhere becomes a `failed` record with its traceback; a NaN or infinite
loss becomes `diverged`. Nothing raised inside a run escapes `execute`.
"""

from __future__ import annotations

import functools
import json
import platform
import random
import resource
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import ftbench
from ftbench import numerics
from ftbench.components import ImageSet, TaskData, UnlabelledData
from ftbench.data import Preprocess, carve_val, default_workers, select_subset
from ftbench.checkpoints import checkpoint_meta
from ftbench.errors import DataError, Diverged, FtbenchError, UserInputError
from ftbench.evaluate import classification_metrics, predict_logits
from ftbench.fingerprint import fingerprint
from ftbench.store import RECORD_FORMAT, ResultsStore
from ftbench.provenance import code_env
from ftbench.suite import CHECKPOINT_PREFIX, RunSpec
from ftbench.training import autocast_for, fit


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic


def resolve_device(name: str) -> torch.device:
    """`auto` is cuda when there is one, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"device '{name}' asked for, but torch sees no CUDA GPU; use device: auto or cpu")
    return device


@functools.lru_cache(maxsize=16)
def _load_task(registry, name: str, params_json: str) -> TaskData:
    comp = registry.get("dataset", name)
    return comp.factory(comp.params.model_validate(json.loads(params_json)), seed=0)


def load_task(registry, name: str, params: dict) -> TaskData:
    """A dataset's TaskData, loaded once per process for the same params."""
    return _load_task(registry, name, json.dumps(params, sort_keys=True))


@functools.lru_cache(maxsize=64)
def _corrupted(registry, name: str, params_json: str, corruption: str, severity: int) -> ImageSet:
    from ftbench.corruptions import corrupt_images

    test = _load_task(registry, name, params_json).test
    return ImageSet(corrupt_images(test.images, corruption, severity, seed=0), test.labels)


def align_classes(target: list[str], other: TaskData, split: ImageSet,
                  aliases: dict[str, str] | None = None) -> tuple[ImageSet, list[str]]:
    """`split` of another dataset relabelled onto `target`'s classes by name (after
    `aliases`: other's name -> target's); samples of classes the target lacks are
    dropped (and named in the return value)."""
    index = {c: i for i, c in enumerate(target)}
    aliases = aliases or {}
    mapping = torch.tensor([index.get(aliases.get(c, c), -1) for c in other.classes])
    labels = mapping[split.labels]
    keep = labels >= 0
    if not keep.any():
        raise DataError(f"no class names in common: target has {target[:5]}..., the shifted set has "
                        f"{other.classes[:5]}...; a shifted dataset must name the target's classes")
    dropped = sorted({other.classes[i] for i in split.labels[~keep].tolist()})
    return ImageSet(split.images[keep], labels[keep]), dropped


def _environment(device: torch.device, providers: dict[str, str], threads: int) -> dict:
    import timm

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.machine()} cpu ({torch.get_num_threads()} threads)"
    return {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
            "ftbench": ftbench.__version__, "plugins": providers, "device": str(device), "device_name": name,
            "threads": threads, "platform": platform.platform(), "fingerprint": fingerprint(str(device), threads)}


def _hardware_dependent(spec: RunSpec) -> bool:
    """Whether a `seconds` budget (the run's, or its pretrained backbone's) may have
    stopped training: then the numbers depend on the machine's speed and load."""
    if spec.budget.seconds is not None:
        return True
    pretrained = str(spec.backbone.params.get("pretrained", ""))
    if not pretrained.startswith(CHECKPOINT_PREFIX):
        return False
    try:
        meta = checkpoint_meta(pretrained[len(CHECKPOINT_PREFIX):])
    except FtbenchError:
        return False
    return (meta.get("config", {}).get("budget") or {}).get("seconds") is not None


def _time_to_target(curve: list[dict], eval_cfg) -> dict | None:
    points = [p for p in curve if "val_acc" in p]
    if not points:
        return None
    target = eval_cfg.target_acc if eval_cfg.target_acc is not None else points[-1]["val_acc"] - eval_cfg.target_drop
    for p in points:
        if p["val_acc"] >= target:
            return {"target_acc": target, "reached": True, "seconds": p["train_seconds"],
                    "steps": p["step"], "epoch": p["epoch"]}
    return {"target_acc": target, "reached": False, "seconds": None, "steps": None, "epoch": None}


_SOURCE_BEFORE: dict[str, dict] = {}


def _reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux: VmHWM, via clear_refs), so a
    run that follows others in one process reports its own peak. False where that
    cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def proc_status_kb(field: str) -> int | None:
    """A memory figure of this process from /proc/self/status in kB (Linux: VmRSS,
    VmHWM ...), or None where there is no such file or field."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _peak_rss_mb(reset: bool) -> tuple[float, str]:
    """(peak resident MB, scope): since the run started ("run") when the peak was
    reset, else the process's peak so far ("process")."""
    peak = proc_status_kb("VmHWM") if reset else None
    if peak is not None:
        return peak / 1024, "run"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (rss / 1024 if sys.platform != "darwin" else rss / 2**20), "process"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Run:
    """The state of one run while it executes; `record()` is its JSON."""

    def __init__(self, spec: RunSpec, registry, hook, progress: bool = False):
        self.spec, self.registry, self.hook, self.progress = spec, registry, hook, progress
        self.metrics: dict[str, Any] = {}
        self.timing = {"wall_s": 0.0, "train_s": 0.0, "eval_s": 0.0, "data_s": 0.0, "samples_per_s": None,
                       "warmup_s": 0.0}  # one-time costs of the process, outside wall_s (`warm_up`)
        self.budget: dict[str, Any] = {"limits": spec.budget.limits(), "used": None, "stopped_by": None}
        self.params = {"trainable": None, "total": None}
        self.data_amount: dict[str, Any] = {"kind": "all", "value": None, "n_train": None}
        self.providers: dict[str, str] = {}
        self.device = torch.device("cpu")
        self.peak_reset = False  # whether the CPU peak memory was reset when this run started
        self.unlabelled: dict[str, Any] | None = None  # the unlabelled target data the strategy used
        self.used: set[tuple[str, str]] = set()  # (kind, name) of components looked up beyond the spec's own

    def _evaluate(self, split: str, model, images: torch.Tensor, labels: torch.Tensor, prep, head=None,
                  autocast=None) -> dict:
        t0 = time.perf_counter()
        logits = predict_logits(model, images, prep, self.spec.train.eval_batch_size, head=head, autocast=autocast)
        metrics = classification_metrics(logits, labels, per_example=split.endswith("test"))  # McNemar pairs runs
        self.timing["eval_s"] += time.perf_counter() - t0
        self.hook.ftbench_evaluation(spec=self.spec, split=split, metrics=metrics)
        return metrics

    def execute(self) -> None:
        spec, reg = self.spec, self.registry
        numerics.check(spec.numerics)  # a worker that did not inherit the driver's settings
        seed_everything(spec.seed, spec.deterministic)
        self.device = device = resolve_device(spec.device)
        for kind, ref in (("backbone", spec.backbone), ("dataset", spec.dataset), ("strategy", spec.strategy)):
            self.providers[f"{kind}:{ref.name}"] = reg.get(kind, ref.name).provider

        t0 = time.perf_counter()
        task = load_task(reg, spec.dataset.name, spec.dataset.params)
        train, val = task.train, task.val
        if val is None and spec.dataset.val_fraction > 0:
            train, val = carve_val(train, spec.dataset.val_fraction, seed=spec.seed)
        train_split = train  # before the data-amount subset: a corruption's unlabelled images come from it
        amount = spec.data
        if amount.label != "all":
            train = train.subset(select_subset(train.labels, shots=amount.shots, fraction=amount.fraction,
                                               examples=amount.examples, seed=spec.seed))
        trial = getattr(spec, "trial", None)
        if trial:  # a search trial: validation held out of its labelled budget; no test unless oracle (search.py)
            from ftbench.search import holdout_split, trial_pruner
            train, val = holdout_split(train, trial["val_fraction"], spec.seed)
        kind = next((k for k in ("shots", "fraction", "examples") if getattr(amount, k) is not None), "all")
        self.data_amount = {"kind": kind, "value": getattr(amount, kind, None), "n_train": len(train),
                            "n_classes": len(task.classes)}  # the chance level of plots

        bcomp = reg.get("backbone", spec.backbone.name)
        backbone = bcomp.factory(bcomp.params.model_validate(spec.backbone.params),
                                 num_classes=len(task.classes), seed=spec.seed)
        model = backbone.model.to(device)
        cfg = spec.train
        channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if cfg.compile:
            model.compile()  # in place: parameter names, and so the strategies' groups, stay
        workers = spec.loader_workers if spec.loader_workers is not None else default_workers()
        prep = Preprocess.for_model(backbone.data_config, device, channels_last, workers)
        train = ImageSet(prep.fit_images(train.images), train.labels)
        val = ImageSet(prep.fit_images(val.images), val.labels) if val is not None and len(val) else None
        oracle = bool(trial) and trial.get("select") == "oracle"  # a trial scored on test too, by request
        test = None if trial and not oracle else ImageSet(prep.fit_images(task.test.images), task.test.labels)
        self.timing["data_s"] += time.perf_counter() - t0
        autocast, _ = autocast_for(device, cfg)

        source = None if trial else self._source_set(backbone, prep)
        if source is not None:
            backbone.source_head.to(device)
            # The pretrained model's source accuracy is the same for every strategy:
            # measure it once per (backbone, seed, settings) in this process.
            key = json.dumps([spec.backbone.model_dump(mode="json"), spec.seed, spec.eval.source_max,
                              cfg.precision, str(device)], sort_keys=True)
            if key not in _SOURCE_BEFORE:
                _SOURCE_BEFORE[key] = self._evaluate("source:before", model, *source, prep,
                                                     head=backbone.source_head, autocast=autocast)
            self.metrics["source"] = {"before": dict(_SOURCE_BEFORE[key]),
                                      "classes": len(backbone.source_classes or ())}

        scomp = reg.get("strategy", spec.strategy.name)
        strategy = scomp.factory(scomp.params.model_validate(spec.strategy.params))
        if strategy.wants_unlabelled:
            strategy.use_unlabelled(self._unlabelled(task, train_split, prep))
        torch.manual_seed(spec.seed)  # model-side randomness (re-init, dropout), apart from data order
        self.params["total"] = sum(p.numel() for p in model.parameters())

        bar = tqdm(total=100, desc=f"  {spec.labels[2]} {spec.data.label} s{spec.seed}", unit="%", leave=False,
                   position=1, file=sys.stderr, disable=not self.progress, dynamic_ncols=True,
                   bar_format="{desc}: {percentage:3.0f}% of budget |{bar}| {elapsed}<{remaining}{postfix}")

        def epoch_end(epoch: int, point: dict) -> None:
            bar.update(round(point["progress"] * 100) - bar.n)
            bar.set_postfix_str(f"loss {point['train_loss']:.3f}", refresh=False)
            self.hook.ftbench_epoch_end(spec=spec, epoch=epoch, metrics=point)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            result = fit(model, backbone, strategy, train, cfg=cfg, budget_cfg=spec.budget, prep=prep,
                         seed=spec.seed, val=val if spec.eval.curve else None,
                         curve_points=spec.eval.curve_points, on_epoch_end=epoch_end, select_val=val,
                         should_stop=trial_pruner(trial) if trial else None)
        finally:
            bar.close()
        self.params["trainable"] = result.trainable_params
        self.timing["train_s"] = result.train_seconds
        self.timing["data_s"] += result.data_seconds
        self.timing["samples_per_s"] = result.samples / result.train_seconds if result.train_seconds else None
        self.budget["used"] = {"epochs": round(result.epochs, 4), "steps": result.steps,
                               "samples": result.samples, "seconds": round(result.train_seconds, 4)}
        self.budget["stopped_by"] = result.stopped_by
        self.metrics["curve"] = result.curve
        self.metrics["time_to_target"] = _time_to_target(result.curve, spec.eval)
        if strategy.info():
            self.metrics["strategy"] = strategy.info()

        final = strategy.final_model(model)
        if trial:
            self.metrics["val"] = self._evaluate("val", final, val.images, val.labels, prep, autocast=autocast)
            self.metrics["pruned"] = result.stopped_by == "pruned"
            if oracle:
                self.metrics["test"] = self._evaluate("test", final, test.images, test.labels, prep,
                                                      autocast=autocast)
            return
        self.metrics.update(self._evaluate_model(final, test, val, task, prep, source, backbone, autocast, ""))
        variants = {}
        for label, variant in strategy.eval_models(model).items():
            variants[label] = self._evaluate_model(variant, test, None, task, prep, source, backbone,
                                                   autocast, f"variant:{label}:")
        if variants:
            self.metrics["variants"] = variants

    def _evaluate_model(self, model, test, val, task, prep, source, backbone, autocast, prefix: str) -> dict:
        out: dict[str, Any] = {"test": self._evaluate(prefix + "test", model, test.images, test.labels, prep,
                                                      autocast=autocast)}
        if val is not None:
            out["val"] = self._evaluate(prefix + "val", model, val.images, val.labels, prep, autocast=autocast)
        shifted = {}
        for name, images, labels, dropped in self._shifted_sets(task, prep):
            shifted[name] = self._evaluate(f"{prefix}shift:{name}", model, images, labels, prep, autocast=autocast)
            if dropped:  # classes of the shifted set that the target task does not have
                shifted[name]["dropped_classes"] = dropped
        out["shifted"] = shifted
        if source is not None:
            after = self._evaluate(prefix + "source:after", model, *source, prep, head=backbone.source_head,
                                   autocast=autocast)
            if prefix:
                out["source_after"] = after
            else:
                self.metrics["source"]["after"] = after
        return out

    def _shifted_sets(self, task: TaskData, prep: Preprocess):
        """(name, fitted images, labels, dropped class names) of every shifted test
        set, built once per run."""
        if hasattr(self, "_shift_cache"):
            return self._shift_cache
        spec, reg, sets = self.spec, self.registry, []
        params_json = json.dumps(spec.dataset.params, sort_keys=True)
        for corruption in spec.dataset.shifts.corruptions:
            for severity in spec.dataset.shifts.severities:
                s = _corrupted(reg, spec.dataset.name, params_json, corruption, severity)
                sets.append((f"{corruption}@{severity}", prep.fit_images(s.images), s.labels, []))
        for name, s in task.shifted.items():
            if self._adapt_domain() == name:  # the images carved off as unlabelled data are not evaluated
                s = s.subset(_domain_parts(len(s), spec.dataset.adapt.fraction)[1])
            sets.append((name, prep.fit_images(s.images), s.labels, []))
        for ref in spec.dataset.shifts.datasets:
            comp = reg.get("dataset", ref.name)
            other = load_task(reg, ref.name, comp.params.model_validate(ref.params).model_dump(mode="json"))
            aligned, dropped = align_classes(task.classes, other, other.test, spec.dataset.shifts.aliases)
            label = ref.label or ref.name
            sets.append((label, prep.fit_images(aligned.images), aligned.labels, dropped))
        self._shift_cache = sets
        return sets

    def _adapt_domain(self) -> str | None:
        """The `adapt: {domain: ...}` name when it is one the dataset provides (not a
        `shifts.datasets` label)."""
        adapt, shifts = self.spec.dataset.adapt, self.spec.dataset.shifts
        if adapt is None or adapt.domain is None or adapt.domain in [r.label or r.name for r in shifts.datasets]:
            return None
        return adapt.domain

    def _unlabelled(self, task: TaskData, train: ImageSet, prep) -> UnlabelledData:
        """The suite's `adapt:` set as images only: a shifted set's training images,
        never its test images and never labels."""
        spec, reg = self.spec, self.registry
        adapt = spec.dataset.adapt
        if adapt is None:
            raise UserInputError(
                f"strategy '{spec.strategy.name}' adapts to unlabelled target data, and dataset "
                f"'{spec.labels[1] or spec.dataset.name}' names none; add `adapt: {{domain: NAME}}` or "
                "`adapt: {corruption: NAME, severity: S}` to its entry in the suite")
        refs = {r.label or r.name: r for r in spec.dataset.shifts.datasets}
        if adapt.corruption is not None:
            from ftbench.corruptions import corrupt_images

            images = corrupt_images(train.images, adapt.corruption, adapt.severity, seed=1)
        elif adapt.domain in refs:
            ref = refs[adapt.domain]
            comp = reg.get("dataset", ref.name)
            other = load_task(reg, ref.name, comp.params.model_validate(ref.params).model_dump(mode="json"))
            images = other.train.images  # its test split is what the shifted evaluation scores
        elif adapt.domain in task.shifted:
            domain = task.shifted[adapt.domain]
            images = domain.images[_domain_parts(len(domain), adapt.fraction)[0]]
        else:
            known = sorted(refs) + sorted(task.shifted)
            raise UserInputError(f"adapt: domain '{adapt.domain}' is neither a `shifts.datasets` label nor a "
                                 f"domain of dataset '{spec.dataset.name}' (known: {', '.join(known) or 'none'}); "
                                 "name one of those, or adapt to a corruption")
        self.unlabelled = {"source": adapt.source, "n": len(images)}
        return UnlabelledData(adapt.source, prep.fit_images(images), prep, spec.train.batch_size, spec.seed)

    def _source_set(self, backbone, prep):
        if backbone.source_head is None or backbone.source_dataset is None:
            return None
        name, params = backbone.source_dataset
        self.used.add(("dataset", name))  # its code scores forgetting: part of the record's digests
        source = load_task(self.registry, name, params).test
        cap = self.spec.eval.source_max
        if cap is not None and len(source) > cap:
            source = source.subset(torch.arange(cap))
        return prep.fit_images(source.images), source.labels.to(prep.device)

    def record(self, status: str, error: dict | None, started: str, wall: float) -> dict:
        spec = self.spec
        self.timing["wall_s"] = wall
        rss_mb, scope = _peak_rss_mb(self.peak_reset)
        gpu = (torch.cuda.max_memory_allocated(self.device) / 2**20
               if self.device.type == "cuda" else None)
        return {
            "format": RECORD_FORMAT, "id": spec.id, "suite": spec.suite, "status": status,
            "cell": spec.cell, "seed": spec.seed, "data_amount": self.data_amount, "config": spec.config(),
            "metrics": self.metrics, "timing": self.timing, "budget": self.budget,
            "memory": {"cpu_peak_rss_mb": rss_mb, "cpu_peak_scope": scope, "gpu_peak_mb": gpu},
            "params": self.params, "unlabelled": self.unlabelled,
            "env": {**_environment(self.device, self.providers, spec.threads),
                    **code_env(spec, self.registry, self.used)},
            "hardware_dependent": _hardware_dependent(spec),
            "started_at": started, "finished_at": _now(), "error": error,
            **({"selection": spec.selection} if getattr(spec, "selection", None) else {}),
        }


def _domain_parts(n: int, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(unlabelled, evaluated) indices of a one-split domain: a fixed shuffle (not the
    run seed, so every run scores the same images), the first `fraction` unlabelled."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    cut = round(n * fraction)
    return order[:cut].sort().values, order[cut:].sort().values


def warm_up(spec: RunSpec, registry) -> float:
    """Pay, before a run's clock starts, what only the first run of a process pays:
    importing its components' modules (a `lazy` factory imports on first use;
    scikit-learn alone takes seconds), torch's one-time imports, and loading its
    dataset (kept for later runs in the process). Returns the seconds spent; a
    problem is left for the run itself to meet and record."""
    t0 = time.perf_counter()
    try:
        seed_everything(spec.seed, spec.deterministic)  # torch imports its compiler's config on first use
        refs = [("backbone", spec.backbone), ("dataset", spec.dataset), ("strategy", spec.strategy),
                *(("dataset", ref) for ref in spec.dataset.shifts.datasets)]
        for kind, ref in refs:
            factory = registry.get(kind, ref.name).factory
            if hasattr(factory, "resolve"):  # a `lazy` factory
                factory.resolve()
        load_task(registry, spec.dataset.name, spec.dataset.params)
    except Exception:  # noqa: BLE001 - the run meets it again, inside its own error handling
        pass
    return time.perf_counter() - t0


def execute(spec: RunSpec, registry, store: ResultsStore, progress: bool = False) -> dict:
    """Run `spec`, write its record, return it. Never raises for a failing run.
    `progress` shows a bar over the run's budget on stderr. The process's one-time
    costs are paid first (`warm_up`) and recorded apart (`timing.warmup_s`), so
    the first run in a worker is timed like the others."""
    hook = registry.pm.hook
    hook.ftbench_run_start(spec=spec)
    threads = torch.get_num_threads()
    torch.set_num_threads(spec.threads)  # here, so every executor runs every run with the suite's threads
    warmup = warm_up(spec, registry)  # with them too: the data it loads is the run's
    started, t0 = _now(), time.perf_counter()
    run = _Run(spec, registry, hook, progress)
    run.timing["warmup_s"] = warmup
    run.peak_reset = _reset_peak_rss()
    status, error = "ok", None
    try:
        run.execute()
    except Diverged as exc:
        status, error = "diverged", {"type": "Diverged", "message": str(exc), "traceback": traceback.format_exc()}
    except KeyboardInterrupt:
        raise  # Ctrl-C or SIGTERM stops the suite; the run is left undone, not failed
    except BaseException as exc:  # a run's failure is data, not a crash of the suite (sys.exit() too)
        message = str(exc)
        if isinstance(exc, SystemExit):
            message = f"the run called sys.exit({exc.code!r}); a strategy or plugin must raise an exception instead"
        status, error = "failed", {"type": type(exc).__name__, "message": message,
                                   "traceback": traceback.format_exc()}
    record = run.record(status, error, started, time.perf_counter() - t0)
    torch.set_num_threads(threads)
    if not store.held_by_me(spec.id) and store.is_done(spec.id):
        return store.read(spec.id)  # our claim was lost (its lease ran out) and another driver finished it
    store.write(record)
    try:
        hook.ftbench_run_end(spec=spec, record=record)
    except Exception:  # a broken listener must not lose the run; the record is written
        traceback.print_exc()
    return record


def failed_record(payload: dict, message: str, error_type: str = "WorkerLost") -> dict:
    """Write and return a `failed` record for a run that could not execute at all
    (its worker process died; `SearchFailed`: its search selected nothing). Like any
    record it is written under the run's claim and never over a finished one:
    another driver may have run it meanwhile. Returns that driver's record, or a
    claimed-elsewhere stub while it holds the run."""
    return _record_unrun(payload, "failed", {"type": error_type, "message": message, "traceback": ""})


def skipped_record(payload: dict, reason: str) -> dict:
    """Write and return a `skipped` record for a run not started because runs that
    share its component failed the same way (`ftbench.failfast`); under the claim,
    like `failed_record`."""
    return _record_unrun(payload, "skipped", {"type": "Skipped", "message": reason, "traceback": ""})


def _record_unrun(payload: dict, status: str, error: dict) -> dict:
    """Write a record of a run that did not execute, under its claim and never over a
    finished one: another driver may have run it meanwhile. Returns that driver's
    record, or a claimed-elsewhere stub while it holds the run."""
    spec: RunSpec = payload["spec"]
    store = ResultsStore(payload["results"])
    held = store.held_by_me(spec.id)  # Ray without a shared folder: the driver claimed it
    if not held and not store.claim(spec.id):
        return {"id": spec.id, "status": "claimed-elsewhere", "cell": spec.cell, "seed": spec.seed}
    try:
        existing = store.read(spec.id)
        if existing is not None and existing.get("status") == "ok":
            return existing
        record = _Run(spec, None, None).record(status, error, _now(), 0.0)
        store.write(record)
        return record
    finally:
        if not held:
            store.release(spec.id)
