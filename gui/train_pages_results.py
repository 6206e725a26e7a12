"""The wizard's last page: how good the new model is (headline, per-class table, confusion matrix, mistakes) and
what to do with it: use it now, open or export its report, show its folder."""
from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.training.run import unique_path
from engine.training.trainer import TrainResult
from gui.engine_messages import Failure
from gui.evaluation_view import EvaluationView, percent
from gui.result_actions import open_in_system
from gui.train_pages import WizardPage, WizardState, bold_label, error_label, note_label, show_error
from gui.train_worker import ReportExported


class ResultsPage(WizardPage):
    title = "Results"
    subtitle = "Measured on the validation images, which the model never learned from."
    next_text = "Done"

    model_chosen = Signal(str)  # the bundle's path: "Use this model"
    report_exported = Signal(str)  # the copy's folder, once the page says so

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.result: TrainResult | None = None
        self._export_id: int | None = None
        self.headline = bold_label("", 1.6)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Load it as the current model: classify and live recognition use it at once")
        self.use_button.clicked.connect(self.use_model)
        self.report_button = QPushButton("Open report")
        self.report_button.clicked.connect(self.open_report)
        self.export_button = QPushButton("Export report…")
        self.export_button.clicked.connect(self.export_report)
        self.folder_button = QPushButton("Show model folder")
        self.folder_button.clicked.connect(self.show_model_folder)
        self.status = note_label()
        self.status.hide()
        self.error = error_label()
        self.evaluation_view = EvaluationView()
        self.class_table, self.matrix = self.evaluation_view.class_table, self.evaluation_view.matrix
        self._lay_out()
        worker = state.bridge.worker
        worker.report_exported.connect(self._on_exported)
        worker.export_failed.connect(self._on_export_failed)

    def _lay_out(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.use_button, self.report_button, self.export_button, self.folder_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.headline)
        layout.addWidget(self.details)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        layout.addWidget(self.evaluation_view, 1)

    def show_result(self, result: TrainResult) -> None:
        self.result = result
        evaluation = result.evaluation
        self.headline.setText(f"Accuracy {percent(evaluation.accuracy)}")
        parts = [f"top-5 {percent(evaluation.top5)}" if evaluation.top5 is not None else "",
                 f"loss {evaluation.loss:.3f}", f"macro F1 {evaluation.macro_f1:.3f}",
                 f"{evaluation.num_images:,} validation images, {evaluation.num_mistakes:,} mistaken"]
        if result.test_evaluation is not None:
            parts.append(f"test accuracy {percent(result.test_evaluation.accuracy)}")
        parts.append(f"best epoch {result.best_epoch} of {result.epochs_run}")
        self.details.setText(" · ".join(p for p in parts if p) + f"<br>Saved as <b>{result.bundle}</b>")
        self._set_status("")
        show_error(self.error, "")
        self.evaluation_view.show_evaluation(evaluation, result.bundle)

    # Actions

    def use_model(self) -> None:
        if self.result is not None:
            self._set_status(f"Loading {self.result.bundle.name} as the current model in the main window.")
            self.model_chosen.emit(str(self.result.bundle))

    def open_report(self) -> None:
        if self.result is not None:
            open_in_system(self.result.report.html, partial(show_error, self.error))

    def show_model_folder(self) -> None:
        if self.result is not None:
            open_in_system(self.result.bundle, partial(show_error, self.error))

    def export_report(self) -> None:
        if self.result is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the report into")
        if folder:
            target = unique_path(Path(folder), f"{self.result.bundle.name}-report")
            self._export_id = self.state.bridge.request_export(str(self.result.report.html.parent), str(target))
            self._set_status(f"Copying the report to {target}…")

    @Slot(object)
    def _on_exported(self, exported: ReportExported) -> None:
        if exported.request_id == self._export_id:
            self._set_status(f"Report copied to {exported.folder}")
            self.report_exported.emit(exported.folder)

    @Slot(object)
    def _on_export_failed(self, failure: Failure) -> None:
        if failure.request_id == self._export_id:
            self._set_status("")
            show_error(self.error, failure.message, failure.hint)

    def _set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

