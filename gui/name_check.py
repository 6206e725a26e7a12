"""Checks a typed model name off the GUI thread: only timm knows every model name, and importing timm takes
seconds, which the GUI thread never spends (the engine thread has usually imported it by then anyway)."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal

from engine.catalog import architecture_problem


class _NameChecker(QObject):
    """Runs engine.catalog.architecture_problem on one worker thread and announces each answer with
    `checked(future)`. One for the whole app, living as long as it (as gui.my_models_view's folder lister), so
    a picker closed mid-check leaves nothing for the worker to emit into."""

    checked = Signal(object)  # the concurrent.futures.Future of an architecture_problem call

    def __init__(self) -> None:
        super().__init__()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="name-check")

    def submit(self, name: str) -> Future:
        future = self._executor.submit(architecture_problem, name)
        future.add_done_callback(self.checked.emit)
        return future


_checker: _NameChecker | None = None


def name_checker() -> _NameChecker:
    """The app's one checker, made on first use (on the GUI thread, where pickers are made)."""
    global _checker
    if _checker is None:
        _checker = _NameChecker()
    return _checker
