"""Why a model got a picture wrong: where it looked for the class it answered, beside where it looked for the right
one. Opened from a mistake in the training wizard's results or in Evaluate on a folder (double-click or Enter).

The heat maps are engine.explain's, both from one set of passes, made off the GUI thread with the evaluated model,
run as the Classify view runs it (loaded once and kept while mistakes of that model are looked at)."""
from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import replace
from functools import partial
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtWidgets import QDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.errors import UserFacingError
from engine.events import CancelToken, Event, Progress
from engine.training.metrics import Misclassified
from gui.background import background_calls
from gui.engine_messages import failure_from
from gui.picture_menu import PICTURE_TIP, PictureMenu, heat_map_name
from gui.result_actions import open_in_system
from gui.result_widgets import thumbnail_pixmap
from gui.settings import load_settings
from gui.train_pages import bold_label, error_label, note_label, show_error

PROGRESS_INTERVAL_MS = 100
CAPTION_WIDTH = 256  # a column's width: the model's view of the picture, 224 pixels for most models
COLUMN_SPACING = 24
TEXT_WIDTH = 2 * CAPTION_WIDTH + COLUMN_SPACING  # the headline's and the move note's: as wide as the two pictures
MOVE_NAME_WIDTH = 180  # pixels of the class name on the Move button
_kept: tuple[tuple, object] | None = None  # ((bundle, its mtime, backend), Classifier): the model last looked with


def explain_mistake(bundle: str, mistake: Misclassified, backend: str, on_event, cancel: CancelToken
                    ) -> tuple[list, str]:
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
    key = (bundle, Path(bundle).stat().st_mtime_ns, backend)  # a model saved again since is loaded again
    if _kept is None or _kept[0] != key:
        _kept = None  # one model in memory at a time
        loaded = load_model(ModelSpec(source=Bundle(bundle)), on_event=on_event, cancel=cancel)
        # On the backend the user chose for the Classify view, so both show the same heat: on the CPU, Auto is
        # ONNX Runtime (exported once and cached for both), about 4x faster than PyTorch for the built-in model.
        _kept = (key, Classifier(loaded, create_backend(loaded, backend, on_event=on_event, cancel=cancel)))
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


def fit_lines(label: QLabel, width: int) -> None:
    """A word-wrapped label as tall as its text at this width. Layouts ask a label for its size without asking
    what height goes with what width, so a long class name wrapped onto more lines would overlap what is below."""
    label.setWordWrap(True)
    label.setFixedWidth(width)
    label.setFixedHeight(label.heightForWidth(width))


class MistakeViewer(QDialog):
    """One mistake: the model's view of the picture with the heat of the class it answered, and of the right one."""

    def __init__(self, bundle: str, mistake: Misclassified, parent: QWidget | None = None, path: str = "") -> None:
        """`path`: where the photo is now, when an earlier viewer moved it from `mistake.path`."""
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        path = path or mistake.path
        self.setWindowTitle(f"Where the model looked: {Path(path).name}")
        self.mistake = mistake
        headline = bold_label(f"A “{mistake.true_label}” taken for “{mistake.predicted_label}” "
                              f"({mistake.confidence * 100:.0f} %)", 1.2)
        fit_lines(headline, TEXT_WIDTH)  # long class names wrap: the window stays as wide as the two pictures
        headline.setToolTip(path)
        self.pictures: list[QLabel] = []
        self.captions: list[QLabel] = []
        self.overlays: list = []  # the heat maps shown, once made: the answer's, the right class's
        grid = QGridLayout()
        grid.setHorizontalSpacing(COLUMN_SPACING)
        titles = (f"Its answer, “{mistake.predicted_label}”", f"The right class, “{mistake.true_label}”")
        for column, title in enumerate(titles):
            picture = QLabel("Looking…")
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture.setMinimumSize(CAPTION_WIDTH, CAPTION_WIDTH)
            caption = note_label()
            caption.setFixedWidth(CAPTION_WIDTH)
            title_label = bold_label(title)
            fit_lines(title_label, CAPTION_WIDTH)
            grid.addWidget(title_label, 0, column, Qt.AlignmentFlag.AlignBottom)
            grid.addWidget(picture, 1, column)
            grid.addWidget(caption, 2, column, Qt.AlignmentFlag.AlignTop)
            self.pictures.append(picture)
            self.captions.append(caption)
        self.status = note_label("Loading the model…")
        self.error = error_label()
        self.photo_actions = PhotoActions(mistake, path, self.error)
        for column, (picture, label) in enumerate(zip(self.pictures, (mistake.predicted_label, mistake.true_label))):
            menu = PictureMenu(picture, lambda at=column: self.overlays[at] if self.overlays else None,
                               lambda at=label: heat_map_name(self.photo_actions.path, at),
                               lambda: str(Path(self.photo_actions.path).parent))
            menu.failed.connect(lambda message, hint: show_error(self.error, message, hint))
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(headline)
        layout.addWidget(note_label("Warm colours: the parts whose hiding lowers that class's confidence most."))
        layout.addLayout(grid)
        layout.addWidget(self.photo_actions)
        layout.addWidget(self.error)
        layout.addLayout(buttons)

        self._progress: Progress | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_INTERVAL_MS)
        self._timer.timeout.connect(self._show_progress)
        self._cancel = CancelToken()
        QCoreApplication.instance().aboutToQuit.connect(self._cancel.cancel)  # quitting must not wait for it
        background_calls("where-it-looked").done.connect(self._explained, Qt.ConnectionType.QueuedConnection)
        self._bundle = bundle
        self._running: Future | None = None
        self._looked_at = ""  # where the photo was when the model was asked to look at it
        self._look()

    def _look(self) -> None:
        """Ask for both heat maps of the photo where it is now."""
        self._looked_at = self.photo_actions.path
        self._timer.start()
        backend = load_settings().backend  # the Inference choice of the model picker
        self._running = background_calls("where-it-looked").submit(
            explain_mistake, self._bundle, replace(self.mistake, path=self._looked_at), backend, self._on_event,
            self._cancel)

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
            if self.photo_actions.path != self._looked_at and not self._cancel.cancelled:
                self._look()  # moved (or put back) with Move while the model was loading: look where it is now
                return
            failure = failure_from(0, exc)  # 0: the viewer keeps its own future, not a request id
            for picture in self.pictures:
                picture.setText("")
            if not failure.cancelled:
                show_error(self.error, failure.message, failure.hint)
            return
        self.overlays = [explanation.overlay() for explanation in explanations]
        for picture, caption, explanation, overlay in zip(self.pictures, self.captions, explanations, self.overlays):
            picture.setPixmap(thumbnail_pixmap(overlay))
            picture.setToolTip(PICTURE_TIP)
            caption.setText(explanation.describe())
            fit_lines(caption, CAPTION_WIDTH)
        self.status.setText(f"Took {took}")
        self.adjustSize()

    def reject(self) -> None:
        self._cancel.cancel()  # between two batches of passes: closing never waits for the model
        super().reject()


