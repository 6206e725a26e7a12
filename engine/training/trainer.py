"""Runs a training run: epochs, warm-up + cosine schedule, evaluation, best-epoch tracking, checkpoints, early stopping.

The method (quick or full) is a learner from a table; this module owns everything the two have in common.
A cancelled run keeps its last completed epoch, and `train_run` on the same folder carries on from there.
"""
from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from engine.bundle import BundleInfo, is_bundle, save_bundle
from engine.catalog import TORCHVISION_PREFIX, base_name
from engine.devices import resolve_device
from engine.errors import Cancelled, UserFacingError
from engine.events import CancelToken, EventSink, Log, ignore_events
from engine.files import atomic_path
from engine.training.base_model import build_starting_model
from engine.training.data import inverse_frequency_weights, training_data_config, warn_unreadable
from engine.training.full import FullLearner
from engine.training.metrics import Evaluation, evaluate_predictions
from engine.training.plan import EpochMetrics, StepMetrics
from engine.training.quick import QuickLearner
from engine.training.report import ReportFiles, write_report
from engine.training.run import BEST_FILE, CHECKPOINT_FILE, FEATURES_FILE, Run, default_bundle_path, open_run, save_run

LEARNERS = {"quick": QuickLearner, "full": FullLearner}
STEP_EVENT_INTERVAL_S = 0.1  # at most ten step events a second, whatever the speed


@dataclass(frozen=True)
class TrainResult:
    run_folder: Path
    bundle: Path
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: tuple[EpochMetrics, ...]
    evaluation: Evaluation  # of the best epoch's model on the validation images
    test_evaluation: Evaluation | None
    report: ReportFiles
    seconds: float
    onnx: Path | None = None  # the checked ONNX export, when the plan asked for one and it succeeded


def train_run(
    folder: str | Path, on_event: EventSink = ignore_events, cancel: CancelToken | None = None, **changes
) -> TrainResult:
    """Train (or resume) the run in `folder`; `changes` may adjust settings on resume, e.g. batch_size=16."""
    cancel = cancel or CancelToken()
    run = open_run(folder)
    if not run.resumable:
        raise UserFacingError(
            f"The run {run.folder.name} has already finished; its model is {run.bundle}.",
            "Start a new run to train again.",
        )
    if changes:
        run = replace(run, plan=replace(run.plan, **changes).validated())
        save_run(run)
    try:
        return _train(run, on_event, cancel)
    except Cancelled:
        run = open_run(run.folder).with_status("cancelled")
        on_event(Log("info", f"Training cancelled after {run.epochs_done} epochs; resume it from {run.folder}"))
        raise
    except BaseException:
        open_run(run.folder).with_status("failed")
        raise


