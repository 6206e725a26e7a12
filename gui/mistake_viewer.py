"""Why a model got a picture wrong: where it looked for the class it answered, beside where it looked for the right
one. Opened from a mistake in the training wizard's results or in Evaluate on a folder (double-click or Enter).

The heat maps are engine.explain's, both from one set of passes, made off the GUI thread with the evaluated model,
run as the Classify view runs it (loaded once and kept while mistakes of that model are looked at)."""
from __future__ import annotations

import time
from concurrent.futures import Future
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtWidgets import QDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.errors import UserFacingError
from engine.events import CancelToken, Event, Progress
from engine.training.metrics import Misclassified
from gui.background import background_calls
from gui.engine_messages import failure_from
from gui.result_widgets import thumbnail_pixmap
from gui.train_pages import bold_label, error_label, note_label, show_error

PROGRESS_INTERVAL_MS = 100
CAPTION_WIDTH = 256  # a column's width: the model's view of the picture, 224 pixels for most models
_kept: tuple[tuple[str, int], object] | None = None  # ((bundle, its mtime), Classifier): the model last looked with


def explain_mistake(bundle: str, mistake: Misclassified, on_event, cancel: CancelToken) -> tuple[list, str]:
    """On the "where-it-looked" thread (one for the app, so `_kept` needs no lock): the explanations of the class
    answered and of the right one, in that order, and how long they took with which backend ("0.3 s, ONNX
    Runtime")."""
    from engine.decode import decode_image  # torch: never on the window's start
    from engine.explain import explain_classes
    from engine.models import load_model
    from engine.predict import Classifier
    from engine.runtime import create_backend
    from engine.specs import Bundle, ModelSpec

    global _kept
    key = (bundle, Path(bundle).stat().st_mtime_ns)  # a model saved again since is loaded again
    if _kept is None or _kept[0] != key:
        _kept = None  # one model in memory at a time
        loaded = load_model(ModelSpec(source=Bundle(bundle)), on_event=on_event, cancel=cancel)
        # Run as the Classify view runs it, so both show the same heat: on the CPU that is ONNX Runtime (exported
        # once and cached for both), about 4x faster than PyTorch for the built-in model's two maps.
        _kept = (key, Classifier(loaded, create_backend(loaded, "auto", on_event=on_event, cancel=cancel)))
    classifier = _kept[1]
    labels = classifier.loaded.labels
    for label in (mistake.predicted_label, mistake.true_label):
        if label not in labels:
            raise UserFacingError(f"The model has no class “{label}” now.", "Evaluate it again.")
    image = decode_image(mistake.path, classifier.preprocessor.decode_size)
    indexes = [labels.index(mistake.predicted_label), labels.index(mistake.true_label)]
    started = time.perf_counter()
    explanations = explain_classes(classifier, image, indexes, cancel, on_event)
    return explanations, f"{time.perf_counter() - started:.1f} s, {classifier.backend.name}"


class MistakeViewer(QDialog):
    """One mistake: the model's view of the picture with the heat of the class it answered, and of the right one."""

    def __init__(self, bundle: str, mistake: Misclassified, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(f"Where the model looked: {Path(mistake.path).name}")
        self.mistake = mistake
        headline = bold_label(f"A “{mistake.true_label}” taken for “{mistake.predicted_label}” "
                              f"({mistake.confidence * 100:.0f} %)", 1.2)
        headline.setToolTip(mistake.path)
        self.pictures: list[QLabel] = []
        self.captions: list[QLabel] = []
        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        titles = (f"Its answer, “{mistake.predicted_label}”", f"The right class, “{mistake.true_label}”")
        for column, title in enumerate(titles):
            picture = QLabel("Looking…")
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture.setMinimumSize(CAPTION_WIDTH, CAPTION_WIDTH)
            caption = note_label()
            caption.setFixedWidth(CAPTION_WIDTH)
            title_label = bold_label(title)
            title_label.setFixedWidth(CAPTION_WIDTH)
            title_label.setWordWrap(True)
            grid.addWidget(title_label, 0, column, Qt.AlignmentFlag.AlignBottom)
            grid.addWidget(picture, 1, column)
            grid.addWidget(caption, 2, column, Qt.AlignmentFlag.AlignTop)
            self.pictures.append(picture)
            self.captions.append(caption)
        self.status = note_label("Loading the model…")
        self.error = error_label()
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(headline)
        layout.addWidget(note_label("Warm colours: the parts whose hiding lowers that class's confidence most."))
        layout.addLayout(grid)
        layout.addWidget(self.error)
        layout.addLayout(buttons)

        self._progress: Progress | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_INTERVAL_MS)
        self._timer.timeout.connect(self._show_progress)
        self._timer.start()
        self._cancel = CancelToken()
        QCoreApplication.instance().aboutToQuit.connect(self._cancel.cancel)  # quitting must not wait for it
        calls = background_calls("where-it-looked")
        calls.done.connect(self._explained, Qt.ConnectionType.QueuedConnection)
        self._running: Future | None = calls.submit(explain_mistake, bundle, mistake, self._on_event, self._cancel)

    @property
    def running(self) -> bool:
        return self._running is not None

    def _on_event(self, event: Event) -> None:  # on the background thread: no Qt here
        if isinstance(event, Progress):
            self._progress = event

    def _show_progress(self) -> None:
        progress = self._progress
        if progress is None:
            return
        if progress.unit == "passes" and progress.total:
            self.status.setText(f"Looking… {round(100 * progress.done / progress.total)} %")
        elif progress.unit == "steps" and not progress.total:  # a first export to ONNX, for seconds
            self.status.setText(f"{progress.what}…")

    def _explained(self, running: Future) -> None:
        if running is not self._running:
            return  # another viewer's: every viewer hears the one thread
        self._running = None
        self._timer.stop()
        self.status.clear()
        try:
            explanations, took = running.result()
        except Exception as exc:  # noqa: BLE001 - a photo moved since, a model deleted since: said here
            failure = failure_from(0, exc)  # 0: the viewer keeps its own future, not a request id
            for picture in self.pictures:
                picture.setText("")
            if not failure.cancelled:
                show_error(self.error, failure.message, failure.hint)
            return
        for picture, caption, explanation in zip(self.pictures, self.captions, explanations):
            picture.setPixmap(thumbnail_pixmap(explanation.overlay()))
            caption.setText(explanation.describe())
            # A word-wrapped label's height depends on its width, which the layout does not ask for.
            caption.setFixedHeight(caption.heightForWidth(CAPTION_WIDTH))
        self.status.setText(f"Took {took}")
        self.adjustSize()

    def reject(self) -> None:
        self._cancel.cancel()  # between two batches of passes: closing never waits for the model
        super().reject()
