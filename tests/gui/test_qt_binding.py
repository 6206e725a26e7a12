"""The Qt binding Classifier Studio runs on keeps Python's reference counts intact across signal emissions.

PySide6 6.12.0 dropped one reference to `True` per emission; on Python 3.11 (where True is not immortal) a long
session or a live video stream aborted the whole app with "deallocating True or False".
"""
from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal, Slot


class _Emitter(QObject):
    happened = Signal(object)


class _Receiver(QObject):
    @Slot(object)
    def take(self, value) -> None:
        self.last = value


def test_signal_emissions_leave_singleton_refcounts_alone(qapp):
    emitter, receiver = _Emitter(), _Receiver()
    emitter.happened.connect(receiver.take)
    emitter.happened.connect(lambda value: None)
    counts = [sys.getrefcount(v) for v in (None, True, False)]
    for i in range(500):
        emitter.happened.emit(i)
    assert [sys.getrefcount(v) for v in (None, True, False)] == counts