def _train(run: Run, on_event: EventSink, cancel: CancelToken) -> TrainResult:
    plan, started = run.plan, time.monotonic()
    device = torch.device(resolve_device(plan.device, "fp32").device)
    num_classes = len(run.classes)
    splits = {"train": run.train, "val": run.val, "test": run.test}
    on_event(Log("info", f"Preparing {plan.arch} ({plan.method}) for {num_classes} classes on {device}"))
    starting = build_starting_model(plan.arch, plan.init, run.classes, plan.seed, on_event, cancel)
    config = training_data_config(starting.data_config, plan.image_size)
    weights = inverse_frequency_weights([i.label for i in run.train], num_classes) if plan.class_weights else None
    learner = LEARNERS[plan.method](starting.model, plan, config, splits, num_classes, weights, device)
    learner.prepare(run.folder / FEATURES_FILE, on_event, cancel)
    warn_unreadable(learner.datasets(), on_event)

    state = _read_checkpoint(run.folder)
    if state:
        learner.load_state(state["learner"])
        on_event(Log("info", f"Resuming after epoch {state['epoch']} of {plan.effective_epochs}"))
    history = [EpochMetrics.from_dict(h) for h in state.get("history", [])]
    best = dict(state.get("best", {"epoch": 0, "accuracy": -1.0, "loss": math.inf}))
    evaluations_since_best = int(state.get("evaluations_since_best", 0))
    epochs, stopped_early = plan.effective_epochs, False
    clock = _StepClock(learner.steps_per_epoch, epochs, int(state.get("epoch", 0)), plan.effective_lr,
                       plan.warmup_epochs)
    targets = np.asarray([i.label for i in run.val], dtype=np.int64)

    for epoch in range(int(state.get("epoch", 0)) + 1, epochs + 1):
        epoch_started = time.monotonic()
        clock.start_epoch(epoch)
        train_loss, train_accuracy = learner.train_epoch(epoch, clock.lr_factor, clock.step_reporter(on_event), cancel)
        if epoch % plan.eval_every == 0 or epoch == epochs:
            evaluation = evaluate_predictions(run.classes, targets, learner.predict("val", cancel))
            improved = (evaluation.accuracy, -evaluation.loss) > (best["accuracy"], -best["loss"])
            if improved:
                best = {"epoch": epoch, "accuracy": evaluation.accuracy, "loss": evaluation.loss}
                with atomic_path(run.folder / BEST_FILE) as tmp:
                    save_file(learner.snapshot(), str(tmp))
            evaluations_since_best = 0 if improved else evaluations_since_best + 1
            metrics = EpochMetrics(
                epoch, epochs, train_loss, train_accuracy, evaluation.loss, evaluation.accuracy, evaluation.top5,
                tuple(c.recall for c in evaluation.per_class), time.monotonic() - epoch_started, best["epoch"],
            )
            history.append(metrics)
            on_event(metrics)
        warn_unreadable(learner.datasets(), on_event)
        checkpoint = {
            "epoch": epoch, "learner": learner.state(), "history": [h.to_dict() for h in history],
            "best": best, "evaluations_since_best": evaluations_since_best,
        }
        with atomic_path(run.folder / CHECKPOINT_FILE) as tmp:
            torch.save(checkpoint, tmp)
        run = run.with_status(run.status, epochs_done=epoch)
        if plan.early_stopping_patience and evaluations_since_best >= plan.early_stopping_patience and epoch < epochs:
            stopped_early = True
            on_event(Log("info", f"Stopping early: no improvement for {evaluations_since_best} evaluations"))
            break
        cancel.check()

    learner.restore(load_file(str(run.folder / BEST_FILE)))
    return _finish(run, learner, starting, config, history, best["epoch"], stopped_early, started, on_event, cancel)


def _finish(run, learner, starting, config, history, best_epoch, stopped_early, started, on_event, cancel):
    plan, base_description = run.plan, starting.description
    evaluation = _evaluate(learner, run, "val", cancel)
    test_evaluation = _evaluate(learner, run, "test", cancel) if run.test else None
    warn_unreadable(learner.datasets(), on_event)
    model = learner.final_model()
    bundle_path = Path(plan.output).expanduser() if plan.output else default_bundle_path(run.name)
    _refuse_to_overwrite_non_bundle(bundle_path)
    metrics = {"val_accuracy": evaluation.accuracy, "val_loss": evaluation.loss, "val_top5": evaluation.top5,
               "best_epoch": best_epoch, "epochs_run": history[-1].epoch}
    if test_evaluation:
        metrics["test_accuracy"] = test_evaluation.accuracy
    provenance = {
        "name": run.name,
        "made_by": "Classifier Studio training",
        "base_model": base_description,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "training": plan.to_dict(),
        "metrics": metrics,
        "dataset": run.dataset,
        "run": str(run.folder),
    }
    cancel.check()
    on_event(Log("info", f"Saving the model to {bundle_path}"))
    info = BundleInfo(_bundle_arch(starting.arch), run.classes, config, provenance)
    save_bundle(bundle_path, model.state_dict(), info)
    onnx_file = _export_onnx(model, config, bundle_path, on_event) if plan.export_onnx else None
    seconds = time.monotonic() - started
    summary = {
        "Model": run.name, "Architecture": starting.arch, "Started from": base_description, "Method": plan.method,
        "Epochs run": metrics["epochs_run"], "Best epoch": best_epoch, "Data folder": run.dataset.get("folder", ""),
        "Training images": len(run.train), "Validation images": len(run.val), "Test images": len(run.test),
        "Image size": config.input_size[-1], "Saved as": str(bundle_path), "Training time (s)": round(seconds, 1),
    }
    report_folder = bundle_path / "report" if bundle_path.is_dir() else run.folder / "report"
    report = write_report(report_folder, evaluation, history, summary, test_evaluation,
                          title=f"{run.name}: training report")
    run.with_status("finished", bundle=str(bundle_path))
    _discard_scratch(run.folder, on_event)
    on_event(Log("info", f"Finished: validation accuracy {evaluation.accuracy:.3f} (best epoch {best_epoch})"))
    return TrainResult(
        run.folder, bundle_path, best_epoch, metrics["epochs_run"], stopped_early, tuple(history), evaluation,
        test_evaluation, report, seconds, onnx_file,
    )


