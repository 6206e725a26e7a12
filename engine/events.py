"""Events that long engine operations report, and the token that cancels them.

Events are small frozen dataclasses of plain values: cheap to pass across threads and to print.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Union

from engine.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """`done` of `total` units of `what` (total 0 = unknown). Units are bytes for downloads, items otherwise."""

    what: str
    done: int
    total: int = 0
    unit: str = "items"

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total > 0 else None


@dataclass(frozen=True)
class Log:
    level: str  # "info" | "warning" | "error"
    text: str


Event = Union[Progress, Log]
EventSink = Callable[[Event], None]


def ignore_events(_event: Event) -> None:
    """The default sink, for callers that do not show progress."""


class CancelToken:
    """A thin wrapper around threading.Event; loops call `check()` at natural boundaries."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()
