"""How good a model is on a set of labelled images, as the training wizard's Results page and Evaluate on a folder
show it: the per-class table, the confusion matrix and the most confident mistakes with their pictures. A cell of
the matrix clicked shows just its mistakes; a mistake double-clicked (or Enter) shows where the model looked, for its
answer and for the right class."""
from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.training.metrics import Evaluation, Misclassified
from gui.background import background_calls
from gui.confusion_matrix import ConfusionMatrixView
from gui.mistake_viewer import MistakeViewer
from gui.train_pages import bold_label, note_label, square_pixmap

GALLERY_THUMB = 96
MAX_GALLERY = 60  # the most confident mistakes; the report lists more
LOOK_TIP = "Double-click: where the model looked, for its answer and for the right class"
CLASS_COLUMNS = ("Class", "Precision", "Recall", "F1", "Images")


def mistake_caption(mistake: Misclassified) -> str:
    return f"true: {mistake.true_label} · taken for: {mistake.predicted_label} ({mistake.confidence * 100:.0f} %)"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def decode_thumbnails(paths: tuple[str, ...], size: int) -> list[tuple[str, object]]:
    """On the thumbnail thread: (path, pixels) of each picture, None for one that cannot be read any more."""
    from engine.predict import file_thumbnails  # numpy and Pillow: kept off the window's start

    return list(file_thumbnails(paths, size))


