"""How classifications look on screen: the result card with its confidence bars, the batch table, the progress."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Slot
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.results import ImageResult

if TYPE_CHECKING:
    import numpy as np

MAX_BARS = 5
ERROR_COLOR = QColor("#c62828")
# Thumbnails are the only large thing a batch keeps; past this budget the oldest rows drop theirs (the result stays).
THUMBNAIL_BUDGET_BYTES = 256 * 1024 * 1024


def format_ms(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def format_percent(prob: float) -> str:
    return f"{prob * 100:.1f}%"


def display_name(result: ImageResult) -> str:
    """The file name for files; pasted images already carry a readable name."""
    return Path(result.path).name or result.path


def short_error(result: ImageResult) -> str:
    """The error without the file's full path up front: the file is named right beside it already."""
    return (result.error or "").replace(f'"{result.path}"', "This file", 1)


def thumbnail_pixmap(thumbnail: np.ndarray) -> QPixmap:
    """An RGB uint8 HxWx3 array as a pixmap; the copy makes Qt own the pixels, not the numpy buffer."""
    import numpy as np  # the engine imported it to make the thumbnail: only the window's start-up goes without it

    pixels = np.ascontiguousarray(thumbnail, dtype=np.uint8)
    height, width, _ = pixels.shape
    image = QImage(pixels.data, width, height, width * 3, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image)


DETAIL_MIN_WIDTH = 360


class ConfidenceBars(QWidget):
    """Up to five rows of label, bar and percentage, highest first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setColumnStretch(1, 1)
        self.rows: list[tuple[QLabel, QProgressBar, QLabel]] = []
        for row in range(MAX_BARS):
            label = QLabel()
            label.setMinimumWidth(60)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(False)
            bar.setFixedHeight(12)
            percent = QLabel()
            percent.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            percent.setMinimumWidth(percent.fontMetrics().horizontalAdvance("100.0%") + 4)
            for column, widget in enumerate((label, bar, percent)):
                grid.addWidget(widget, row, column)
            self.rows.append((label, bar, percent))

    def show_top(self, result: ImageResult) -> None:
        for row, (label, bar, percent) in enumerate(self.rows):
            visible = row < len(result.top)
            for widget in (label, bar, percent):
                widget.setVisible(visible)
            if visible:
                top = result.top[row]
                label.setText(top.label)
                label.setToolTip(f"{top.label} (class {top.index})")
                bar.setValue(round(top.prob * 1000))
                percent.setText(format_percent(top.prob))

    def visible_count(self) -> int:
        return sum(1 for label, _bar, _percent in self.rows if not label.isHidden())


class ResultCard(QFrame):
    """One image's result: its thumbnail, name, top-k confidence bars and time taken, or its error."""

    THUMBNAIL_BOX = 192

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.thumbnail = QLabel()
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumbnail.setMinimumSize(QSize(self.THUMBNAIL_BOX, self.THUMBNAIL_BOX))
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        title_font = self.title.font()
        title_font.setBold(True)
        self.title.setFont(title_font)
        self.bars = ConfidenceBars()
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setStyleSheet(f"color: {ERROR_COLOR.name()};")
        self.timing = QLabel()
        self.timing.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        for widget in (self.thumbnail, self.title, self.bars, self.error, self.timing):
            layout.addWidget(widget)
        self.result: ImageResult | None = None
        self.clear()

    def clear(self) -> None:
        self.result = None
        self.thumbnail.clear()
        self.title.clear()
        self.title.setToolTip("")
        self.timing.clear()
        self.error.hide()
        self.bars.show_top(ImageResult(""))

    def show_result(self, result: ImageResult) -> None:
        self.result = result
        name = display_name(result)
        metrics = self.title.fontMetrics()
        self.title.setText(metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, self.THUMBNAIL_BOX + 120))
        self.title.setToolTip(result.path)
        if result.thumbnail is not None:
            pixmap = thumbnail_pixmap(result.thumbnail)
            box = QSize(self.THUMBNAIL_BOX, self.THUMBNAIL_BOX)
            if pixmap.width() > box.width() or pixmap.height() > box.height():
                pixmap = pixmap.scaled(
                    box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                )
            self.thumbnail.setPixmap(pixmap)
        else:
            self.thumbnail.clear()
            self.thumbnail.setText("No preview" if result.error else "Preview not kept for very large batches")
        self.bars.show_top(result)
        self.error.setVisible(result.error is not None)
        self.error.setText(short_error(result))
        self.error.setToolTip(result.error or "")
        self.timing.setText("" if result.error else f"Took {format_ms(result.ms)}")


