"""The wizard's training page: runs (or resumes) a run in the training thread and shows it live: progress, speed,
time left, loss and accuracy curves, the log; Cancel keeps the last finished epoch, Resume carries on."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.events import Log, Progress
from engine.training.dataset import DatasetScan
from engine.training.plan import EpochMetrics, StepMetrics, TrainPlan
from engine.training.trainer import TrainResult
from gui.result_widgets import format_duration
from gui.status import ElidedLabel, MessageBanner
from gui.train_pages import WizardPage, WizardState, bold_label, note_label
from gui.train_worker import TrainingEvent, TrainingFinished, TrainingStarted, TrainingStopped
from gui.training_charts import TRAIN_COLOUR, VAL_COLOUR, CurveChart

PROGRESS_STEPS = 1000
CANCEL_NOTE = "Cancel keeps the last finished epoch; resume later from the Data page."
MAX_LOG_LINES = 500


def smaller_batch(message: str, batch_size: int) -> int:
    """The batch size to retry with after an out-of-memory failure; 0 when the failure was not about memory."""
    return max(1, batch_size // 2) if "memory" in message.lower() and batch_size > 1 else 0


class TrainingPage(WizardPage):
    title = "Training"
    subtitle = "The window stays usable meanwhile: you can classify images in the main window."
    next_text = "See results ›"

    started = Signal(object)  # TrainingStarted, once the page shows it
    epoch_shown = Signal(object)  # EpochMetrics, once its points are on the curves
    finished = Signal(object)  # TrainResult
    stopped = Signal(object)  # TrainingStopped (cancelled or failed)

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self._request_id: int | None = None
        self.run_folder = ""
        self.plan: TrainPlan | None = None
        self.result: TrainResult | None = None
        self._retry_batch = 0
        self._handlers = {StepMetrics: self._on_step, EpochMetrics: self._on_epoch, Progress: self._on_progress,
                          Log: self._on_log}
        self.headline = bold_label("", 1.15)
        self.headline.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, PROGRESS_STEPS)
        self.stats = ElidedLabel()  # ends in the bundle's path, which may be longer than the page is wide
        self.loss_chart = CurveChart("Loss")
        self.accuracy_chart = CurveChart("Accuracy", percent=True)
        for chart in (self.loss_chart, self.accuracy_chart):
            chart.add_series("train", TRAIN_COLOUR)
            chart.add_series("validation", VAL_COLOUR, Qt.PenStyle.DashLine)
        self.log = QListWidget()
        self.log.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(CANCEL_NOTE)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Carry on from the last finished epoch")
        self.resume_button.clicked.connect(lambda: self.resume(self.run_folder))
        self.cancel_note = note_label(CANCEL_NOTE)
        self.banner = MessageBanner()
        self.banner.action_clicked.connect(self._retry)
        self._lay_out()
        worker = state.bridge.worker
        worker.training_started.connect(self._on_started)
        worker.training_reported.connect(self._on_event)
        worker.training_finished.connect(self._on_finished)
        worker.training_stopped.connect(self._on_stopped)
        self._set_running(False)

    def _lay_out(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_note)
        buttons.addStretch(1)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.cancel_button)
        charts = QWidget()
        charts_row = QHBoxLayout(charts)
        charts_row.setContentsMargins(0, 0, 0, 0)
        charts_row.addWidget(self.loss_chart)
        charts_row.addWidget(self.accuracy_chart)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(charts)
        split.addWidget(self.log)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.headline)
        layout.addWidget(self.banner)
        layout.addWidget(self.progress)
        layout.addWidget(self.stats)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)

    # Starting, cancelling, resuming

    def start_new(self, plan: TrainPlan, scan: DatasetScan) -> None:
        """Create a run from `plan` and `scan` and train it."""
        self._reset(f"Starting: {plan.arch} ({plan.method})…")
        self.plan = plan
        self._request_id = self.state.bridge.start_training(plan=plan, scan=scan)
        self._set_running(True)

    def resume(self, run_folder: str, **changes) -> None:
        """Carry on the run in `run_folder` from its last finished epoch (e.g. with batch_size=16)."""
        self._reset("Resuming…", keep_curves=run_folder == self.run_folder)
        self.run_folder = run_folder
        self._request_id = self.state.bridge.start_training(run_folder=run_folder, **changes)
        self._set_running(True)

    def cancel(self) -> None:
        self.state.bridge.cancel_training()
        self.cancel_button.setEnabled(False)
        self.stats.setText("Cancelling after the batch in progress…")

    def _retry(self) -> None:
        changes = {"batch_size": self._retry_batch} if self._retry_batch else {}
        self.resume(self.run_folder, **changes)

    def _reset(self, headline: str, keep_curves: bool = False) -> None:
        self.result = None
        self.banner.hide()
        self.headline.setText(headline)
        self.progress.setValue(0)
        self.progress.setFormat("Preparing…")
        self.stats.clear()
        if not keep_curves:
            self.loss_chart.clear()
            self.accuracy_chart.clear()
            self.log.clear()

    def _set_running(self, running: bool) -> None:
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.cancel_note.setVisible(running)
        self.resume_button.hide()
        self.complete_changed.emit()

    @property
    def is_running(self) -> bool:
        return self._request_id is not None and self._request_id == self.state.bridge.current_training_id

    def is_complete(self) -> bool:
        return self.result is not None

    def can_go_back(self) -> bool:
        return not self.is_running

    # What the training thread reports

    @Slot(object)
    def _on_started(self, started: TrainingStarted) -> None:
        if started.request_id != self._request_id:
            return
        self.run_folder, self.plan = started.run_folder, started.plan
        self.headline.setText(
            f"Training “{started.name}”: {started.plan.arch}, {started.plan.method} method, "
            f"{len(started.classes)} classes, {started.train_images} training and {started.val_images} validation "
            "images"
        )
        epochs = started.plan.effective_epochs
        for chart in (self.loss_chart, self.accuracy_chart):
            chart.clear()
            chart.set_x_max(epochs)
        for metrics in started.history:
            self._plot(metrics)
        self.started.emit(started)

    @Slot(object)
    def _on_event(self, event: TrainingEvent) -> None:
        if event.request_id == self._request_id:
            handler = self._handlers.get(type(event.event))
            if handler is not None:
                handler(event.event)

    def _on_step(self, step: StepMetrics) -> None:
        done = (step.epoch - 1) * step.steps + step.step
        self.progress.setValue(round(PROGRESS_STEPS * done / max(step.epochs * step.steps, 1)))
        self.progress.setFormat(f"Epoch {step.epoch} of {step.epochs} · step {step.step} of {step.steps}")
        self.stats.setText(
            f"About {format_duration(step.eta_seconds)} left · {step.images_per_second:.0f} images/s · "
            f"loss {step.loss:.3f} · learning rate {step.lr:.2g}"
        )

    def _on_epoch(self, metrics: EpochMetrics) -> None:
        self._plot(metrics)
        self._add_log(
            f"Epoch {metrics.epoch}/{metrics.epochs}: validation accuracy {metrics.val_accuracy * 100:.1f} %, "
            f"loss {metrics.val_loss:.3f} (train {metrics.train_accuracy * 100:.1f} %, {metrics.train_loss:.3f}) "
            f"· {metrics.seconds:.1f} s"
        )
        self.epoch_shown.emit(metrics)

    def _plot(self, metrics: EpochMetrics) -> None:
        self.loss_chart.add_point("train", metrics.epoch, metrics.train_loss)
        self.loss_chart.add_point("validation", metrics.epoch, metrics.val_loss)
        self.accuracy_chart.add_point("train", metrics.epoch, metrics.train_accuracy)
        self.accuracy_chart.add_point("validation", metrics.epoch, metrics.val_accuracy)
        for chart in (self.loss_chart, self.accuracy_chart):
            chart.set_best(metrics.best_epoch)

    def _on_progress(self, progress: Progress) -> None:
        if progress.total > 0:
            self.progress.setValue(0)
            self.progress.setFormat(f"{progress.what}: {progress.done} of {progress.total}")
        self.stats.setText(progress.what)

    def _on_log(self, event: Log) -> None:
        self._add_log(event.text)

    def _add_log(self, text: str) -> None:
        self.log.addItem(text)
        while self.log.count() > MAX_LOG_LINES:
            self.log.takeItem(0)
        self.log.scrollToBottom()

    @Slot(object)
    def _on_finished(self, finished: TrainingFinished) -> None:
        if finished.request_id != self._request_id:
            return
        result = finished.result
        self.result = result
        self.run_folder = str(result.run_folder)
        self._set_running(False)
        self.progress.setValue(PROGRESS_STEPS)
        self.progress.setFormat("Finished")
        early = ", stopped early as it no longer improved" if result.stopped_early else ""
        self.headline.setText(
            f"Finished: validation accuracy {result.evaluation.accuracy * 100:.1f} % "
            f"(best epoch {result.best_epoch} of {result.epochs_run}{early}). Press “See results”."
        )
        self.stats.setText(f"Took {format_duration(result.seconds)} · saved as {result.bundle}")
        self.finished.emit(result)

    @Slot(object)
    def _on_stopped(self, stopped: TrainingStopped) -> None:
        if stopped.request_id != self._request_id:
            return
        self.run_folder = stopped.run_folder or self.run_folder
        self._set_running(False)
        failure = stopped.failure
        self.resume_button.setVisible(bool(self.run_folder) and failure.cancelled)
        epochs = self.plan.effective_epochs if self.plan else 0
        self.progress.setValue(round(PROGRESS_STEPS * stopped.epochs_done / epochs) if epochs else 0)
        if failure.cancelled:
            self.progress.setFormat(f"Cancelled after {stopped.epochs_done} finished epochs")
            self.headline.setText(
                f"Cancelled after {stopped.epochs_done} finished epochs. Resume carries on from there, now or "
                "later from the Data page."
            )
            self.stats.clear()
        else:
            batch = self.plan.batch_size if self.plan else 0
            self._retry_batch = smaller_batch(failure.message, batch)
            action = f"Retry with batch size {self._retry_batch}" if self._retry_batch else "Retry"
            self.headline.setText("Training stopped.")
            self.progress.setFormat("Stopped")
            self.banner.show_message(failure.message, failure.hint, action if self.run_folder else "")
        self.stopped.emit(stopped)
