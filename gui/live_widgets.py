"""The Live tab's video surface: the newest frame scaled to fit, the prediction and speeds drawn over it, and a
region-of-interest box the user drags and resizes."""
from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.live.sources import Frame, opencv
from engine.live.types import LivePrediction
from engine.results import TopClass
from gui.result_widgets import format_percent

if TYPE_CHECKING:
    import numpy as np

Roi = tuple[float, float, float, float]  # (x, y, width, height) as fractions of the frame
MIN_ROI = 0.05  # the smallest box side, as a fraction of the frame: smaller is no picture a model can read
HANDLE_PX = 12  # how close to a corner a press grabs it for resizing
PANEL = QColor(0, 0, 0, 165)  # overlays sit on any picture, so they bring their own dark background
TEXT = QColor(255, 255, 255)
DIM_TEXT = QColor(255, 255, 255, 190)
BAR_BACK = QColor(255, 255, 255, 45)
BAR_TOP = QColor(76, 175, 80)
BAR_OTHER = QColor(144, 202, 249)
OUTSIDE_ROI = QColor(0, 0, 0, 110)
CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
CORNER_CURSORS = {
    "top_left": Qt.CursorShape.SizeFDiagCursor,
    "bottom_right": Qt.CursorShape.SizeFDiagCursor,
    "top_right": Qt.CursorShape.SizeBDiagCursor,
    "bottom_left": Qt.CursorShape.SizeBDiagCursor,
}


def bgr_to_qimage(bgr: np.ndarray, max_width: int, max_height: int) -> QImage:
    """A QImage that owns a copy of the pixels (so it stays valid whatever becomes of the array), shrunk to fit
    max_width x max_height: OpenCV shrinks an HD frame in a millisecond, where painting it scaled takes many."""
    import numpy as np  # imported by the frame's source long before: only the window's start-up goes without it

    cv2 = opencv()
    height, width = bgr.shape[:2]
    scale = min(max_width / width, max_height / height)
    if 0 < scale < 1:  # 0 while the widget has no size yet
        size = (max(round(width * scale), 1), max(round(height * scale), 1))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    pixels = np.ascontiguousarray(bgr)
    height, width = pixels.shape[:2]
    return QImage(pixels.data, width, height, pixels.strides[0], QImage.Format.Format_BGR888).copy()


def centre_roi(frame_width: int, frame_height: int, side: float = 0.6) -> Roi:
    """A centred square box whose side is `side` of the frame's shorter side (models see squares)."""
    pixels = side * min(frame_width, frame_height)
    width, height = pixels / frame_width, pixels / frame_height
    return ((1 - width) / 2, (1 - height) / 2, width, height)


def prediction_lines(top: tuple[TopClass, ...]) -> list[str]:
    """The overlay's rows as the user reads them, e.g. "tabby 87.1%"."""
    return [f"{item.label} {format_percent(item.prob)}" for item in top]


def stats_text(capture_fps: float, prediction: LivePrediction | None, latency_ms: float | None) -> str:
    model = f"{prediction.inference_fps:.1f} fps" if prediction and prediction.inference_fps > 0 else "–"
    latency = f"{latency_ms:.0f} ms" if latency_ms is not None else "–"
    return f"capture {capture_fps:.0f} fps · model {model} · latency {latency}"


class FrameRate:
    """Frames per second over about the last second, from the indices and capture times of the frames seen."""

    def __init__(self) -> None:
        self._seen: collections.deque[tuple[int, float]] = collections.deque()

    def add(self, frame: Frame) -> None:
        self._seen.append((frame.index, frame.captured_at))
        while len(self._seen) > 2 and frame.captured_at - self._seen[0][1] > 1.0:
            self._seen.popleft()

    @property
    def fps(self) -> float:
        (first, started), (last, ended) = (self._seen[0], self._seen[-1]) if self._seen else ((0, 0.0), (0, 0.0))
        return (last - first) / (ended - started) if ended > started else 0.0


def moved_roi(start: Roi, grip: str, dx: float, dy: float) -> Roi:
    """The box after dragging `grip` ("move" or a corner) by (dx, dy) frame fractions, kept inside the frame."""
    x, y, width, height = start
    if grip == "move":
        return (min(max(x + dx, 0.0), 1 - width), min(max(y + dy, 0.0), 1 - height), width, height)
    left, top, right, bottom = x, y, x + width, y + height
    if "left" in grip:
        left = min(max(left + dx, 0.0), right - MIN_ROI)
    else:
        right = max(min(right + dx, 1.0), left + MIN_ROI)
    if "top" in grip:
        top = min(max(top + dy, 0.0), bottom - MIN_ROI)
    else:
        bottom = max(min(bottom + dy, 1.0), top + MIN_ROI)
    return (left, top, right - left, bottom - top)