class PhotoActions(QWidget):
    """Open the photo, show its folder, or move it into the folder of the class the model answered: for a photo the
    model got right and its folder wrong. Put it back undoes the move."""

    moved = Signal(str, str, bool)  # the photo's path before, now, and whether it is away from where it was

    def __init__(self, mistake: Misclassified, path: str, error: QLabel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mistake, self.error = mistake, error
        self.path = path  # where the photo is now: mistake.path, or where an earlier viewer moved it
        self.open_button = QPushButton("Open the photo")
        self.open_button.clicked.connect(lambda: self._open(self.path))
        self.folder_button = QPushButton("Show in folder")
        self.folder_button.clicked.connect(lambda: self._open(str(Path(self.path).parent)))
        self.move_button = QPushButton()
        self.move_button.clicked.connect(self._move_or_put_back)
        self.note = note_label()  # where the photo was moved, or put back
        buttons = QHBoxLayout()
        for button in (self.open_button, self.folder_button, self.move_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.note)
        self._show_where()

    @property
    def is_moved(self) -> bool:
        return self.path != self.mistake.path

    def _show_where(self, said: bool = False) -> None:
        """The button for what can be done next; the note says where the photo is when it was moved (or `said`,
        put back just now)."""
        moved, predicted, now = self.is_moved, self.mistake.predicted_label, Path(self.path)
        # A long class name is cut short on the button (the tooltip has it whole), which stays a button's width.
        short = self.move_button.fontMetrics().elidedText(predicted, Qt.TextElideMode.ElideRight, MOVE_NAME_WIDTH)
        self.move_button.setText("Put it back" if moved else f"Move to “{short}”")
        self.move_button.setToolTip(
            f"Back to {self.mistake.path}" if moved else
            f"If the model is right and the folder wrong: move the photo into the “{predicted}” folder beside its "
            "own, so the next training learns it as that. Nothing is overwritten."
        )
        if moved or said:
            self.note.setText(f"Moved into the “{now.parent.name}” folder as {now.name}. Evaluate again to count it."
                              if moved else f"Back in the “{now.parent.name}” folder as {now.name}.")
            self.note.setToolTip(self.path)
            fit_lines(self.note, TEXT_WIDTH)
        self.note.setVisible(moved or said)

    def _move_or_put_back(self) -> None:
        from engine.sort_into_folders import move_to_class, put_back

        mistake, before = self.mistake, self.path
        self.error.hide()
        try:
            if self.is_moved:
                self.path = str(put_back(before, mistake.path))
            else:
                self.path = str(move_to_class(before, mistake.true_label, mistake.predicted_label))
        except UserFacingError as exc:
            show_error(self.error, exc.message, exc.hint)
            return
        self._show_where(said=True)
        self.moved.emit(before, self.path, self.is_moved)

    def _open(self, path: str) -> None:
        self.error.hide()
        open_in_system(path, partial(show_error, self.error))
