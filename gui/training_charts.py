"""The fine-tuning wizard's training curves, painted with QPainter (the confusion matrix is gui.confusion_matrix)."""
from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

# Mid-tone colours that read on light and dark palettes; train solid, validation dashed as well as coloured,
# so the two stay apart for colour-blind users too.
TRAIN_COLOUR = QColor("#1f77b4")
VAL_COLOUR = QColor("#e66100")
BEST_COLOUR = QColor("#2e7d32")


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
