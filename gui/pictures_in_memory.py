"""Pictures the Classify view holds in memory rather than as files: pasted or dropped pixels, frames sent from the
Live tab, and pictures downloaded from web addresses (dragged out of a browser, or copied). Each is made ready off
the GUI thread, named, and kept within a budget so that Where it looked can read it again."""
from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from functools import partial

from PySide6.QtCore import QBuffer, QByteArray, QCoreApplication, QIODevice, QObject, Qt, Signal
from PySide6.QtGui import QImage

from engine.events import CancelToken, Event, Progress
from gui.background import BackgroundCalls, background_calls


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
    """The pictures pasted into a window, sent from the Live tab or downloaded: their names, and their bytes so that
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


class PicturesInMemory(QObject):
    """Pixels encoded as PNG on the paste thread, web pictures downloaded on a daemon thread of their own (quitting
    never waits for a slow site): each announced by `ready` (on the GUI thread) under a name of its own ("Pasted
    image 2", "cat.jpg"), its bytes kept in `kept`."""

    ready = Signal(str, bytes)  # name, encoded picture
    failed = Signal(str, str)  # message, hint: a download that found no picture
    progressed = Signal(str)  # "Downloading cat.jpg… 40 %", or "" once all are done or cancelled
    # From the download threads, each with the token of its drop, so that what a cancelled drop still sends is dropped
    _download_progressed = Signal(object, str)
    _downloaded = Signal(object, str, bytes)  # token, address, bytes
    _download_failed = Signal(object, str, str)  # token, message, hint
    _downloads_ended = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.kept = PastedPictures()
        self._encoding: list[Future] = []  # pictures being encoded, in paste order
        paste_encoder().done.connect(self._encoded, Qt.ConnectionType.QueuedConnection)
        # Emitted on the download threads: queued to this one.
        self._download_progressed.connect(self._on_progressed)
        self._downloaded.connect(self._on_downloaded)
        self._download_failed.connect(self._on_failed)
        self._downloads_ended.connect(self._on_ended)
        # One token per drop or paste of addresses still downloading; each stops between two chunks when cancelled
        # by the user, by quitting, or by this object going.
        self._downloading: list[CancelToken] = []
        stop_all = partial(_cancel_all, self._downloading)
        QCoreApplication.instance().aboutToQuit.connect(stop_all)
        self.destroyed.connect(stop_all)

    def add_image(self, image: QImage, kind: str) -> None:
        # Encoding on the paste thread: on the GUI thread, an 8K screenshot froze the window for 7 s.
        self._encoding.append(paste_encoder().submit(encode_paste, self.kept.next_name(kind), image))

    def download(self, urls: list[str]) -> None:
        """Download these addresses in order, each answered by ready or failed."""
        from engine.web_images import picture_name

        self.progressed.emit(f"Downloading {picture_name(urls[0])}…")  # and Cancel, before a slow site answers
        token = CancelToken()
        self._downloading.append(token)
        threading.Thread(target=self._download_all, args=(list(urls), token), name="web-pictures",
                         daemon=True).start()

    def cancel_downloads(self) -> None:
        """Stop every download under way; what they have read is let go."""
        if self._downloading:
            _cancel_all(self._downloading)
            self.progressed.emit("")

    def _download_all(self, urls: list[str], cancel: CancelToken) -> None:  # on a download thread: signals only
        from engine.errors import Cancelled, UserFacingError
        from engine.web_images import download_image

        def on_event(event: Event) -> None:
            if isinstance(event, Progress) and not cancel.cancelled:
                share = f" {round(100 * event.fraction)} %" if event.fraction is not None else ""
                self._download_progressed.emit(cancel, f"{event.what}…{share}")

        for url in urls:
            try:
                data = download_image(url, cancel, on_event)
            except Cancelled:
                return
            except UserFacingError as exc:
                if not cancel.cancelled:
                    self._download_failed.emit(cancel, exc.message, exc.hint)
                continue
            if cancel.cancelled:  # cancelled once read: the view may be gone
                return
            self._downloaded.emit(cancel, url, data)
        if not cancel.cancelled:
            self._downloads_ended.emit(cancel)

    def _encoded(self, encoded: Future) -> None:
        if encoded not in self._encoding:
            return  # another window's paste: every view hears the one encoder
        self._encoding.remove(encoded)
        self._ready(*encoded.result())

    def _on_progressed(self, token: CancelToken, text: str) -> None:
        if token in self._downloading:
            self.progressed.emit(text)

    def _on_downloaded(self, token: CancelToken, url: str, data: bytes) -> None:
        from engine.web_images import picture_name

        if token in self._downloading:
            self._ready(self.kept.next_name(picture_name(url)), data)

    def _on_failed(self, token: CancelToken, message: str, hint: str) -> None:
        if token in self._downloading:
            self.failed.emit(message, hint)

    def _on_ended(self, token: CancelToken) -> None:
        if token in self._downloading:
            self._downloading.remove(token)
            if not self._downloading:
                self.progressed.emit("")

    def _ready(self, name: str, data: bytes) -> None:
        self.kept.keep(name, data)
        self.ready.emit(name, data)


def _cancel_all(tokens: list[CancelToken]) -> None:
    for token in tokens:
        token.cancel()
    tokens.clear()