class EvaluationView(QSplitter):
    """Per class and the confusion matrix side by side, the mistakes below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self._gallery_items: dict[str, list[QListWidgetItem]] = {}
        self._bundle = ""  # the model evaluated, for a closer look at its mistakes
        self._evaluation: Evaluation | None = None
        self._moved: dict[str, str] = {}  # a mistake's photo moved from the mistake viewer: its path then -> now
        self.viewer: MistakeViewer | None = None  # the last one opened
        self._decoding: Future | None = None
        background_calls("mistake-thumbnails").done.connect(self._on_thumbnails, Qt.ConnectionType.QueuedConnection)
        self.class_table = _class_table()
        self.matrix = ConfusionMatrixView()
        self.matrix.cell_clicked.connect(self._choose_cell)
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(GALLERY_THUMB, GALLERY_THUMB))
        self.gallery.setGridSize(QSize(GALLERY_THUMB + 96, GALLERY_THUMB + self.fontMetrics().height() * 3 + 8))
        self.gallery.setWordWrap(True)
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.gallery.setMovement(QListView.Movement.Static)
        self.gallery.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.gallery.itemActivated.connect(self._look_closer)  # double-click, or Enter
        self.gallery_title = bold_label("Mistakes")
        self.all_mistakes_button = QPushButton("Show all mistakes")
        self.all_mistakes_button.clicked.connect(lambda: self._choose_cell(None))
        self.all_mistakes_button.hide()  # while a cell of the matrix is chosen
        self.no_mistakes = note_label()
        self.no_mistakes.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.no_mistakes.hide()
        matrix_scroll = QScrollArea()
        matrix_scroll.setWidget(self.matrix)
        matrix_scroll.setWidgetResizable(True)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(titled("Per class", self.class_table))
        self.matrix_title = bold_label("Confusion matrix")
        top.addWidget(titled(self.matrix_title, matrix_scroll))
        top.setStretchFactor(0, 2)
        top.setStretchFactor(1, 3)
        top.setChildrenCollapsible(False)
        self.addWidget(top)
        gallery_header = QWidget()
        header_row = QHBoxLayout(gallery_header)
        header_row.setContentsMargins(0, 0, 0, 0)
        header_row.addWidget(self.gallery_title, 1)
        header_row.addWidget(self.all_mistakes_button)
        self.addWidget(titled(gallery_header, self.gallery, self.no_mistakes))
        self.setStretchFactor(0, 1)
        self.setStretchFactor(1, 1)
        self.setChildrenCollapsible(False)

    def show_evaluation(self, evaluation: Evaluation, bundle: str | Path = "") -> None:
        """Show `evaluation` of the model saved at `bundle` (without one, its mistakes cannot be looked at)."""
        self._bundle = str(bundle)
        self._evaluation = evaluation
        self._moved = {}
        self.matrix.set_matrix(evaluation.labels, evaluation.confusion)
        self._fill_class_table(evaluation)
        shown, classes = len(self.matrix.shown), len(evaluation.labels)
        self.matrix_title.setText(f"Confusion matrix: the {shown} of {classes} classes with images or answers"
                                  if shown < classes else "Confusion matrix")
        self._fill_gallery()

    def _choose_cell(self, row: int | None, column: int | None = None) -> None:
        """The mistakes of one cell of the matrix below it (the cell chosen again, or None: all of them)."""
        cell = None if row is None or (row, column) == self.matrix.chosen else (row, column)
        self.matrix.choose(cell)
        self._fill_gallery()

    def _fill_class_table(self, evaluation: Evaluation) -> None:
        """The classes the matrix shows: with images or answers (not a 1000-class model's 998 others)."""
        per_class = [evaluation.per_class[index] for index in self.matrix.shown]
        self.class_table.setRowCount(len(per_class))
        for row, metrics in enumerate(per_class):
            cells = (metrics.name, f"{metrics.precision:.3f}", f"{metrics.recall:.3f}", f"{metrics.f1:.3f}",
                     str(metrics.support))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.class_table.setItem(row, column, item)

    def _fill_gallery(self) -> None:
        evaluation, cell = self._evaluation, self.matrix.chosen
        self.gallery.clear()
        self._gallery_items.clear()
        kept, total, what = evaluation.misclassified, evaluation.num_mistakes, "Mistakes"
        if cell is not None:
            true, predicted = evaluation.labels[cell[0]], evaluation.labels[cell[1]]
            kept = tuple(m for m in kept if (m.true_label, m.predicted_label) == (true, predicted))
            total, what = evaluation.confusion[cell[0]][cell[1]], f"“{true}” taken for “{predicted}”"
        shown = kept[:MAX_GALLERY]
        more = f", the {len(shown)} most confident shown" if total > len(shown) else ""
        self.gallery_title.setText(f"{what} ({total}{more})" if total else f"{what}: none")
        self.all_mistakes_button.setVisible(cell is not None)
        self.gallery.setVisible(bool(shown))
        self.no_mistakes.setText(
            f"None of these {total} is among the {len(evaluation.misclassified)} most confident mistakes kept."
            if total else "Every image was classified correctly."
        )
        self.no_mistakes.setVisible(not shown)
        self._decoding = None
        if not shown:
            return
        blank = QIcon(square_pixmap(None, GALLERY_THUMB))
        for mistake in shown:
            item = QListWidgetItem(blank, "")
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self._describe_tile(item, mistake, self._moved.get(mistake.path, mistake.path))
            self.gallery.addItem(item)
        paths = tuple(self._gallery_items)
        self._decoding = background_calls("mistake-thumbnails").submit(decode_thumbnails, paths, GALLERY_THUMB * 2)

    def _look_closer(self, item: QListWidgetItem) -> None:
        mistake: Misclassified = item.data(Qt.ItemDataRole.UserRole)
        if self._bundle and mistake.path:
            self.viewer = MistakeViewer(self._bundle, mistake, self, self._moved.get(mistake.path, ""))
            self.viewer.photo_actions.moved.connect(self._photo_moved)
            self.viewer.show()

    def _describe_tile(self, item: QListWidgetItem, mistake: Misclassified, path: str) -> None:
        """The tile of `mistake`, whose photo is at `path` now (moved from the mistake viewer, or where it was)."""
        away = path != mistake.path
        item.setData(Qt.ItemDataRole.UserRole, mistake)
        item.setText(mistake_caption(mistake) + (f"\nnow in “{Path(path).parent.name}”" if away else ""))
        item.setToolTip(f"{path}\n{LOOK_TIP}" if self._bundle and path else path)
        if path:
            self._gallery_items.setdefault(path, []).append(item)

    def _photo_moved(self, before: str, now: str, away: bool) -> None:
        """A photo moved into another class folder, or put back: its tiles say where it is, and open it there
        (with Put it back offered)."""
        if away:
            self._moved[before] = now
        else:
            self._moved.pop(now, None)
        for item in self._gallery_items.pop(before, []):
            self._describe_tile(item, item.data(Qt.ItemDataRole.UserRole), now)

    def _on_thumbnails(self, decoding: Future) -> None:
        if decoding is not self._decoding:
            return  # another view's pictures, or this view's older ones: every view hears the one thread
        self._decoding = None
        try:
            thumbnails = decoding.result()
        except Exception:  # noqa: BLE001 - pictures are a nicety: the blank tiles stay
            return
        for path, pixels in thumbnails:
            icon = QIcon(square_pixmap(pixels, GALLERY_THUMB))
            for item in self._gallery_items.get(path, ()):
                item.setIcon(icon)


def _class_table() -> QTableWidget:
    table = QTableWidget(0, len(CLASS_COLUMNS))
    table.setHorizontalHeaderLabels(CLASS_COLUMNS)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.setSortingEnabled(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return table


def titled(title: str | QWidget, *widgets: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 4, 0, 0)
    layout.addWidget(title if isinstance(title, QWidget) else bold_label(title))
    for widget in widgets:
        layout.addWidget(widget, 1)
    return box
