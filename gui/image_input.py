"""How pictures reach the window: files and folders dragged onto it, or pasted as paths or as an image; videos
dropped on the Live tab."""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable

from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QMimeData, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent, QDropEvent, QImage, QPalette
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from engine.live.sources import video_files
from gui.background import BackgroundCalls, background_calls


def local_paths(mime: QMimeData | None) -> list[str]:
    """Local files and folders named by dropped or copied URLs; web links and text are not ours to fetch."""
    if mime is None or not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


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


def png_bytes(image: QImage) -> bytes:
    """A clipboard picture as PNG: lossless, and decoded by the engine like any file. Left uncompressed (quality
    100), as the bytes only pass through memory: 10x faster to write (94 ms for full HD, not 870)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG", 100)
    buffer.close()
    return bytes(data.data())


def paste_encoder() -> BackgroundCalls:
    return background_calls("paste")


def encode_paste(name: str, image: QImage) -> tuple[str, bytes]:
    """On the paste thread (QImage may be used off the GUI thread): the picture as PNG for the engine. On the
    GUI thread this froze the window: 0.9 s for a full-HD screenshot, 7 s for an 8K one."""
    return name, png_bytes(image)


class PastedPictures:
    """The pictures pasted into a window (or sent from the Live tab): their names, and their PNG bytes so that
    Where it looked can read one again. Beyond the budget the oldest are let go: a pasted 8K screenshot is about
    100 MB of uncompressed PNG."""

    BUDGET = 256 * 2**20

    def __init__(self) -> None:
        self._kept: OrderedDict[str, bytes] = OrderedDict()
        self._counts: dict[str, int] = {}

    def next_name(self, kind: str = "Pasted image") -> str:
        """"Pasted image", then "Pasted image 2", …; each kind counts on its own."""
        count = self._counts[kind] = self._counts.get(kind, 0) + 1
        return kind if count == 1 else f"{kind} {count}"

    def keep(self, name: str, data: bytes) -> None:
        self._kept[name] = data
        while sum(len(kept) for kept in self._kept.values()) > self.BUDGET and len(self._kept) > 1:
            self._kept.popitem(last=False)

    def get(self, name: str) -> bytes | None:
        return self._kept.get(name)


class DropZone(QFrame):
    """Accepts local files and folders dragged onto it, lighting up while something droppable is over it."""

    paths_dropped = Signal(list)

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

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        # Text, web images and the like are refused at the door: the cursor says "no drop" rather than surprising.
        if local_paths(event.mimeData()):
            event.acceptProposedAction()
            self._set_highlighted(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._set_highlighted(False)
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_highlighted(False)
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.paths_dropped.emit(paths)
        else:
            event.ignore()


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
        "JPEG, PNG, WebP, BMP, GIF, TIFF and more · folders are searched with all their subfolders · videos play in"
        " the Live tab"
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
