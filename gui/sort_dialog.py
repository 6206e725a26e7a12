"""Sort into folders: the Classify tab's results become a folder per class, copied (or moved) off the GUI thread,
with progress and Cancel."""
from __future__ import annotations

import os
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.errors import UserFacingError
from engine.events import CancelToken, Event, Progress
from engine.results import ImageResult
from engine.sort_into_folders import (
    UNSURE_FOLDER,
    SortOptions,
    SortReport,
    SortStopped,
    describe_plan,
    sort_into_folders,
)
from gui.background import background_calls
from gui.result_actions import open_in_system
from gui.result_widgets import ERROR_COLOR

PROGRESS_INTERVAL_MS = 100


def default_destination(results: list[ImageResult]) -> str:
    """A new folder beside the photos' own ("holiday" → "holiday sorted"): not inside it, where classifying the
    folder again would find every photo twice."""
    paths = [result.path for result in results if result.error is None and os.path.isabs(result.path)]
    try:
        common = Path(os.path.commonpath(paths)) if paths else None
    except ValueError:  # photos on different drives
        common = None
    if common is not None and common.is_file():
        common = common.parent
    if common is None or common == common.parent:  # nothing in common, or a drive's root
        return str(Path.home() / "Sorted photos")
    return str(common.parent / f"{common.name} sorted")


def sort_in_background(
    results: list[ImageResult], options: SortOptions, on_event, cancel: CancelToken
) -> tuple[SortReport | None, UserFacingError | None]:
    """On the sorting thread: the report, and the error that stopped the sort, if one did (a full disk's error
    comes with the report of what was done before it)."""
    try:
        return sort_into_folders(results, options, on_event, cancel), None
    except SortStopped as exc:
        return exc.report, exc
    except UserFacingError as exc:
        return None, exc


