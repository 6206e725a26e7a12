"""The confusion matrix of an evaluation, painted with QPainter: which classes were taken for which, and a way to
the mistakes of one cell."""
from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QHelpEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from engine.training.metrics import seen_classes

HEAT_COLOUR = QColor("#1565c0")
CHOSEN_COLOUR = QColor("#f57c00")  # the chosen cell's outline: orange reads on white and on the blue heat


class ConfusionMatrixView(QWidget):
    """Rows are true classes, columns predicted ones; colour is the row's share (so small classes read as clearly as
    large ones), the number is the count of images. Only the classes that have images or were answered are shown:
    a 1000-class model checked on two folders shows a few rows, not a million cells.

    A click on a cell of mistakes says which (cell_clicked); the chosen cell is outlined. From the keyboard, the
    arrow keys move a dashed frame from cell to cell and Space or Enter clicks the framed one. Rows and columns are
    class indexes into `labels` throughout.
    """

    MIN_CELL = 22
    MAX_CELL = 64
    MAX_LABEL = 160
    cell_clicked = Signal(int, int)  # true class row, predicted class column: a cell holding mistakes

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: tuple[str, ...] = ()
        self.confusion: tuple[tuple[int, ...], ...] = ()
        self.shown: tuple[int, ...] = ()  # the classes with images or answers, in class order
        self._place: dict[int, int] = {}  # class index -> its row (and column) on screen
        self._label_width = 0
        self.chosen: tuple[int, int] | None = None
        self.current = (0, 0)  # the keyboard's cell
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_matrix(self, labels: Sequence[str], confusion: Sequence[Sequence[int]]) -> None:
        self.labels = tuple(labels)
        self.confusion = tuple(tuple(int(v) for v in row) for row in confusion)
        self.shown = seen_classes(self.confusion) if self.confusion else ()
        self._place = {index: place for place, index in enumerate(self.shown)}
        metrics = self.fontMetrics()
        widest = max((metrics.horizontalAdvance(self.labels[c]) for c in self.shown), default=0)
        self._label_width = min(widest + 12, self.MAX_LABEL)
        self.chosen = None
        self.current = (self.shown[0], self.shown[0]) if self.shown else (0, 0)
        self.updateGeometry()
        self.update()

    def choose(self, cell: tuple[int, int] | None) -> None:
        """Outline `cell` (row, column), or none."""
        self.chosen = cell
        self.update()

    def cell_rect(self, row: int, column: int) -> QRectF:
        left, top, cell = self._layout()
        return QRectF(left + self._place[column] * cell, top + self._place[row] * cell, cell, cell)

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        left, top, cell = self._layout()
        row, column = math.floor((y - top) / cell), math.floor((x - left) / cell)
        count = len(self.shown)
        return (self.shown[row], self.shown[column]) if 0 <= row < count and 0 <= column < count else None

    def holds_mistakes(self, cell: tuple[int, int] | None) -> bool:
        return cell is not None and cell[0] != cell[1] and self.confusion[cell[0]][cell[1]] > 0

    def share(self, row: int, column: int) -> float:
        total = sum(self.confusion[row])
        return self.confusion[row][column] / total if total else 0.0

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        cell = self.cell_at(event.position().x(), event.position().y())
        if cell is not None:
            self.current = cell  # the keyboard goes on from the cell clicked
            self.update()
        if event.button() == Qt.MouseButton.LeftButton and self.holds_mistakes(cell):
            self.cell_clicked.emit(*cell)
            return
        super().mousePressEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        moves = {Qt.Key.Key_Left: (0, -1), Qt.Key.Key_Right: (0, 1), Qt.Key.Key_Up: (-1, 0), Qt.Key.Key_Down: (1, 0)}
        last = len(self.shown) - 1
        if event.key() in moves and last >= 0:
            places = (self._place[at] + by for at, by in zip(self.current, moves[event.key()]))
            self.current = tuple(self.shown[min(max(place, 0), last)] for place in places)
            self.update()
        elif event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.holds_mistakes(
            self.current
        ):
            self.cell_clicked.emit(*self.current)
        else:
            super().keyPressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        over = self.holds_mistakes(self.cell_at(event.position().x(), event.position().y()))
        self.setCursor(Qt.CursorShape.PointingHandCursor if over else Qt.CursorShape.ArrowCursor)
        super().mouseMoveEvent(event)

    def _layout(self) -> tuple[float, float, float]:
        """(left, top, cell): where the grid starts and how big its cells are at the current size."""
        left = top = self.fontMetrics().height() + 6 + self._label_width
        count = max(len(self.shown), 1)
        cell = min((self.width() - left - 4) / count, (self.height() - top - 4) / count, self.MAX_CELL)
        return left, top, max(cell, self.MIN_CELL)

    def minimumSizeHint(self) -> QSize:
        side = self.fontMetrics().height() + 6 + self._label_width + max(len(self.shown), 1) * self.MIN_CELL + 4
        return QSize(side, side)

    def sizeHint(self) -> QSize:
        count = max(len(self.shown), 1)
        cell = min(self.MAX_CELL, max(self.MIN_CELL, 360 // count))
        side = self.fontMetrics().height() + 6 + self._label_width + count * cell + 4
        return QSize(side, side)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if not self.shown:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text, base = palette.color(QPalette.ColorRole.WindowText), palette.color(QPalette.ColorRole.Base)
        metrics = painter.fontMetrics()
        line = metrics.height()
        left, top, cell = self._layout()
        count, label_width = len(self.shown), self._label_width
        painter.setPen(text)
        painter.drawText(QRectF(left, 0, cell * count, line + 2), Qt.AlignmentFlag.AlignHCenter, "predicted class")
        painter.save()
        painter.translate(0, top + cell * count / 2)
        painter.rotate(-90)
        painter.drawText(QRectF(-cell * count / 2, 0, cell * count, line + 2), Qt.AlignmentFlag.AlignHCenter,
                         "true class")
        painter.restore()
        # Only the cells in the part being repainted: a big matrix in a scroll area shows a few of them at a time.
        area = event.rect()
        rows = range(max(math.floor((area.top() - top) / cell), 0),
                     min(math.ceil((area.bottom() + 1 - top) / cell), count))
        columns = range(max(math.floor((area.left() - left) / cell), 0),
                        min(math.ceil((area.right() + 1 - left) / cell), count))
        for place in range(count):
            shown = metrics.elidedText(self.labels[self.shown[place]], Qt.TextElideMode.ElideRight, label_width - 6)
            if place in rows:
                painter.drawText(QRectF(line + 6, top + place * cell, label_width - 6, cell),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, shown)
            if place in columns:
                painter.save()  # column labels run upwards, so long names need no more width than the cell
                painter.translate(left + place * cell + cell / 2, top - 4)
                painter.rotate(-90)
                painter.drawText(QRectF(0, -line / 2, label_width - 6, line), Qt.AlignmentFlag.AlignLeft, shown)
                painter.restore()
        for row_place in rows:
            row = self.shown[row_place]
            for column_place in columns:
                column = self.shown[column_place]
                share = self.share(row, column)
                rect = QRectF(left + column_place * cell, top + row_place * cell, cell, cell)
                painter.fillRect(rect, _blend(base, HEAT_COLOUR, share))
                value = str(self.confusion[row][column])
                if metrics.horizontalAdvance(value) + 4 <= cell:
                    painter.setPen(QColor("white") if share > 0.5 else text)
                    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, value)
        painter.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(left, top, cell * count, cell * count))
        if self.chosen is not None:
            painter.setPen(QPen(CHOSEN_COLOUR, 3))
            painter.drawRect(self.cell_rect(*self.chosen).adjusted(1.5, 1.5, -1.5, -1.5))
        if self.hasFocus():
            on_dark = self.share(*self.current) > 0.5  # as the cell's number: white on the dark heat
            painter.setPen(QPen(QColor("white") if on_dark else text, 1, Qt.PenStyle.DashLine))
            painter.drawRect(self.cell_rect(*self.current).adjusted(4, 4, -4, -4))

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            found = self.cell_at(event.pos().x(), event.pos().y())
            if found is None:
                QToolTip.hideText()
            else:
                row, column = found
                count = self.confusion[row][column]
                click = "\nClick to show these mistakes below." if self.holds_mistakes(found) else ""
                QToolTip.showText(event.globalPos(), (
                    f"true: {self.labels[row]} · predicted: {self.labels[column]}\n"
                    f"{count} image{'s' if count != 1 else ''} ({self.share(row, column) * 100:.0f} % of "
                    f"{self.labels[row]}){click}"
                ), self)
            return True
        return super().event(event)


def _blend(low: QColor, high: QColor, amount: float) -> QColor:
    amount = min(max(amount, 0.0), 1.0)
    return QColor(
        round(low.red() + (high.red() - low.red()) * amount),
        round(low.green() + (high.green() - low.green()) * amount),
        round(low.blue() + (high.blue() - low.blue()) * amount),
    )
