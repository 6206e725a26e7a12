"""The capture thread and its one-slot mailbox: frames are read as fast as the source gives them, and only the
newest is kept, so a slow model never works through a backlog of old frames.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass

from engine.errors import UserFacingError
from engine.events import EventSink, ignore_events
from engine.live.sources import Frame, FrameSource, SourceLost

log = logging.getLogger(__name__)
FPS_WINDOW_S = 1.0


class LatestFrame:
    """One-slot mailbox: put() replaces what is there (counting the frame it replaced as dropped); take() waits
    for a frame newer than the last taken."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._frame: Frame | None = None
        self._fresh = False  # the frame in the slot has not been taken yet
        self._closed = False
        self.dropped = 0  # frames replaced before anyone took them
        self.received = 0  # frames put, in all

    def put(self, frame: Frame) -> None:
        with self._changed:
            if self._fresh:
                self.dropped += 1
            self._frame, self._fresh = frame, True
            self.received += 1
            self._changed.notify_all()

    def take(self, timeout: float) -> Frame | None:
        """The newest frame not yet taken, or None on timeout or once closed with nothing new left."""
        with self._changed:
            self._changed.wait_for(lambda: self._fresh or self._closed, timeout)
            if not self._fresh:
                return None
            self._fresh = False
            return self._frame

    def peek(self) -> Frame | None:
        """The newest frame, taken or not (for display)."""
        with self._changed:
            return self._frame

    @property
    def pending(self) -> int:
        """Frames waiting to be taken: 0 or 1, by construction."""
        with self._changed:
            return int(self._fresh)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, discard: bool = False) -> None:
        """No more frames will come; wakes waiters. `discard` drops a frame not yet taken (counted as dropped)."""
        with self._changed:
            if discard and self._fresh:
                self._fresh = False
                self.dropped += 1
            self._closed = True
            self._changed.notify_all()


@dataclass(frozen=True)
class SourceStatus:
    """An engine event (like Progress/Log), sent through on_event whenever the source's state changes."""

    state: str  # "opening" | "running" | "reconnecting" | "ended" | "failed" | "stopped"
    message: str = ""


class RollingRate:
    """Events per second over about the last second (over the last two events when they are further apart)."""

    def __init__(self, window_s: float = FPS_WINDOW_S) -> None:
        self._window_s = window_s
        self._times: collections.deque[float] = collections.deque()

    def tick(self, now: float) -> float:
        times = self._times
        times.append(now)
        while len(times) > 2 and now - times[0] > self._window_s:
            times.popleft()
        return (len(times) - 1) / (now - times[0]) if len(times) > 1 and now > times[0] else 0.0


PAUSE_POLL_S = 0.1  # a paused capture thread still notices stop() this often


class CaptureThread:
    """Reads `source` into `mailbox` in its own thread; reports its state as SourceStatus events.

    On SourceLost it reports "reconnecting", releases the source and reopens it every `retry_s` (doubling up
    to `max_backoff_s` for sources with `retry_backoff`), reporting "running" once frames flow again.
    """

    def __init__(self, source: FrameSource, mailbox: LatestFrame, on_event: EventSink = ignore_events,
                 retry_s: float = 3.0, max_backoff_s: float = 30.0) -> None:
        self.source = source
        self.mailbox = mailbox
        self._on_event = on_event
        self._retry_s = retry_s
        self._max_backoff_s = max(retry_s, max_backoff_s)
        self._stopping = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="Classifier Studio capture", daemon=True)
        self._rate = RollingRate()
        self.capture_fps = 0.0  # measured, rolling over ~1 s
        self.frames_captured = 0
        self.status = SourceStatus("opening")

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def pause(self) -> None:
        """Stop reading: a file stays where it is (Resume goes on from there), a camera's picture freezes."""
        self._unpaused.clear()

    def resume(self) -> None:
        self._unpaused.set()

    @property
    def paused(self) -> bool:
        return not self._unpaused.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the thread and releases the source; returns within `timeout` even if OpenCV is stuck in a read."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self._unpaused.set()  # a paused thread wakes at once to see the stop
        if self._thread.ident is not None:
            self._thread.join(timeout)
        if self._thread.is_alive():
            # Releasing a capture while another thread reads from it can crash OpenCV; the thread releases it
            # itself as soon as its blocked read returns (reads of streams time out).
            log.warning("The capture of %s did not stop within %.1f s.", self.source.description, timeout)
        else:
            self.source.close()
        self.mailbox.close(discard=True)  # stopped means no more predictions, not one more stale one
        self._report("stopped", f"Stopped {self.source.description}.")

    def _run(self) -> None:
        try:
            if self._open():
                self._capture()
        except Exception as exc:  # a capture thread that dies silently freezes the live view
            log.exception("Capture of %s failed", self.source.description)
            self._report("failed", f"Reading {self.source.description} failed unexpectedly ({exc}).")
        finally:
            self.source.close()
            self.mailbox.close()  # wakes a waiting step() at once: no new frames will come

    def _open(self) -> bool:
        self._report("opening", f"Opening {self.source.description}…")
        try:
            self.source.open()
        except UserFacingError as exc:
            self._report("failed", str(exc))
            return False
        if self._stopping.is_set():
            return False
        self._report("running", self.source.description)
        return True

    def _capture(self) -> None:
        while not self._stopping.is_set():
            if not self._unpaused.wait(PAUSE_POLL_S):
                continue
            try:
                image = self.source.read()
            except SourceLost as lost:
                if not self._reconnect(str(lost)):
                    return
                continue
            if image is None:
                self._report("ended", f"{self.source.description} has ended.")
                return
            now = time.perf_counter()
            self.mailbox.put(Frame(image, self.frames_captured, now))
            self.frames_captured += 1
            self.capture_fps = self._rate.tick(now)

    def _reconnect(self, reason: str) -> bool:
        """Reopen the source until it works (True) or the thread is stopped (False)."""
        backoff = getattr(self.source, "retry_backoff", False)
        delay, attempts = self._retry_s, 0
        self.source.close()
        self.capture_fps = 0.0
        self._rate = RollingRate()
        self._report("reconnecting", f"{reason} {_retry_text(delay, backoff)}")
        while not self._stopping.wait(delay):
            attempts += 1
            try:
                self.source.open()
            except UserFacingError:
                self.source.close()
                if backoff:
                    delay = min(delay * 2, self._max_backoff_s)
                tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
                self._report("reconnecting", f"{reason} Still unavailable after {tries}; {_retry_text(delay, backoff)}")
                continue
            if self._stopping.is_set():
                return False
            self._report("running", f"Reconnected to {self.source.description}.")
            return True
        return False

    def _report(self, state: str, message: str) -> None:
        if self._stopped and state != "stopped":
            return  # a thread that outlived stop()'s wait has nothing more to say
        self.status = SourceStatus(state, message)
        try:
            self._on_event(self.status)
        except Exception:  # a failing listener must not take the capture down with it
            log.exception("A live status listener failed")


def _retry_text(delay: float, backoff: bool) -> str:
    return f"Retrying in {delay:g} s…" if backoff else f"Retrying every {delay:g} s…"