def _export_onnx(model: torch.nn.Module, config, bundle_path: Path, on_event: EventSink) -> Path | None:
    """The optional ONNX file beside the bundle's weights; a model the exporter cannot handle only costs a note."""
    from engine.onnx_export import export_onnx

    target = bundle_path / "model.onnx" if bundle_path.is_dir() else bundle_path.with_suffix(".onnx")
    try:
        return export_onnx(model, config.input_size, target, on_event)
    except UserFacingError as exc:
        on_event(Log("warning", f"{exc.message} {exc.hint}"))
        return None


def _evaluate(learner, run: Run, part: str, cancel: CancelToken) -> Evaluation:
    items = getattr(run, part)
    targets = np.asarray([i.label for i in items], dtype=np.int64)
    return evaluate_predictions(run.classes, targets, learner.predict(part, cancel), [i.path for i in items])


def _bundle_arch(arch: str) -> str:
    """The bundle names the bare architecture: the pretrained tag describes other weights than these."""
    return arch if arch.startswith(TORCHVISION_PREFIX) else base_name(arch)


def _refuse_to_overwrite_non_bundle(path: Path) -> None:
    if path.exists() and not is_bundle(path) and (path.is_file() or any(path.iterdir())):
        raise UserFacingError(
            f"{path} already exists and is not a model bundle, so Classifier Studio will not write over it.",
            "Choose a new name or an empty folder for the model.",
        )


def _discard_scratch(folder: Path, on_event: EventSink) -> None:
    """A finished run is never resumed: its checkpoint, best weights and cached features would only fill the disk
    (ResNet-50 fine-tuned in full left 377 MB). run.json stays, so the run is still listed with its model."""
    for name in (CHECKPOINT_FILE, BEST_FILE, FEATURES_FILE):
        try:
            (folder / name).unlink(missing_ok=True)
        except OSError as exc:
            on_event(Log("warning", f"Could not remove {folder / name}: {exc.strerror or exc}"))


def _read_checkpoint(folder: Path) -> dict:
    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        return {}
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged checkpoint: say so rather than silently starting over
        raise UserFacingError(
            f"The checkpoint of run {folder.name} cannot be read ({exc}).", "Start a new run from the same data."
        ) from exc


class _StepClock:
    """Learning-rate factor (linear warm-up, cosine decay) and throttled StepMetrics with an ETA for the whole run."""

    def __init__(self, steps_per_epoch: int, epochs: int, start_epoch: int, lr: float, warmup_epochs: float) -> None:
        self.steps, self.epochs, self.lr = steps_per_epoch, epochs, lr
        self.warmup_steps = warmup_epochs * steps_per_epoch
        self.total_steps = steps_per_epoch * epochs
        # The pace the ETA follows: from the start, until a second epoch begins. The first epoch decodes every
        # photo (later ones find large photos kept in memory) and warms up, so for a folder of phone photos its
        # pace would promise many times the real time left.
        self.pace_since, self.pace_steps_before = time.monotonic(), steps_per_epoch * start_epoch
        self.first_epoch = start_epoch + 1
        self.epoch = start_epoch

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.epoch_started, self.images, self.last_event = epoch, time.monotonic(), 0, 0.0
        if epoch == self.first_epoch + 1:
            self.pace_since, self.pace_steps_before = self.epoch_started, (epoch - 1) * self.steps

    def lr_factor(self, step: int) -> float:
        """The learning rate's share of its base value at `step` (1-based) of the current epoch."""
        done, warmup = (self.epoch - 1) * self.steps + step, self.warmup_steps
        if done <= warmup:
            return done / max(warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * (done - warmup) / max(self.total_steps - warmup, 1)))

    def step_reporter(self, on_event: EventSink):
        def report(step: int, loss: float, images: int) -> None:
            self.images += images
            now = time.monotonic()
            if now - self.last_event < STEP_EVENT_INTERVAL_S and step < self.steps:
                return
            self.last_event = now
            done = (self.epoch - 1) * self.steps + step
            per_step = (now - self.pace_since) / max(done - self.pace_steps_before, 1)
            on_event(StepMetrics(
                self.epoch, self.epochs, step, self.steps, loss, self.lr * self.lr_factor(step),
                self.images / max(now - self.epoch_started, 1e-9),
                per_step * (self.total_steps - done),
            ))

        return report