class SortDialog(QDialog):
    """Where to, how sure, copy or move; then the sort's progress, and what it did."""

    sort_finished = Signal()  # a sort ended (done, stopped or failed) and the dialog says how it went
    photos_moved = Signal(dict)  # old path -> new path of the photos a move took away, for the table to follow

    def __init__(
        self, results: list[ImageResult], shown: list[ImageResult] | None = None, parent: QWidget | None = None
    ) -> None:
        """`results` is the whole set; `shown`, the part of it a filter shows, which the user may sort alone."""
        super().__init__(parent)
        self.setWindowTitle("Sort into folders")
        self._all = results
        self._shown = shown if shown and len(shown) < len(results) else None  # a filter showing none: sort all
        self.report: SortReport | None = None
        self._sorting: Future | None = None
        self._cancel = CancelToken()
        self._progress: Progress | None = None  # written by the sorting thread, read by the timer: newest wins
        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_INTERVAL_MS)
        self._timer.timeout.connect(self._show_progress)
        background_calls("sort-photos").done.connect(self._sorted, Qt.ConnectionType.QueuedConnection)
        proposed = default_destination(results)
        self._beside_photos = Path(proposed).parent  # where a folder name typed alone goes
        self._build(proposed)
        self._show_plan()

    def _build(self, destination: str) -> None:
        intro = QLabel("Each photo goes under its own name into a folder named after its top class. Nothing is "
                       "overwritten, and photos already sorted there are skipped.")
        intro.setWordWrap(True)
        self.folder_field = QLineEdit(destination)
        self.folder_field.textChanged.connect(self._options_changed)  # the plan does not depend on the folder
        self.choose_button = QPushButton("Choose…")
        self.choose_button.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_field, 1)
        folder_row.addWidget(self.choose_button)
        self.threshold = QSpinBox()
        self.threshold.setRange(0, 99)
        self.threshold.setSuffix(" %")
        self.threshold.setSpecialValueText("off")
        self.threshold.setToolTip(f"Photos whose top class is below this confidence go into {UNSURE_FOLDER}")
        self.threshold.valueChanged.connect(self._show_plan)
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.threshold)
        threshold_note = QLabel(f"less sure photos go into {UNSURE_FOLDER}")
        threshold_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        threshold_row.addWidget(threshold_note, 1)
        self.move_box = QCheckBox("Move the photos instead of copying them")
        self.move_box.toggled.connect(self._show_plan)
        shown = len(self._shown or ())
        self.only_shown_box = QCheckBox(f"Only the {shown:,} photo{'s' if shown != 1 else ''} the filter shows")
        self.only_shown_box.setChecked(self._shown is not None)  # the user filtered, then asked to sort: those
        self.only_shown_box.toggled.connect(self._show_plan)
        form = QFormLayout()
        form.addRow("Into:", folder_row)
        form.addRow("Minimum confidence:", threshold_row)
        form.addRow("", self.move_box)
        if self._shown is not None:
            form.addRow("", self.only_shown_box)
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.hide()
        self.outcome_label = QLabel()
        self.outcome_label.setWordWrap(True)
        self.outcome_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.outcome_label.hide()
        self.open_button = QPushButton("Open folder")
        self.open_button.clicked.connect(self._open_folder)
        self.open_button.hide()
        self.sort_button = QPushButton("Sort")
        self.sort_button.setDefault(True)
        self.sort_button.clicked.connect(self.start)
        self.close_button = QPushButton("Cancel")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        buttons.addWidget(self.sort_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        self.plan_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout.addWidget(self.plan_label)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.outcome_label)
        layout.addStretch(1)
        layout.addLayout(buttons)
        self.setMinimumWidth(560)

    @property
    def options(self) -> SortOptions:
        typed = os.path.expanduser(self.folder_field.text().strip())
        destination = str(self._beside_photos / typed) if typed else ""  # an absolute path stays as it is
        return SortOptions(destination, self.threshold.value() / 100, self.move_box.isChecked())

    @property
    def results(self) -> list[ImageResult]:
        """What Sort sorts: the rows the filter shows, or the whole set."""
        return self._shown if self.only_shown_box.isChecked() else self._all

    @property
    def running(self) -> bool:
        return self._sorting is not None

    def _show_plan(self) -> None:
        """What Sort will do with the threshold and Move as they are now (a pass over every result)."""
        self.plan_label.setText(describe_plan(self.results, self.options))
        self._options_changed()

    def _options_changed(self) -> None:
        """The plan, in place of the last sort's outcome; Sort once there is a folder."""
        self.plan_label.show()
        self.outcome_label.hide()
        self.open_button.hide()
        self.sort_button.setEnabled(bool(self.options.destination) and not self.running)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Sort the photos into", self.folder_field.text())
        if folder:
            self.folder_field.setText(folder)

    def start(self) -> None:
        """Sort with the options shown, on the sorting thread."""
        if self.running or not self.options.destination:
            return
        for widget in self._options_widgets:
            widget.setEnabled(False)
        self.progress_bar.setRange(0, max(len(self.results), 1))
        self.progress_bar.setValue(0)
        self.progress_bar.show()
        self.close_button.setText("Cancel")
        self._cancel = CancelToken()
        QCoreApplication.instance().aboutToQuit.connect(self._cancel.cancel)  # quitting must not wait for the sort
        self._sorting = background_calls("sort-photos").submit(
            sort_in_background, self.results, self.options, self._on_event, self._cancel
        )
        self._timer.start()

    def _on_event(self, event: Event) -> None:  # on the sorting thread: no Qt here
        if isinstance(event, Progress):
            self._progress = event

    def _show_progress(self) -> None:
        if self._progress is not None:
            self.progress_bar.setValue(self._progress.done)
            self.progress_bar.setFormat(f"{self._progress.what}: %v of %m")

    def _sorted(self, sorting: Future) -> None:
        if sorting is not self._sorting:
            return  # another dialog's sort: every dialog hears the one sorting thread
        self._sorting = None
        self._timer.stop()
        self._show_progress()
        self.report, error = sorting.result()
        if self.report is not None and self.report.moved:
            self._follow(self.report.moved)
        for widget in self._options_widgets:
            widget.setEnabled(True)
        self.close_button.setText("Close")
        self.close_button.setEnabled(True)
        self.progress_bar.hide()
        if error is not None:
            self.outcome_label.setStyleSheet(f"color: {ERROR_COLOR.name()};")
            self.outcome_label.setText(f"{error.message} {error.hint}")
        else:
            self.outcome_label.setStyleSheet("")
            self.outcome_label.setText("\n".join(self.report.summary()))
        self.plan_label.hide()
        self.outcome_label.show()
        self.open_button.setVisible(os.path.isdir(self.options.destination))
        self.adjustSize()  # room for the outcome's lines
        self.sort_finished.emit()

    @property
    def _options_widgets(self) -> tuple[QWidget, ...]:
        return (self.folder_field, self.choose_button, self.threshold, self.move_box, self.only_shown_box,
                self.sort_button)

    def _follow(self, moved: dict[str, str]) -> None:
        """The moved photos' results point at their new place: Sort again finds them sorted, not missing."""
        def follow(results: list[ImageResult]) -> list[ImageResult]:
            return [replace(r, path=moved[r.path]) if r.path in moved else r for r in results]

        self._all = follow(self._all)
        self._shown = follow(self._shown) if self._shown is not None else None
        self.photos_moved.emit(moved)

    def _open_folder(self) -> None:
        open_in_system(self.options.destination, self._say_below_outcome)

    def _say_below_outcome(self, message: str, hint: str) -> None:
        said, line = self.outcome_label.text(), f"{message} {hint}"
        if line not in said:  # below what the sort did, which stays
            self.outcome_label.setText(f"{said}\n{line}")

    def reject(self) -> None:
        """Cancel, Esc or the close box while sorting stops the sort between two photos, nothing half-copied left,
        and the dialog stays open to say how far it got; otherwise it closes."""
        if self.running:
            self._cancel.cancel()
            self.close_button.setEnabled(False)
            self.close_button.setText("Stopping…")
            return
        super().reject()
