"""The fine-tuning wizard's own small charts, painted with QPainter: training curves and the confusion matrix."""
from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QHelpEvent, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

# Mid-tone colours that read on light and dark palettes; train solid, validation dashed as well as coloured,
# so the two stay apart for colour-blind users too.
TRAIN_COLOUR = QColor("#1f77b4")
VAL_COLOUR = QColor("#e66100")
BEST_COLOUR = QColor("#2e7d32")
HEAT_COLOUR = QColor("#1565c0")
CHOSEN_COLOUR = QColor("#f57c00")  # the chosen cell's outline: orange reads on white and on the blue heat


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values (1, 2 or 5 × 10^k apart) covering low..high."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-6:
        ticks.append(round(value, 10))
        value += step
    return ticks


class CurveChart(QWidget):
    """A line chart of per-epoch values, one line per series, with axes, a legend and a best-epoch marker."""

    def __init__(self, title: str, percent: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.percent = percent  # values are fractions shown as 0-100 %
        self._series: dict[str, tuple[QColor, Qt.PenStyle, list[tuple[float, float]]]] = {}
        self._x_max = 1
        self._best = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(260, 180)

    def sizeHint(self) -> QSize:
        return QSize(440, 260)

    def add_series(self, name: str, colour: QColor, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> None:
        self._series[name] = (colour, style, [])

    def clear(self) -> None:
        for _colour, _style, points in self._series.values():
            points.clear()
        self._best = 0
        self.update()

    def add_point(self, name: str, x: float, y: float) -> None:
        if math.isfinite(y):  # a diverged loss (inf, nan) would flatten every other point
            self._series[name][2].append((x, y))
            self.update()

    def points(self, name: str) -> list[tuple[float, float]]:
        return list(self._series[name][2])

    def set_x_max(self, x_max: int) -> None:
        self._x_max = max(1, x_max)
        self.update()

    def set_best(self, x: int) -> None:
        self._best = x
        self.update()

    @property
    def best(self) -> int:
        return self._best

    # Painting

    def _y_range(self) -> tuple[float, float]:
        if self.percent:
            return 0.0, 1.0
        values = [y for _c, _s, points in self._series.values() for _x, y in points]
        top = max(values, default=1.0)
        return 0.0, (top * 1.1 if top > 0 else 1.0)

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text, grid = palette.color(QPalette.ColorRole.WindowText), palette.color(QPalette.ColorRole.Mid)
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        metrics = painter.fontMetrics()
        line = metrics.height()
        y_low, y_high = self._y_range()
        y_ticks = nice_ticks(y_low, y_high, 4)
        y_high = max(y_high, y_ticks[-1])
        labels = [self._y_label(v) for v in y_ticks]
        left = max(metrics.horizontalAdvance(label) for label in labels) + 12
        plot = QRectF(left, line * 2 + 4, self.width() - left - 14, self.height() - line * 2 - 4 - line * 2 - 8)
        if plot.width() < 40 or plot.height() < 30:
            return
        x_low, x_high = 1, max(self._x_max, *(int(x) for _c, _s, p in self._series.values() for x, _y in p), 2)

        def to_screen(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + (x - x_low) / (x_high - x_low) * plot.width(),
                           plot.bottom() - (y - y_low) / (y_high - y_low) * plot.height())

        bold = QFont(painter.font())
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text)
        painter.drawText(QRectF(4, 2, self.width() - 8, line + 2), Qt.AlignmentFlag.AlignLeft, self.title)
        painter.setFont(self.font())
        for value, label in zip(y_ticks, labels):
            point = to_screen(x_low, value)
            painter.setPen(QPen(grid, 1, Qt.PenStyle.DotLine))
            painter.drawLine(QPointF(plot.left(), point.y()), QPointF(plot.right(), point.y()))
            painter.setPen(text)
            painter.drawText(QRectF(0, point.y() - line / 2, left - 6, line),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
        for value in nice_ticks(x_low, x_high, 6):
            if value != int(value) or value < x_low:
                continue
            point = to_screen(value, y_low)
            painter.setPen(QPen(grid, 1))
            painter.drawLine(point, QPointF(point.x(), point.y() + 4))
            painter.setPen(text)
            painter.drawText(QRectF(point.x() - 30, plot.bottom() + 4, 60, line), Qt.AlignmentFlag.AlignHCenter,
                             str(int(value)))
        painter.drawText(QRectF(plot.left(), plot.bottom() + line + 4, plot.width(), line + 2),
                         Qt.AlignmentFlag.AlignHCenter, "epoch")
        painter.setPen(QPen(text, 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())
        self._paint_best(painter, plot, to_screen, line)
        self._paint_series(painter, to_screen)
        self._paint_legend(painter, plot, text, line)
        if not any(points for _c, _s, points in self._series.values()):
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "Appears after the first epoch")

    def _y_label(self, value: float) -> str:
        return f"{value * 100:.0f} %" if self.percent else f"{value:.3g}"

    def _paint_best(self, painter: QPainter, plot: QRectF, to_screen, line: int) -> None:
        if not self._best:
            return
        x = to_screen(self._best, 0).x()
        painter.setPen(QPen(BEST_COLOUR, 1.5, Qt.PenStyle.DashLine))
        painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        label = f"best: {self._best}"
        width = painter.fontMetrics().horizontalAdvance(label) + 6
        left = min(max(x - width / 2, plot.left()), plot.right() - width)
        painter.setPen(BEST_COLOUR)
        painter.drawText(QRectF(left, plot.top() - line - 2, width, line), Qt.AlignmentFlag.AlignCenter, label)

    def _paint_series(self, painter: QPainter, to_screen) -> None:
        for colour, style, points in self._series.values():
            if not points:
                continue
            path = QPainterPath(to_screen(*points[0]))
            for x, y in points[1:]:
                path.lineTo(to_screen(x, y))
            painter.setPen(QPen(colour, 2, style))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
            painter.setPen(QPen(colour, 1))
            painter.setBrush(colour)
            for x, y in points:
                painter.drawEllipse(to_screen(x, y), 2.5, 2.5)

    def _paint_legend(self, painter: QPainter, plot: QRectF, text: QColor, line: int) -> None:
        metrics = painter.fontMetrics()
        x = plot.right()
        for name, (colour, style, _points) in reversed(self._series.items()):
            x -= metrics.horizontalAdvance(name) + 4
            painter.setPen(text)
            painter.drawText(QRectF(x, 2, metrics.horizontalAdvance(name) + 4, line + 2), Qt.AlignmentFlag.AlignLeft,
                             name)
            x -= 24
            painter.setPen(QPen(colour, 2, style))
            painter.drawLine(QPointF(x, 2 + line / 2 + 1), QPointF(x + 20, 2 + line / 2 + 1))
            x -= 12


class ConfusionMatrixView(QWidget):
    """Rows are true classes, columns predicted ones; colour is the row's share (so small classes read as clearly as
    large ones), the number is the count of images. A click on a cell of mistakes says which (cell_clicked); the
    chosen cell is outlined. From the keyboard, the arrow keys move a dashed frame from cell to cell and Space or
    Enter clicks the framed one."""

    MIN_CELL = 22
    MAX_CELL = 64
    MAX_LABEL = 160
    cell_clicked = Signal(int, int)  # true class row, predicted class column: a cell holding mistakes

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: tuple[str, ...] = ()
        self.confusion: tuple[tuple[int, ...], ...] = ()
        self.chosen: tuple[int, int] | None = None
        self.current = (0, 0)  # the keyboard's cell
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_matrix(self, labels: Sequence[str], confusion: Sequence[Sequence[int]]) -> None:
        self.labels = tuple(labels)
        self.confusion = tuple(tuple(int(v) for v in row) for row in confusion)
        self.chosen, self.current = None, (0, 0)
        self.updateGeometry()
        self.update()

    def choose(self, cell: tuple[int, int] | None) -> None:
        """Outline `cell` (row, column), or none."""
        self.chosen = cell
        self.update()

    def cell_rect(self, row: int, column: int) -> QRectF:
        left, top, cell = self._layout()
        return QRectF(left + column * cell, top + row * cell, cell, cell)

    def holds_mistakes(self, cell: tuple[int, int] | None) -> bool:
        return cell is not None and cell[0] != cell[1] and self.confusion[cell[0]][cell[1]] > 0

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
        last = len(self.labels) - 1
        if event.key() in moves and last >= 0:
            step = moves[event.key()]
            self.current = tuple(min(max(at + by, 0), last) for at, by in zip(self.current, step))
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

    def _label_width(self) -> int:
        metrics = self.fontMetrics()
        return min(max((metrics.horizontalAdvance(label) for label in self.labels), default=0) + 12, self.MAX_LABEL)

    def _layout(self) -> tuple[float, float, float]:
        """(left, top, cell): where the grid starts and how big its cells are at the current size."""
        line = self.fontMetrics().height()
        label = self._label_width()
        left, top = line + 6 + label, line + 6 + label
        count = max(len(self.labels), 1)
        cell = min((self.width() - left - 4) / count, (self.height() - top - 4) / count, self.MAX_CELL)
        return left, top, max(cell, self.MIN_CELL)

    def minimumSizeHint(self) -> QSize:
        line, label, count = self.fontMetrics().height(), self._label_width(), max(len(self.labels), 1)
        side = line + 6 + label + count * self.MIN_CELL + 4
        return QSize(side, side)

    def sizeHint(self) -> QSize:
        line, label, count = self.fontMetrics().height(), self._label_width(), max(len(self.labels), 1)
        side = line + 6 + label + count * min(self.MAX_CELL, max(self.MIN_CELL, 360 // count)) + 4
        return QSize(side, side)

    def share(self, row: int, column: int) -> float:
        total = sum(self.confusion[row])
        return self.confusion[row][column] / total if total else 0.0

    def paintEvent(self, _event) -> None:
        if not self.labels:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text, base = palette.color(QPalette.ColorRole.WindowText), palette.color(QPalette.ColorRole.Base)
        metrics = painter.fontMetrics()
        line = metrics.height()
        left, top, cell = self._layout()
        count = len(self.labels)
        label_width = self._label_width()
        painter.setPen(text)
        painter.drawText(QRectF(left, 0, cell * count, line + 2), Qt.AlignmentFlag.AlignHCenter, "predicted class")
        painter.save()
        painter.translate(0, top + cell * count / 2)
        painter.rotate(-90)
        painter.drawText(QRectF(-cell * count / 2, 0, cell * count, line + 2), Qt.AlignmentFlag.AlignHCenter,
                         "true class")
        painter.restore()
        for index, label in enumerate(self.labels):
            shown = metrics.elidedText(label, Qt.TextElideMode.ElideRight, label_width - 6)
            painter.drawText(QRectF(line + 6, top + index * cell, label_width - 6, cell),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, shown)
            painter.save()  # column labels run upwards, so long names need no more width than the cell
            painter.translate(left + index * cell + cell / 2, top - 4)
            painter.rotate(-90)
            painter.drawText(QRectF(0, -line / 2, label_width - 6, line), Qt.AlignmentFlag.AlignLeft, shown)
            painter.restore()
        for row in range(count):
            for column in range(count):
                share = self.share(row, column)
                rect = self.cell_rect(row, column)
                colour = _blend(base, HEAT_COLOUR, share)
                painter.fillRect(rect, colour)
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

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        left, top, cell = self._layout()
        row, column = int((y - top) // cell), int((x - left) // cell)
        if x < left or y < top or not (0 <= row < len(self.labels) and 0 <= column < len(self.labels)):
            return None
        return row, column

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
