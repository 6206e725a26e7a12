"""Evaluate on a folder: how good one of the user's models is on labelled pictures it never saw (new photos from
the production line, a test set kept apart), measured off the GUI thread with progress and Cancel."""
from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer, QUrl, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.events import CancelToken, Event, Progress
from engine.training.report import images_used, write_evaluation_report
from engine.training.run import unique_path
from gui.background import background_calls
from gui.engine_messages import failure_from
from gui.evaluation_view import EvaluationView, percent
from gui.train_pages import bold_label, error_label, note_label, show_error

PROGRESS_INTERVAL_MS = 100
_last_folder = ""  # offered again the next time, for the next model


def evaluate_in_background(bundle: str, folder: str, on_event, cancel: CancelToken):
    """On the evaluation thread: (evaluation, which images); what stops it is told in words by `failure_from`."""
    from engine.training.evaluate import evaluate_bundle  # torch: never on the window's start

    return evaluate_bundle(bundle, folder, "auto", 32, on_event, cancel)


class EvaluateDialog(QDialog):
    """A folder to measure on, then accuracy, the per-class figures, the confusion matrix and the mistakes."""

    evaluation_finished = Signal()  # done, cancelled or failed: the dialog says which
    report_saved = Signal()  # or failed to: the dialog says which

    def __init__(self, bundle: Path, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Evaluate {name}")
        self.bundle = bundle
        self.name = name
        self.evaluation = None
        self._measured: tuple[str, str] = ("", "")  # which images of which folder the shown figures came from
        self._running: Future | None = None
        self._saving: Future | None = None
        self._cancel = CancelToken()
        self._progress: Progress | None = None  # written by the evaluation thread, read by the timer
        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_INTERVAL_MS)
        self._timer.timeout.connect(self._show_progress)
        background_calls("evaluate-model").done.connect(self._evaluated, Qt.ConnectionType.QueuedConnection)
        background_calls("save-evaluation-report").done.connect(self._report_saved, Qt.ConnectionType.QueuedConnection)
        intro = note_label(
            f"Measures {name} on pictures sorted into one folder per class, named like its classes. A folder "
            "with train, val and test folders is measured on its test folder."
        )
        self.folder_field = QLineEdit(_last_folder)
        self.folder_field.setPlaceholderText("A folder of class folders")
        self.folder_field.textChanged.connect(self._refresh)
        self.choose_button = QPushButton("Choose…")
        self.choose_button.clicked.connect(self._choose_folder)
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setDefault(True)
        self.evaluate_button.clicked.connect(self.start)
        folder_row = QHBoxLayout()
        folder_row.addWidget(QLabel("Pictures:"))
        folder_row.addWidget(self.folder_field, 1)
        folder_row.addWidget(self.choose_button)
        folder_row.addWidget(self.evaluate_button)
        self.progress_bar = QProgressBar()
        self.progress_bar.hide()
        self.error = error_label()
        self.note = note_label()
        self.note.hide()
        self.headline = bold_label("", 1.6)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.evaluation_view = EvaluationView()
        self.save_button = QPushButton("Save report…")
        self.save_button.setToolTip("Save these figures as report.html, metrics.json and two CSV files, "
                                    "the same report training writes")
        self.save_button.clicked.connect(self.save_report)
        self.saved_label = note_label()
        self.saved_label.setOpenExternalLinks(True)
        self.saved_label.hide()
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.saved_label, 1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(folder_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.error)
        layout.addWidget(self.note)
        layout.addWidget(self.headline)
        layout.addWidget(self.details)
        layout.addWidget(self.evaluation_view, 1)
        layout.addStretch(0)  # takes the room while there are no results, so the rows above stay together
        layout.addLayout(buttons)
        self._show_results(False)
        self.setMinimumWidth(720)
        self.adjustSize()
        self._refresh()

    @property
    def running(self) -> bool:
        return self._running is not None

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Evaluate on the pictures in", self.folder_field.text())
        if folder:
            self.folder_field.setText(folder)

    def _refresh(self) -> None:
        for widget in (self.folder_field, self.choose_button):
            widget.setEnabled(not self.running)
        self.evaluate_button.setEnabled(not self.running and bool(self.folder_field.text().strip()))
        self.save_button.setEnabled(not self.running and self._saving is None and self.evaluation is not None)
        if not self.running:
            self.close_button.setEnabled(True)
        self.close_button.setText("Cancel" if self.running else "Close")

    def start(self) -> None:
        global _last_folder
        folder = self.folder_field.text().strip()
        if self.running or not folder:
            return
        _last_folder = folder
        show_error(self.error, "")
        self.note.hide()
        self.saved_label.hide()
        self.evaluation = None
        self._show_results(False)
        self._progress = None
        self.progress_bar.setRange(0, 0)  # busy until the first count arrives
        self.progress_bar.setFormat("Loading the model…")
        self.progress_bar.show()
        self._cancel = CancelToken()
        QCoreApplication.instance().aboutToQuit.connect(self._cancel.cancel)  # quitting must not wait for it
        self._running = background_calls("evaluate-model").submit(
            evaluate_in_background, str(self.bundle), folder, self._on_event, self._cancel
        )
        self._timer.start()
        self._refresh()

    def _on_event(self, event: Event) -> None:  # on the evaluation thread: no Qt here
        if isinstance(event, Progress):
            self._progress = event

    def _show_progress(self) -> None:
        progress = self._progress
        if progress is not None and progress.total:
            self.progress_bar.setRange(0, progress.total)
            self.progress_bar.setValue(progress.done)
            self.progress_bar.setFormat(f"{progress.what}: %v of %m")

    def _evaluated(self, running: Future) -> None:
        if running is not self._running:
            return  # another dialog's evaluation: every dialog hears the one thread
        self._running = None
        self._timer.stop()
        self.progress_bar.hide()
        try:
            evaluation, part = running.result()
        except Exception as exc:  # noqa: BLE001 - cancelled, or a failure the user must see
            failure = failure_from(0, exc)  # 0: the dialog keeps its own future, not a request id
            if failure.cancelled:
                self.note.setText("Stopped before the end: nothing was measured.")
                self.note.show()
            else:
                show_error(self.error, failure.message, failure.hint)
        else:
            self._show_evaluation(evaluation, part)
        self._refresh()
        self.evaluation_finished.emit()

    def _show_evaluation(self, evaluation, part: str) -> None:
        self.evaluation = evaluation
        self._measured = (part, self.folder_field.text().strip())
        self.headline.setText(f"Accuracy {percent(evaluation.accuracy)}")
        parts = [f"top-5 {percent(evaluation.top5)}" if evaluation.top5 is not None else "",
                 f"loss {evaluation.loss:.3f}", f"macro F1 {evaluation.macro_f1:.3f}",
                 f"{evaluation.num_images:,} images ({images_used(*self._measured)}), "
                 f"{evaluation.num_mistakes:,} mistaken"]
        self.details.setText(" · ".join(p for p in parts if p))
        self.evaluation_view.show_evaluation(evaluation, self.bundle)
        self._show_results(True)
        self.resize(max(self.width(), 900), max(self.height(), 700))

    def _show_results(self, shown: bool) -> None:
        for widget in (self.headline, self.details, self.evaluation_view, self.save_button):
            widget.setVisible(shown)

    def save_report(self) -> None:
        if self.evaluation is None or self._saving is not None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Save the report into", self._measured[1])
        if not folder:
            return
        target = unique_path(Path(folder), f"{self.name}-evaluation")
        show_error(self.error, "")
        self.saved_label.setText(f"Saving the report into {target}…")
        self.saved_label.show()
        self._saving = background_calls("save-evaluation-report").submit(  # it decodes the mistakes' thumbnails
            write_evaluation_report, target, self.evaluation, *self._measured, self.name, self.bundle
        )
        self._refresh()

    def _report_saved(self, saving: Future) -> None:
        if saving is not self._saving:
            return
        self._saving = None
        try:
            html = saving.result().html
        except Exception as exc:  # noqa: BLE001 - a full disk or a bug: said in the dialog
            failure = failure_from(0, exc)
            self.saved_label.hide()
            show_error(self.error, failure.message, failure.hint)
        else:
            url = QUrl.fromLocalFile(str(html)).toString()
            self.saved_label.setText(f'Saved: <a href="{url}">{html.parent.name}/{html.name}</a>')
            self.saved_label.setToolTip(str(html))
        self._refresh()
        self.report_saved.emit()

    def reject(self) -> None:
        """Cancel, Esc or the close box while measuring stops it (between two batches); otherwise it closes."""
        if self.running:
            self._cancel.cancel()
            self.close_button.setEnabled(False)
            self.close_button.setText("Stopping…")
            return
        super().reject()
