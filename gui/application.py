"""Classifier Studio's QApplication: it also takes the files macOS hands over with Finder's "Open With".

macOS does not put those files on the command line: it sends the application a FileOpen event for each one,
possibly before the window exists, so paths wait here until the window takes them.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication


class StudioApplication(QApplication):
    def __init__(self, argv: list[str]) -> None:
        super().__init__(argv)
        self._open_paths: Callable[[list[str]], None] | None = None
        self._waiting: list[str] = []

    def open_files_with(self, open_paths: Callable[[list[str]], None] | None) -> None:
        """Where opened files go from now on (the main window; None: they wait); any waiting go there at once."""
        self._open_paths = open_paths
        if open_paths is not None and self._waiting:
            waiting, self._waiting = self._waiting, []
            open_paths(waiting)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent) and event.file():
            if self._open_paths is not None:
                self._open_paths([event.file()])
            else:
                self._waiting.append(event.file())
            return True
        return super().event(event)
