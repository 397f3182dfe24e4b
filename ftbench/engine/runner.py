"""One run: a RunSpec in, a record on disk out, whatever happens in between.

    spec --> dataset plugin -> TaskData -> val carve -> data-amount subset
         --> backbone plugin -> model with target head (+ kept source head)
         --> strategy plugin -> training.fit under the budget
         --> evaluate: test, shifted sets, source task before/after, variants
         --> record (ok | failed | diverged) written atomically

A failure anywhere becomes a `failed` record with its traceback; a NaN or infinite
loss becomes `diverged`. Nothing raised inside a run escapes `execute`. The steps
of `_Run.execute` run in a fixed order: each draws from the seeded generators in
the same sequence, so a run's numbers do not depend on how the code is cut.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from ftbench import numerics
from ftbench.components import ImageSet, Strategy, TaskData
from ftbench.engine.data import Preprocess, carve_val, default_workers, select_subset
from ftbench.engine.environment import now, reset_peak_rss, resolve_device, seed_everything
from ftbench.engine.evaluate import classification_metrics, predict_logits
from ftbench.engine.record import RunState, time_to_target
from ftbench.engine.tasks import load_task, shifted_sets, source_test, unlabelled_data
from ftbench.engine.training import FitResult, autocast_for, fit
from ftbench.engine.trial import fold_split, holdout_split, trial_pruner
from ftbench.errors import Diverged
from ftbench.plugins import create
from ftbench.results.store import ResultsStore
from ftbench.suite.runs import RunSpec, TrialSpec

_SOURCE_BEFORE: dict[str, dict] = {}


@dataclass
class _Data:
    """A run's images, fitted to its model: what it trains on, validates and tests on."""

    task: TaskData
    train: ImageSet
    val: ImageSet | None
    test: ImageSet | None
    train_split: ImageSet  # before the data-amount subset: a corruption's unlabelled images come from it


