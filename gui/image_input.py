"""How pictures reach the window: files and folders dragged onto it or pasted as paths, a picture's pixels or its
web address (gui.pictures_in_memory makes those ready); videos dropped on the Live tab."""
from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QEvent, QMimeData, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent, QDropEvent, QImage, QPalette
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from engine.bundle import is_bundle
from engine.live.sources import video_files
from engine.weights import WEIGHTS_SUFFIXES


def local_paths(mime: QMimeData | None) -> list[str]:
    """Local files and folders named by dropped or copied URLs; web links and text are not ours to fetch."""
    if mime is None or not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def model_paths(paths: list[str]) -> list[str]:
    """The weights files (.safetensors, .pth, …) and model bundle folders among `paths`: loaded, not classified,
    when dropped."""
    return [path for path in paths if _is_model(path)]


def _is_model(path: str) -> bool:
    if os.path.isdir(path):
        return is_bundle(path)
    return os.path.isfile(path) and os.path.splitext(path)[1].lower() in WEIGHTS_SUFFIXES


def web_urls(mime: QMimeData | None) -> list[str]:
    """The http(s) addresses dragged out of a browser or copied (an image's, or a page's: the download says which)."""
    if mime is None:
        return []
    if mime.hasUrls():
        return [url.toString() for url in mime.urls() if url.scheme() in ("http", "https")]
    from engine.web_images import web_image_urls

    return web_image_urls(mime.text()) if mime.hasText() else []


def dropped_picture(mime: QMimeData | None) -> QImage | None:
    """A picture dragged as pixels (out of an image editor, or some browsers), or None."""
    if mime is None or not mime.hasImage():
        return None
    image = QImage(mime.imageData())
    return None if image.isNull() else image


def paths_in_text(text: str) -> list[str]:
    """Existing files or folders written one per line (paths copied as text from a terminal or a file manager)."""
    found = []
    for line in text.splitlines():
        line = line.strip().strip("'\"")
        if line.startswith("file:"):
            line = QUrl(line).toLocalFile()
        if line and os.path.exists(line):
            found.append(line)
    return found


class DropZone(QFrame):
    """Accepts local files and folders dragged onto it, a picture's pixels, or web addresses (a browser hands over an
    image's address, not its file), lighting up while something droppable is over it."""

    paths_dropped = Signal(list)
    picture_dropped = Signal(QImage)
    urls_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setAcceptDrops(True)
        highlight = self.palette().highlight().color()
        self.setStyleSheet(
            "QFrame#dropZone { border: 2px dashed palette(mid); border-radius: 10px; }"
            f'QFrame#dropZone[dragActive="true"] {{ border-color: {highlight.name()};'
            f" background-color: rgba({highlight.red()}, {highlight.green()}, {highlight.blue()}, 40); }}"
        )
        self._set_highlighted(False)

    @property
    def is_highlighted(self) -> bool:
        return bool(self.property("dragActive"))

    def _set_highlighted(self, active: bool) -> None:
        self.setProperty("dragActive", active)
        self.style().unpolish(self)  # a dynamic property only restyles after a re-polish
        self.style().polish(self)
        self.update()

    @staticmethod
    def _droppable(mime: QMimeData | None) -> bool:
        # Plain text and the like are refused at the door: the cursor says "no drop" rather than surprising.
        return bool(local_paths(mime) or (mime is not None and mime.hasImage()) or web_urls(mime))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._droppable(event.mimeData()):
            event.acceptProposedAction()
            self._set_highlighted(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._droppable(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._set_highlighted(False)
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_highlighted(False)
        mime = event.mimeData()
        # Files first; then pixels when a browser gives them beside the address (no download); then addresses.
        if paths := local_paths(mime):
            self.paths_dropped.emit(paths)
        elif (picture := dropped_picture(mime)) is not None:
            self.picture_dropped.emit(picture)
        elif urls := web_urls(mime):
            self.urls_dropped.emit(urls)
        else:
            event.ignore()
            return
        event.acceptProposedAction()


class VideoDrops(QObject):
    """Makes `widget` take video files dropped on it (and refuse anything else), handing them to `play`."""

    def __init__(self, widget: QWidget, play: Callable[[list[str]], None]) -> None:
        super().__init__(widget)
        self._play = play
        widget.setAcceptDrops(True)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() not in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            return False
        videos = video_files(local_paths(event.mimeData()))
        if not videos:
            event.ignore()
        else:
            event.acceptProposedAction()
            if event.type() == QEvent.Type.Drop:
                self._play(videos)
        return True


def invitation_page() -> QWidget:
    """What an empty drop zone shows: what to drop, and the other ways in."""
    title = QLabel("Drop photos or folders here")
    font = title.font()
    font.setPointSizeF(font.pointSizeF() * 1.8)
    font.setBold(True)
    title.setFont(font)
    subtitle = QLabel("— or use Open…, Open folder… or Paste above")
    details = QLabel(
        "JPEG, PNG, HEIC, WebP and more · whole folders · pictures from web pages · videos play in the Live tab"
    )
    details.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    details.setWordWrap(True)  # a narrow window wraps it rather than growing
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.addStretch(1)
    for label in (title, subtitle, details):
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(label)
    layout.addStretch(1)
    return page