class ResultsTableModel(QAbstractTableModel):
    """Batch results, appended in chunks; sorts itself (keys computed once per row, not per comparison)."""

    COLUMNS = ("#", "File", "Top-1", "Confidence", "Time")
    NUMBER, FILE, TOP1, CONFIDENCE, TIME = range(len(COLUMNS))

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._results: list[ImageResult] = []  # in arrival order; "#" is the position here
        self._order: list[int] = []  # table row -> position in _results
        self._sort_column = self.NUMBER
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._with_thumbnails: deque[int] = deque()
        self._thumbnail_bytes = 0
        self._errors = 0
        self._error_icon: QIcon | None = None

    @property
    def results(self) -> list[ImageResult]:
        """All results in arrival order, whatever the table's sorting."""
        return list(self._results)

    def result_at(self, row: int) -> ImageResult:
        return self._results[self._order[row]]

    def error_count(self) -> int:
        return self._errors

    def clear(self) -> None:
        self.beginResetModel()
        self._results.clear()
        self._order.clear()
        self._with_thumbnails.clear()
        self._thumbnail_bytes = 0
        self._errors = 0
        self.endResetModel()

    def append(self, results: Sequence[ImageResult]) -> None:
        if not results:
            return
        first = len(self._results)
        self.beginInsertRows(QModelIndex(), first, first + len(results) - 1)
        for position, result in enumerate(results, start=first):
            self._results.append(result)
            self._order.append(position)
            self._errors += result.error is not None
            if result.thumbnail is not None:
                self._with_thumbnails.append(position)
                self._thumbnail_bytes += result.thumbnail.nbytes
        self._keep_thumbnails_within_budget()
        self.endInsertRows()
        if (self._sort_column, self._sort_order) != (self.NUMBER, Qt.SortOrder.AscendingOrder):
            self.sort(self._sort_column, self._sort_order)  # new rows take their place in the chosen order

    def _keep_thumbnails_within_budget(self) -> None:
        # The newest thumbnail always stays: it is the one the user is most likely looking at.
        while self._thumbnail_bytes > THUMBNAIL_BUDGET_BYTES and len(self._with_thumbnails) > 1:
            position = self._with_thumbnails.popleft()
            old = self._results[position]
            self._thumbnail_bytes -= old.thumbnail.nbytes
            self._results[position] = replace(old, thumbnail=None)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort_column, self._sort_order = column, order
        self.layoutAboutToBeChanged.emit()
        kept = self.persistentIndexList()  # the selection, so it follows its row
        positions = [self._order[index.row()] for index in kept]
        key = self._sort_key(column)
        self._order = sorted(
            range(len(self._results)),
            key=lambda position: key(position, self._results[position]),
            reverse=order == Qt.SortOrder.DescendingOrder,
        )
        row_of = {position: row for row, position in enumerate(self._order)}
        self.changePersistentIndexList(
            kept, [self.index(row_of[p], index.column()) for p, index in zip(positions, kept)]
        )
        self.layoutChanged.emit()

    def _sort_key(self, column: int):
        # Failed files have no numbers; -1 gathers them at one end of a confidence or time sort.
        if column == self.FILE:
            return lambda _p, r: display_name(r).casefold()
        if column == self.TOP1:
            return lambda _p, r: (1, (r.error or "").casefold()) if r.error else (0, r.top[0].label.casefold())
        if column == self.CONFIDENCE:
            return lambda _p, r: r.top[0].prob if r.top else -1.0
        if column == self.TIME:
            return lambda _p, r: r.ms if r.error is None else -1.0
        return lambda position, _r: position

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._results)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        column = index.column()
        position = self._order[index.row()]
        result = self._results[position]
        failed = result.error is not None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(position, column, result)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self.FILE:
                return result.path
            if failed and column == self.TOP1:
                return result.error
            if column == self.TOP1 and result.top:
                return "\n".join(f"{t.label}: {format_percent(t.prob)}" for t in result.top)
            return None
        if role == Qt.ItemDataRole.ForegroundRole and failed and column == self.TOP1:
            return QBrush(ERROR_COLOR)
        if role == Qt.ItemDataRole.DecorationRole and failed and column == self.TOP1:
            return self._warning_icon()
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (self.NUMBER, self.CONFIDENCE, self.TIME):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, position: int, column: int, result: ImageResult) -> str:
        if column == self.NUMBER:
            return str(position + 1)
        if column == self.FILE:
            return display_name(result)
        if result.error is not None:
            return short_error(result) if column == self.TOP1 else ""
        best = result.top[0] if result.top else None
        if column == self.TOP1:
            return best.label if best else ""
        if column == self.CONFIDENCE:
            return format_percent(best.prob) if best else ""
        return format_ms(result.ms)

    def _warning_icon(self) -> QIcon:
        if self._error_icon is None:
            self._error_icon = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        return self._error_icon