class _Run:
    """One run while it executes; `state` is what it has measured (its record)."""

    def __init__(self, spec: RunSpec, registry, hook, progress: bool = False):
        self.spec, self.registry, self.hook, self.progress = spec, registry, hook, progress
        self.trial = spec.trial if isinstance(spec, TrialSpec) else None  # a search trial's settings
        self.state = RunState.of(spec)
        self._shifted: list[tuple] | None = None

    def execute(self) -> None:
        spec = self.spec
        self._start()
        t0 = time.perf_counter()
        task, train, val, train_split = self._split_data()
        backbone = create(self.registry, "backbone", spec.backbone, num_classes=len(task.classes), seed=spec.seed)
        model, prep = self._place_model(backbone)
        data = self._fit_images(task, train, val, train_split, prep)
        self.state.timing["data_s"] += time.perf_counter() - t0
        autocast, _ = autocast_for(self.state.device, spec.train)
        source = None if self.trial else self._source_before(backbone, model, prep, autocast)
        strategy = self._strategy(data, prep)
        torch.manual_seed(spec.seed)  # model-side randomness (re-init, dropout), apart from data order
        self.state.params["total"] = sum(p.numel() for p in model.parameters())
        result = self._fit(model, backbone, strategy, data, prep)
        self._note_fit(result, strategy)
        final = strategy.final_model(model)
        if self.trial:
            self._evaluate_trial(final, data, prep, autocast, pruned=result.stopped_by == "pruned")
            return
        self.state.metrics.update(self._evaluate_model(final, data, data.val, prep, source, backbone, autocast, ""))
        variants = {label: self._evaluate_model(variant, data, None, prep, source, backbone, autocast,
                                                f"variant:{label}:")
                    for label, variant in strategy.eval_models(model).items()}
        if variants:
            self.state.metrics["variants"] = variants

    # ------------------------------------------------------------ the steps, in order

    def _start(self) -> None:
        """Seeds and device; who provides each component."""
        spec, state = self.spec, self.state
        numerics.check(spec.numerics)  # a worker that did not inherit the driver's settings
        seed_everything(spec.seed, spec.deterministic)
        state.device = resolve_device(spec.device)
        for kind, ref in (("backbone", spec.backbone), ("dataset", spec.dataset), ("strategy", spec.strategy)):
            state.providers[f"{kind}:{ref.name}"] = self.registry.get(kind, ref.name).provider

    def _split_data(self) -> tuple[TaskData, ImageSet, ImageSet | None, ImageSet]:
        """(task, train, val, train split before the subset): val carved when the
        dataset has none, the data amount's subset, a trial's held-out validation."""
        spec = self.spec
        task = load_task(self.registry, spec.dataset.name, spec.dataset.params)
        train, val = task.train, task.val
        if val is None and spec.dataset.val_fraction > 0:
            train, val = carve_val(train, spec.dataset.val_fraction, seed=spec.seed)
        train_split = train
        amount = spec.data
        if amount.label != "all":
            train = train.subset(select_subset(train.labels, shots=amount.shots, fraction=amount.fraction,
                                               examples=amount.examples, seed=spec.seed))
        if self.trial:  # validation held out of its labelled budget; no test unless oracle (driver/search.py)
            if self.trial.get("folds"):  # k-fold cross-validation: this trial run is one fold
                train, val = fold_split(train, self.trial["folds"], self.trial["fold"], spec.seed)
            else:
                train, val = holdout_split(train, self.trial["val_fraction"], spec.seed)
        kind = next((k for k in ("shots", "fraction", "examples") if getattr(amount, k) is not None), "all")
        self.state.data_amount = {"kind": kind, "value": getattr(amount, kind, None), "n_train": len(train),
                                  "n_classes": len(task.classes)}  # the chance level of plots
        return task, train, val, train_split

    def _place_model(self, backbone) -> tuple[torch.nn.Module, Preprocess]:
        """The model on its device (channels_last, compiled when asked) and its preprocessing."""
        spec, device = self.spec, self.state.device
        model = backbone.model.to(device)
        cfg = spec.train
        channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if cfg.compile:
            model.compile()  # in place: parameter names, and so the strategies' groups, stay
        workers = spec.loader_workers if spec.loader_workers is not None else default_workers()
        return model, Preprocess.for_model(backbone.data_config, device, channels_last, workers)

    def _fit_images(self, task: TaskData, train: ImageSet, val: ImageSet | None, train_split: ImageSet,
                    prep: Preprocess) -> _Data:
        train = ImageSet(prep.fit_images(train.images), train.labels)
        val = ImageSet(prep.fit_images(val.images), val.labels) if val is not None and len(val) else None
        test = None if self.trial and not self._oracle else ImageSet(prep.fit_images(task.test.images),
                                                                     task.test.labels)
        return _Data(task, train, val, test, train_split)

    @property
    def _oracle(self) -> bool:
        """A trial scored on test too, by request (`select: oracle`)."""
        return bool(self.trial) and self.trial.get("select") == "oracle"

    def _source_before(self, backbone, model, prep: Preprocess, autocast) -> tuple | None:
        """The source task's test set, and the pretrained model's accuracy on it."""
        spec, state = self.spec, self.state
        if backbone.source_head is not None and backbone.source_dataset is not None:
            state.used.add(("dataset", backbone.source_dataset[0]))  # its code scores forgetting: digested
        source = source_test(spec, self.registry, backbone, prep)
        if source is None:
            return None
        backbone.source_head.to(state.device)
        # The pretrained model's source accuracy is the same for every strategy:
        # measure it once per (backbone, seed, settings) in this process.
        key = json.dumps([spec.backbone.model_dump(mode="json"), spec.seed, spec.eval.source_max,
                          spec.train.precision, str(state.device)], sort_keys=True)
        if key not in _SOURCE_BEFORE:
            _SOURCE_BEFORE[key] = self._evaluate("source:before", model, *source, prep,
                                                 head=backbone.source_head, autocast=autocast)
        state.metrics["source"] = {"before": dict(_SOURCE_BEFORE[key]),
                                   "classes": len(backbone.source_classes or ())}
        return source

    def _strategy(self, data: _Data, prep: Preprocess) -> Strategy:
        strategy = create(self.registry, "strategy", self.spec.strategy)
        if strategy.wants_unlabelled:
            unlabelled = unlabelled_data(self.spec, self.registry, data.task, data.train_split, prep)
            self.state.unlabelled = {"source": unlabelled.source, "n": len(unlabelled)}
            strategy.use_unlabelled(unlabelled)
        return strategy

    def _fit(self, model, backbone, strategy: Strategy, data: _Data, prep: Preprocess) -> FitResult:
        """Training under the budget, with a progress bar over it (the driver's own process only)."""
        spec = self.spec
        bar = tqdm(total=100, desc=f"  {spec.labels[2]} {spec.data.label} s{spec.seed}", unit="%", leave=False,
                   position=1, file=sys.stderr, disable=not self.progress, dynamic_ncols=True,
                   bar_format="{desc}: {percentage:3.0f}% of budget |{bar}| {elapsed}<{remaining}{postfix}")

        def epoch_end(epoch: int, point: dict) -> None:
            bar.update(round(point["progress"] * 100) - bar.n)
            bar.set_postfix_str(f"loss {point['train_loss']:.3f}", refresh=False)
            self.hook.ftbench_epoch_end(spec=spec, epoch=epoch, metrics=point)

        if self.state.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.state.device)
        try:
            return fit(model, backbone, strategy, data.train, cfg=spec.train, budget_cfg=spec.budget, prep=prep,
                       seed=spec.seed, val=data.val if spec.eval.curve else None,
                       curve_points=spec.eval.curve_points, on_epoch_end=epoch_end, select_val=data.val,
                       should_stop=trial_pruner(self.trial) if self.trial else None)
        finally:
            bar.close()

    def _note_fit(self, result: FitResult, strategy: Strategy) -> None:
        """What training used and measured: parameters, timing, budget, the curve."""
        state = self.state
        state.params["trainable"] = result.trainable_params
        state.timing["train_s"] = result.train_seconds
        state.timing["data_s"] += result.data_seconds
        state.timing["samples_per_s"] = result.samples / result.train_seconds if result.train_seconds else None
        state.budget["used"] = {"epochs": round(result.epochs, 4), "steps": result.steps,
                                "samples": result.samples, "seconds": round(result.train_seconds, 4)}
        state.budget["stopped_by"] = result.stopped_by
        state.metrics["curve"] = result.curve
        state.metrics["time_to_target"] = time_to_target(result.curve, self.spec.eval)
        if strategy.info():
            state.metrics["strategy"] = strategy.info()

    # ------------------------------------------------------------ evaluation

    def _evaluate(self, split: str, model, images: torch.Tensor, labels: torch.Tensor, prep, head=None,
                  autocast=None) -> dict:
        t0 = time.perf_counter()
        logits = predict_logits(model, images, prep, self.spec.train.eval_batch_size, head=head, autocast=autocast)
        # Per-example correctness: on test (McNemar pairs runs), and on a trial's validation
        # (the report resamples it for its selection confidence, ftbench.results.selection).
        per_example = split.endswith("test") or (self.trial is not None and split == "val")
        metrics = classification_metrics(logits, labels, per_example=per_example)
        self.state.timing["eval_s"] += time.perf_counter() - t0
        self.hook.ftbench_evaluation(spec=self.spec, split=split, metrics=metrics)
        return metrics

    def _evaluate_trial(self, final, data: _Data, prep: Preprocess, autocast, pruned: bool) -> None:
        """A trial is scored on its held-out validation (and, oracle, on test); nothing else."""
        metrics = self.state.metrics
        metrics["val"] = self._evaluate("val", final, data.val.images, data.val.labels, prep, autocast=autocast)
        metrics["pruned"] = pruned
        if self._oracle:
            metrics["test"] = self._evaluate("test", final, data.test.images, data.test.labels, prep,
                                             autocast=autocast)

    def _evaluate_model(self, model, data: _Data, val: ImageSet | None, prep: Preprocess, source, backbone,
                        autocast, prefix: str) -> dict:
        """Test, val, every shifted set and the source task (`prefix`: a variant's)."""
        test = data.test
        out: dict[str, Any] = {"test": self._evaluate(prefix + "test", model, test.images, test.labels, prep,
                                                      autocast=autocast)}
        if val is not None:
            out["val"] = self._evaluate(prefix + "val", model, val.images, val.labels, prep, autocast=autocast)
        if self._shifted is None:  # built once per run, evaluated for every variant
            self._shifted = shifted_sets(self.spec, self.registry, data.task, prep)
        shifted = {}
        for name, images, labels, dropped in self._shifted:
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
                self.state.metrics["source"]["after"] = after
        return out


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


