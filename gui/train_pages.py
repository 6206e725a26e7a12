"""What the fine-tuning wizard's pages share: the page protocol, the wizard's state, and small display helpers."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QWidget

from engine.training.dataset import DatasetScan
from gui.result_widgets import thumbnail_pixmap
from gui.train_worker import TrainBridge

ERROR_STYLE = "color: #b3261e;"
NOTE_STYLE = "color: palette(placeholder-text);"


@dataclass(frozen=True)
class ModelChoice:
    """What the model page decided: the architecture, where its weights start, and how it learns."""

    arch: str
    init: str  # "pretrained" | "builtin" | "scratch" | a weights file or bundle path
    method: str  # "quick" | "full"
    display_name: str
    input_size: int = 0  # the catalog's input size, 0 when unknown (a typed timm name)


class WizardState:
    """What the pages decide together; the wizard owns it, each page reads and writes its part."""

    def __init__(self, bridge: TrainBridge) -> None:
        self.bridge = bridge
        self.scan: DatasetScan | None = None
        self.class_weights = False  # the data page's "Use class weights", for an imbalanced folder
        self.model: ModelChoice | None = None


class WizardPage(QWidget):
    """One step. The wizard asks `is_complete` to enable Next and `validate` before leaving forwards."""

    complete_changed = Signal()
    title = ""
    subtitle = ""
    next_text = "Next ›"

    def __init__(self, state: WizardState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state

    def is_complete(self) -> bool:
        return True

    def can_go_back(self) -> bool:
        return True

    def enter(self) -> None:
        """Called each time the page is shown."""

    def validate(self) -> str:
        """"" to go on, or a message (shown on the page) that keeps the user here."""
        return ""


def error_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(ERROR_STYLE)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def note_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(NOTE_STYLE)
    return label


def bold_label(text: str = "", scale: float = 1.0) -> QLabel:
    label = QLabel(text)
    font = QFont(label.font())
    font.setBold(True)
    if scale != 1.0:
        font.setPointSizeF(font.pointSizeF() * scale)
    label.setFont(font)
    return label


def show_error(label: QLabel, message: str, hint: str = "") -> None:
    label.setText(f"{message} {hint}".strip())
    label.setVisible(bool(message))


def square_pixmap(pixels: np.ndarray | None, size: int) -> QPixmap:
    """A thumbnail centred in a size × size tile (blank grey when the file could not be read)."""
    tile = QPixmap(size, size)
    tile.fill(QColor(0, 0, 0, 0))
    painter = QPainter(tile)
    if pixels is None:
        painter.fillRect(0, 0, size, size, QColor("#9e9e9e"))
    else:
        image = thumbnail_pixmap(pixels).scaled(
            QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        painter.drawPixmap((size - image.width()) // 2, (size - image.height()) // 2, image)
    painter.end()
    return tile


def strip_pixmap(tiles: list[QPixmap], size: int, gap: int = 4) -> QPixmap:
    """Tiles side by side, for a class's row of sample thumbnails."""
    strip = QPixmap(max(1, len(tiles) * (size + gap) - gap), size)
    strip.fill(QColor(0, 0, 0, 0))
    painter = QPainter(strip)
    for index, tile in enumerate(tiles):
        painter.drawPixmap(index * (size + gap), 0, tile)
    painter.end()
    return strip


# Problem kinds drawn as a coloured badge with a glyph: unusable files in red, things to improve in amber.
PROBLEM_BADGES = {
    "corrupt": ("#c62828", "✕", "damaged file, left out"),
    "not_image": ("#616161", "?", "not an image, left out"),
    "duplicate": ("#1565c0", "=", "duplicate, left out"),
    "few_images": ("#ef6c00", "!", "few images"),
    "imbalance": ("#ef6c00", "⚖", "lopsided classes"),
    "empty_folder": ("#ef6c00", "∅", "empty class folder"),
    "unknown_class": ("#ef6c00", "?", "unknown class folder"),
    "unsure": ("#616161", "?", "photos still to sort, left out"),
}


def problem_icon(kind: str, size: int = 18) -> QIcon:
    colour, glyph, _words = PROBLEM_BADGES.get(kind, ("#ef6c00", "!", ""))
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(0, 0, 0, 0))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(colour))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(QRectF(0.5, 0.5, size - 1, size - 1))
    font = QFont(painter.font())
    font.setBold(True)
    font.setPixelSize(int(size * 0.65))
    painter.setFont(font)
    painter.setPen(QColor("white"))
    painter.drawText(QRectF(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, glyph)
    painter.end()
    return QIcon(pixmap)