class _ElideEndDelegate(QStyledItemDelegate):
    """Top-1 cells cut at the end: an error message's start says what went wrong."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


class BatchResults(QSplitter):
    """The batch table (sortable; arrival order until a header is clicked) beside the selected row's result card."""

    def __init__(self, model: ResultsTableModel, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.model = model
        self.table = QTableView()
        self.table.setModel(model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keeps both ends of long file names
        self.table.setItemDelegateForColumn(ResultsTableModel.TOP1, _ElideEndDelegate(self.table))
        self.table.verticalHeader().hide()
        # Fixed row heights and column widths: measuring contents would walk every row on each appended chunk.
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 10)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(ResultsTableModel.NUMBER, Qt.SortOrder.AscendingOrder)
        header = self.table.horizontalHeader()
        metrics = self.table.fontMetrics()
        for column, sample in (
            (ResultsTableModel.NUMBER, "00000"),
            (ResultsTableModel.CONFIDENCE, "Confidence"),
            (ResultsTableModel.TIME, "0000 ms"),
        ):
            header.resizeSection(column, metrics.horizontalAdvance(sample) + 28)
        header.setSectionResizeMode(ResultsTableModel.FILE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(ResultsTableModel.TOP1, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(self._show_selected)
        self.card = ResultCard()
        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.card)
        detail_layout.addStretch(1)
        detail.setMinimumWidth(DETAIL_MIN_WIDTH)  # room for ImageNet's long labels beside their bars
        self.addWidget(self.table)
        self.addWidget(detail)
        self.setStretchFactor(0, 1)
        self.setCollapsible(0, False)

    def select_first_if_none(self) -> None:
        if not self.table.currentIndex().isValid() and self.model.rowCount() > 0:
            self.table.setCurrentIndex(self.model.index(0, 0))

    @Slot()
    def _show_selected(self) -> None:
        index = self.table.currentIndex()
        if index.isValid():
            self.card.show_result(self.model.result_at(index.row()))
        else:
            self.card.clear()


@dataclass(frozen=True)
class SetProgress:
    """Where the current set of requests stands, as the view counts it."""

    received: int = 0
    total: int = 0  # images in the requests the worker has started; grows as queued drops start
    running: bool = False
    waiting: int = 0  # requests queued behind the running one, not yet counted in `total`
    failed: int = 0
    cancelling: bool = False
    cancelled: bool = False
    seconds: float = 0.0


class SetProgressBar(QWidget):
    """"12 / 50", what is happening ("Classifying… · 1 more drop waiting", "Done in 3.1 s") and Cancel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(220)
        self.summary = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop classifying; the results so far stay")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.summary, 1)
        layout.addWidget(self.cancel_button)

    def show_progress(self, state: SetProgress) -> None:
        if state.running and state.total == 0:
            self.bar.setRange(0, 0)  # still finding images in folders: an honest "working" bar
        else:
            self.bar.setRange(0, max(state.total, 1))
            self.bar.setValue(min(state.received, state.total))
            self.bar.setFormat(f"{state.received} / {state.total}")
        self.cancel_button.setVisible(state.running)
        self.cancel_button.setEnabled(state.running and not state.cancelling)
        if state.cancelling:
            text = "Cancelling…"
        elif state.running:
            text = "Finding images…" if state.total == 0 else "Classifying…"
            if state.waiting:
                text += f" · {state.waiting} more drop{'s' if state.waiting > 1 else ''} waiting"
        elif state.cancelled:
            text = f"Cancelled · {state.received} of {state.total} classified"
        else:
            text = f"Done in {format_ms(state.seconds * 1000)}"
        if state.failed:
            text += f" · {state.failed} could not be read"
        self.summary.setText(text)
