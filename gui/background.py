"""Calls that must not run on the GUI thread (reading a folder, importing timm), each kind on its own worker
thread, announcing each finished call with `done(future)`.

Users connect to `done` queued, so they handle it on the GUI thread and no Qt object is touched from the worker.
Each kind has one instance for the whole app, living as long as it, so a widget closed mid-call leaves nothing
for the worker to emit into: Qt drops its connection.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal


class BackgroundCalls(QObject):
    done = Signal(object)  # the concurrent.futures.Future of a finished call

    def __init__(self, thread_name: str) -> None:
        super().__init__()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)

    def submit(self, function: Callable, *args) -> Future:
        future = self._executor.submit(function, *args)
        future.add_done_callback(self.done.emit)  # on the worker, or here at once if it is already done
        return future


_instances: dict[str, BackgroundCalls] = {}


def background_calls(thread_name: str) -> BackgroundCalls:
    """The app's one instance for this kind of call, made on first use (on the GUI thread)."""
    if thread_name not in _instances:
        _instances[thread_name] = BackgroundCalls(thread_name)
    return _instances[thread_name]