class LiveVideo(QWidget):
    """Paints the frame it is given; it never fetches frames itself (the Live view's display timer does)."""

    roi_changed = Signal(object)  # Roi, while the user drags the box

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)  # the cursor shows where the box can be moved or resized
        self.frame_index = -1  # the index of the frame on screen; -1 before the first
        self.stats_text = ""
        self.model_name = ""
        self._image: QImage | None = None
        self._top: tuple[TopClass, ...] = ()
        self._notice = ""  # said in place of the prediction (no model yet, waiting…)
        self._placeholder = ""  # said in place of the picture before the first frame
        self._badge = ""
        self._roi: Roi | None = None
        self._drag: tuple[str, QPointF, Roi] | None = None

    def sizeHint(self) -> QSize:
        return QSize(800, 600)

    def minimumSizeHint(self) -> QSize:
        return QSize(320, 240)

    # ----- what the Live view tells it ---------------------------------------------------------------

    @property
    def image(self) -> QImage | None:
        return self._image

    @property
    def roi(self) -> Roi | None:
        return self._roi

    def show_frame(self, image: QImage, index: int) -> None:
        self._image, self.frame_index = image, index
        self.update()

    def show_prediction(self, top: tuple[TopClass, ...], model_name: str) -> None:
        self._top, self.model_name, self._notice = top, model_name, ""
        self.update()

    def top_lines(self) -> list[str]:
        return prediction_lines(self._top)

    @property
    def notice(self) -> str:
        return self._notice

    def show_notice(self, text: str) -> None:
        """Said in place of the prediction, e.g. that no model is loaded."""
        self._notice = text
        self.update()

    def set_placeholder(self, text: str) -> None:
        """Said in place of the picture while there is none."""
        self._placeholder = text
        self.update()

    def set_stats(self, text: str) -> None:
        if text != self.stats_text:
            self.stats_text = text
            self.update()

    @property
    def badge(self) -> str:
        return self._badge

    def set_badge(self, text: str) -> None:
        """A word on the stream's state in the top left corner ("Paused", "Reconnecting…"); empty for none."""
        self._badge = text
        self.update()

    def set_roi(self, roi: Roi | None) -> None:
        self._roi = roi
        self._drag = None
        self.update()

    def clear(self) -> None:
        """Back to no picture and no prediction, for a new stream."""
        self._image, self.frame_index, self._top, self.model_name = None, -1, (), ""
        self._notice = self._badge = self.stats_text = ""
        self.update()

    # ----- geometry ----------------------------------------------------------------------------------

    def image_rect(self) -> QRectF:
        """Where the frame is drawn: as large as fits, keeping its shape, centred."""
        if self._image is None or self._image.isNull():
            return QRectF(self.rect())
        size = QSize(self._image.size()).scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) / 2
        y = (self.height() - size.height()) / 2
        return QRectF(x, y, size.width(), size.height())

    def roi_rect(self) -> QRectF | None:
        if self._roi is None or self._image is None:
            return None
        area = self.image_rect()
        x, y, width, height = self._roi
        return QRectF(
            area.x() + x * area.width(), area.y() + y * area.height(), width * area.width(), height * area.height()
        )

    def _grip_at(self, point: QPointF) -> str | None:
        box = self.roi_rect()
        if box is None:
            return None
        corners = (box.topLeft(), box.topRight(), box.bottomLeft(), box.bottomRight())
        for name, corner in zip(CORNERS, corners):
            if abs(point.x() - corner.x()) <= HANDLE_PX and abs(point.y() - corner.y()) <= HANDLE_PX:
                return name
        return "move" if box.contains(point) else None

    # ----- dragging the box --------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        grip = self._grip_at(event.position()) if event.button() == Qt.MouseButton.LeftButton else None
        if grip is None or self._roi is None:
            super().mousePressEvent(event)
            return
        self._drag = (grip, event.position(), self._roi)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag is None:
            grip = self._grip_at(event.position())
            if grip is None:
                self.unsetCursor()
            else:
                self.setCursor(CORNER_CURSORS.get(grip, Qt.CursorShape.SizeAllCursor))
            super().mouseMoveEvent(event)
            return
        grip, start, start_roi = self._drag
        area = self.image_rect()
        delta = event.position() - start
        self._roi = moved_roi(start_roi, grip, delta.x() / area.width(), delta.y() / area.height())
        self.update()
        self.roi_changed.emit(self._roi)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is not None and event.button() == Qt.MouseButton.LeftButton:
            self._drag = None
            event.accept()
            return
        super().mouseReleaseEvent(event)

    # ----- painting ----------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.fillRect(self.rect(), QColor(17, 17, 17))
        if self._image is None:
            painter.setPen(DIM_TEXT)
            painter.drawText(
                QRectF(self.rect()).adjusted(24, 24, -24, -24),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._placeholder,
            )
        else:
            painter.drawImage(self.image_rect(), self._image)
            self._paint_roi(painter)
            self._paint_prediction(painter)
            self._paint_stats(painter)
            if self._badge:
                self._paint_badge(painter, self._badge)
            self._paint_handles(painter)  # last: the box's corners can always be seen and grabbed
        painter.end()

    def _paint_roi(self, painter: QPainter) -> None:
        box = self.roi_rect()
        if box is None:
            return
        area = self.image_rect()
        for outside in (  # the picture outside the box is dimmed: the model does not see it
            QRectF(area.left(), area.top(), area.width(), box.top() - area.top()),
            QRectF(area.left(), box.bottom(), area.width(), area.bottom() - box.bottom()),
            QRectF(area.left(), box.top(), box.left() - area.left(), box.height()),
            QRectF(box.right(), box.top(), area.right() - box.right(), box.height()),
        ):
            painter.fillRect(outside, OUTSIDE_ROI)
        painter.setPen(QPen(TEXT, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(box)

    def _paint_handles(self, painter: QPainter) -> None:
        box = self.roi_rect()
        if box is None:
            return
        painter.setPen(QPen(QColor(0, 0, 0, 160), 1))
        painter.setBrush(TEXT)
        side = HANDLE_PX * 0.6
        for corner in (box.topLeft(), box.topRight(), box.bottomLeft(), box.bottomRight()):
            painter.drawRect(QRectF(corner.x() - side / 2, corner.y() - side / 2, side, side))

    def _paint_prediction(self, painter: QPainter) -> None:
        """Bottom left: the top-k labels with confidence bars (or the notice), on a dark panel."""
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.15)
        metrics = QFontMetrics(font)
        pad, row = 10, metrics.height() + 8
        area = self.image_rect()
        width = min(380.0, area.width() - 2 * pad)
        # Bottom left, unless the crop box sits on the left: then bottom right, so the box stays in view.
        left = area.left() + pad
        if self._roi is not None and self._roi[0] + self._roi[2] / 2 < 0.5:
            left = area.right() - pad - width
        if not self._top:
            if not self._notice:
                return
            text_rect = QRectF(0, 0, width - 2 * pad, 1000)
            bounds = metrics.boundingRect(text_rect.toRect(), Qt.TextFlag.TextWordWrap, self._notice)
            panel = QRectF(left, area.bottom() - pad - bounds.height() - 2 * pad, width, bounds.height() + 2 * pad)
            self._panel(painter, panel)
            painter.setFont(font)
            painter.setPen(TEXT)
            painter.drawText(panel.adjusted(pad, pad, -pad, -pad), Qt.TextFlag.TextWordWrap, self._notice)
            return
        percent_width = metrics.horizontalAdvance("100.0%")
        label_width = width - 2 * pad - percent_width - 8
        height = len(self._top) * row + 2 * pad
        panel = QRectF(left, area.bottom() - pad - height, width, height)
        self._panel(painter, panel)
        for position, item in enumerate(self._top):
            bold = QFont(font)
            bold.setBold(position == 0)
            painter.setFont(bold)
            top = panel.top() + pad + position * row
            bar = QRectF(panel.left() + pad, top + row - 5, label_width, 3)
            painter.fillRect(bar, BAR_BACK)
            painter.fillRect(
                QRectF(bar.left(), bar.top(), bar.width() * item.prob, bar.height()),
                BAR_TOP if position == 0 else BAR_OTHER,
            )
            painter.setPen(TEXT if position == 0 else DIM_TEXT)
            label = QFontMetrics(bold).elidedText(item.label, Qt.TextElideMode.ElideRight, int(label_width))
            painter.drawText(QRectF(bar.left(), top, label_width, row - 6), Qt.AlignmentFlag.AlignVCenter, label)
            painter.drawText(
                QRectF(bar.right() + 8, top, percent_width, row - 6),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                format_percent(item.prob),
            )

    def _paint_stats(self, painter: QPainter) -> None:
        """Top right, always: capture and model speed and the end-to-end latency."""
        if not self.stats_text:
            return
        metrics = QFontMetrics(self.font())
        area = self.image_rect()
        pad = 8
        width = metrics.horizontalAdvance(self.stats_text) + 2 * pad
        panel = QRectF(area.right() - pad - width, area.top() + pad, width, metrics.height() + pad)
        self._panel(painter, panel)
        painter.setFont(self.font())
        painter.setPen(TEXT)
        painter.drawText(panel, Qt.AlignmentFlag.AlignCenter, self.stats_text)

    def _paint_badge(self, painter: QPainter, text: str) -> None:
        font = QFont(self.font())
        font.setBold(True)
        metrics = QFontMetrics(font)
        area = self.image_rect()
        panel = QRectF(area.left() + 8, area.top() + 8, metrics.horizontalAdvance(text) + 16, metrics.height() + 8)
        self._panel(painter, panel)
        painter.setFont(font)
        painter.setPen(TEXT)
        painter.drawText(panel, Qt.AlignmentFlag.AlignCenter, text)

    @staticmethod
    def _panel(painter: QPainter, rect: QRectF) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(PANEL)
        painter.drawRoundedRect(rect, 6, 6)
