"""How classifications look on screen: the result card with its confidence bars, and the progress of a set.

The batch table is in gui.results_table."""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPalette, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QStyleOptionFocusRect,
    QStylePainter,
    QVBoxLayout,
    QWidget,
)

from engine.events import CancelToken
from engine.results import ImageResult
from gui.background import BackgroundCalls, background_calls

if TYPE_CHECKING:
    import numpy as np

MAX_BARS = 5
ERROR_COLOR = QColor("#c62828")

PACE_AFTER_S = 2.0  # a batch's speed and time left show after this long: sooner they would jump about


def format_ms(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def format_duration(seconds: float) -> str:
    """A clock-style duration: "0:42", "12:05", "1:02:09"."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


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
    """Up to five rows of label, bar and percentage, highest first. Once made clickable, a click on a row says
    which (row_clicked), and one row can be marked in bold.

    Clickable bars take the keyboard focus too (Tab), so a keyboard user reaches every row: the arrow keys choose
    the row above or below the marked one, the keys 1-5 a row by its place, Space or Enter the marked row (or the
    top one), each as a click on that row would.
    """

    row_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._click_tip = ""  # set by make_clickable
        self._marked: int | None = None
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
        self.mark(None)
        for row, (label, bar, percent) in enumerate(self.rows):
            visible = row < len(result.top)
            for widget in (label, bar, percent):
                widget.setVisible(visible)
            if visible:
                top = result.top[row]
                label.setText(top.label)
                tip = f"{top.label} (class {top.index}){self._click_tip}"
                for widget in (label, bar, percent):
                    widget.setToolTip(tip)
                bar.setValue(round(top.prob * 1000))
                percent.setText(format_percent(top.prob))

    def visible_count(self) -> int:
        return sum(1 for label, _bar, _percent in self.rows if not label.isHidden())

    def make_clickable(self, tip: str) -> None:
        """Rows answer clicks from now on; `tip` is added to each row's tooltip, to say what a click does."""
        self._click_tip = f"\n{tip}"
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Classes")
        self.setAccessibleDescription(f"{tip} Arrow keys or 1 to {MAX_BARS} choose a class.")

    def mark(self, row: int | None) -> None:
        """Show the label of `row` (or of none) in bold."""
        self._marked = row
        for index, (label, _bar, _percent) in enumerate(self.rows):
            font = label.font()
            font.setBold(index == row)
            label.setFont(font)
        self.update()  # the focus frame follows the marked row

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        row = self._row_for_key(event.key()) if self._click_tip else None
        if row is None:
            return super().keyPressEvent(event)
        self.row_clicked.emit(row)

    def _row_for_key(self, key: int) -> int | None:
        count = self.visible_count()
        if not count:
            return None
        marked = self._marked
        if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):  # at the first or last row an arrow leaves it marked
            step = 1 if key == Qt.Key.Key_Down else -1
            row = 0 if marked is None else min(max(marked + step, 0), count - 1)
            return None if row == marked else row
        if key in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return 0 if marked is None else marked
        if Qt.Key.Key_1 <= key < Qt.Key.Key_1 + count:
            return key - Qt.Key.Key_1
        return None

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """With the keyboard focus, a focus frame around the marked row (around all rows while none is)."""
        super().paintEvent(event)
        if not self.hasFocus() or not self.visible_count():
            return
        shown = [row for row, widgets in enumerate(self.rows) if not widgets[0].isHidden()]
        first, last = (self._marked, self._marked) if self._marked in shown else (shown[0], shown[-1])
        top, _ = self._row_span(first)
        _, bottom = self._row_span(last)
        option = QStyleOptionFocusRect()
        option.initFrom(self)
        option.rect = QRect(0, top - 2, self.width(), bottom - top + 5)
        painter = QStylePainter(self)
        painter.drawPrimitive(QStyle.PrimitiveElement.PE_FrameFocusRect, option)

    def _row_span(self, row: int) -> tuple[int, int]:
        """The top and bottom y of a row's widgets."""
        widgets = self.rows[row]
        return min(widget.geometry().top() for widget in widgets), max(w.geometry().bottom() for w in widgets)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if not self._click_tip or event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        y = event.position().y()
        for row, widgets in enumerate(self.rows):
            if widgets[0].isHidden():
                continue
            top, bottom = self._row_span(row)
            if top - 3 <= y <= bottom + 3:  # the gap between two rows counts too
                self.row_clicked.emit(row)
                return
        super().mousePressEvent(event)