def _failure(exc: BaseException) -> tuple[str, dict]:
    """(status, error) of a run that raised: diverged, or failed with its traceback."""
    if isinstance(exc, Diverged):
        return "diverged", {"type": "Diverged", "message": str(exc), "traceback": traceback.format_exc()}
    message = str(exc)
    if isinstance(exc, SystemExit):
        message = f"the run called sys.exit({exc.code!r}); a strategy or plugin must raise an exception instead"
    return "failed", {"type": type(exc).__name__, "message": message, "traceback": traceback.format_exc()}


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
    started, t0 = now(), time.perf_counter()
    run = _Run(spec, registry, hook, progress)
    run.state.timing["warmup_s"] = warmup
    run.state.peak_reset = reset_peak_rss()
    status, error = "ok", None
    try:
        run.execute()
    except KeyboardInterrupt:
        raise  # Ctrl-C or SIGTERM stops the suite; the run is left undone, not failed
    except BaseException as exc:  # a run's failure is data, not a crash of the suite (sys.exit() too)
        status, error = _failure(exc)
    record = run.state.record(spec, registry, status, error, started, time.perf_counter() - t0)
    torch.set_num_threads(threads)
    if not store.held_by_me(spec.id) and store.is_done(spec.id):
        return store.read(spec.id)  # our claim was lost (its lease ran out) and another driver finished it
    store.write(record)
    try:
        hook.ftbench_run_end(spec=spec, record=record)
    except Exception:  # a broken listener must not lose the run; the record is written
        traceback.print_exc()
    return record