class ResultCard(QFrame):
    """One image's result: its thumbnail, name, top-k confidence bars and time taken, or its error."""

    THUMBNAIL_BOX = 192
    result_shown = Signal()  # show_result or clear: the card shows another result, or none

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
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(12, 12, 12, 12)
        for widget in (self.thumbnail, self.title, self.bars, self.error, self.timing):
            self._layout.addWidget(widget)
        self.result: ImageResult | None = None
        self._preview: Future | None = None  # a dropped thumbnail being decoded again for this card
        self._preview_wanted = CancelToken()
        preview_decoder().done.connect(self._preview_decoded, Qt.ConnectionType.QueuedConnection)
        self.clear()

    def clear(self) -> None:
        self.result = None
        self._forget_preview()
        self.thumbnail.clear()
        self.title.clear()
        self.title.setToolTip("")
        self.timing.clear()
        self.error.hide()
        self.bars.show_top(ImageResult(""))
        self.result_shown.emit()

    def add_below_bars(self, widget: QWidget) -> None:
        self._layout.insertWidget(self._layout.indexOf(self.bars) + 1, widget)

    def show_picture(self, pixels: np.ndarray) -> None:
        """Show `pixels` (HxWx3 uint8 RGB) in the thumbnail's place, for the result shown now."""
        self._forget_preview()
        self._show_thumbnail(pixels)

    def show_result(self, result: ImageResult) -> None:
        self.result = result
        name = display_name(result)
        metrics = self.title.fontMetrics()
        self.title.setText(metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, self.THUMBNAIL_BOX + 120))
        self.title.setToolTip(result.path)
        self._forget_preview()
        if result.thumbnail is not None:
            self._show_thumbnail(result.thumbnail)
        elif result.error:
            self.thumbnail.clear()
            self.thumbnail.setText("No preview")
        else:  # a big batch's older rows drop their thumbnails: decode the file again, off the GUI thread
            self.thumbnail.clear()
            self.thumbnail.setText("Loading preview…")
            self._preview = preview_decoder().submit(
                _decode_preview, result.path, self.THUMBNAIL_BOX, self._preview_wanted
            )
        self.bars.show_top(result)
        self.error.setVisible(result.error is not None)
        self.error.setText(short_error(result))
        self.error.setToolTip(result.error or "")
        self.timing.setText("" if result.error else f"Took {format_ms(result.ms)}")
        self.result_shown.emit()

    def _show_thumbnail(self, pixels: np.ndarray) -> None:
        pixmap = thumbnail_pixmap(pixels)
        box = QSize(self.THUMBNAIL_BOX, self.THUMBNAIL_BOX)
        if pixmap.width() > box.width() or pixmap.height() > box.height():
            pixmap = pixmap.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.thumbnail.setPixmap(pixmap)

    def _forget_preview(self) -> None:
        """The card shows something else now: a preview still waiting to be decoded is skipped."""
        self._preview_wanted.cancel()
        self._preview_wanted = CancelToken()
        self._preview = None

    def _preview_decoded(self, decoded: Future) -> None:
        if decoded is not self._preview:
            return  # another card's preview, or one this card no longer shows
        self._preview = None
        pixels = decoded.result()
        if pixels is None:
            self.thumbnail.setText("No preview")
        else:
            self._show_thumbnail(pixels)


def preview_decoder() -> BackgroundCalls:
    return background_calls("previews")


def _decode_preview(path: str, size: int, wanted: CancelToken) -> np.ndarray | None:
    """On the preview thread: `path`'s thumbnail again, or None when it cannot be read (moved, deleted) or the
    card moved on while this waited (arrow keys through a table queue one decode per row)."""
    if wanted.cancelled:
        return None
    from engine.predict import file_thumbnail  # deferred: Pillow's plugins, ~50 ms of start-up

    return file_thumbnail(path, size)


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
    seconds: float = 0.0  # since the set started while it runs; what it took once done


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
            self.bar.setFormat(f"{state.received:,} / {state.total:,}")
        self.cancel_button.setVisible(state.running)
        self.cancel_button.setEnabled(state.running and not state.cancelling)
        if state.cancelling:
            text = "Cancelling…"
        elif state.running:
            text = "Finding images…" if state.total == 0 else "Classifying…" + _pace(state, with_time_left=True)
            if state.waiting:
                text += f" · {state.waiting} more drop{'s' if state.waiting > 1 else ''} waiting"
        elif state.cancelled:
            text = f"Cancelled · {state.received:,} of {state.total:,} classified"
        else:
            took = format_ms(state.seconds * 1000) if state.seconds < 60 else format_duration(state.seconds)
            text = f"Done in {took}" + _pace(state, with_time_left=False)
        if state.failed:
            text += f" · {state.failed:,} could not be read"
        self.summary.setText(text)


def _pace(state: SetProgress, with_time_left: bool) -> str:
    """" · About 3:20 left · 52 images/s", once a set has run long enough for its pace to mean something."""
    if state.seconds < PACE_AFTER_S or state.received < 2:
        return ""
    rate = state.received / state.seconds
    left = f" · About {format_duration((state.total - state.received) / rate)} left" if with_time_left else ""
    return f"{left} · {rate:.0f} images/s" if rate >= 10 else f"{left} · {rate:.1f} images/s"
