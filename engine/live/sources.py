"""Where live frames come from: cameras, video files and network streams, all read through OpenCV.

Every failure to open becomes a UserFacingError naming the source and the fix; a source that stops
delivering mid-stream raises SourceLost so the capture thread can reconnect.
"""
from __future__ import annotations

import math
import os
import re
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from engine.errors import UserFacingError

if TYPE_CHECKING:
    import cv2
    import numpy as np

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts", ".m2ts",
     ".3gp", ".ogv", ".mjpeg", ".mjpg")
)
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
STREAM_TIMEOUT_MS = 10_000  # how long a stream may take to connect or to send its next frame
_FALLBACK_FPS = 30.0  # pacing for files that do not state a usable frame rate
_MAX_LAG_S = 0.25  # a file read this far behind its clock restarts the clock instead of rushing to catch up
_opencv: ModuleType | None = None  # cv2 once opencv() has imported it


def video_files(paths: list[str]) -> list[str]:
    """Those of `paths` that are video files (by their extension): what the Live tab plays when they are dropped."""
    return [path for path in paths if Path(path).suffix.lower() in VIDEO_EXTENSIONS and os.path.isfile(path)]


def opencv() -> ModuleType:
    """cv2, quietened, imported on first use (with numpy it would take a fifth of the window's start-up).
    The product's code gets cv2 from here, so whichever part uses it first sets it up."""
    global _opencv
    if _opencv is None:
        # FFmpeg's own console lines ("moov atom not found", "Connection refused") would print above our clear
        # messages; the variable is read when cv2 loads FFmpeg, so it is set before the import (a user's wins).
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        import cv2

        # Our messages say what went wrong; OpenCV's warnings ("can't open camera by index") only add noise.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        _opencv = cv2
    return _opencv


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR uint8 HxWx3 as OpenCV decodes it; owned (never reused by the source)
    index: int  # 0, 1, 2 … in capture order
    captured_at: float  # time.perf_counter() right after the frame was read


@dataclass(frozen=True)
class CameraInfo:
    index: int
    name: str  # the OS's name where it gives one, else "Camera N"


class SourceLost(Exception):
    """The source stopped delivering frames (camera unplugged, stream dropped); the message says which."""


class FrameSource(Protocol):
    description: str  # "Camera 0 (Integrated Webcam)", "video.mp4", "rtsp://…"
    fps: float  # the source's nominal frame rate; 0 when unknown
    retry_backoff: bool  # reconnect attempts back off (streams) rather than repeat at a steady pace (cameras)

    def open(self) -> None:
        """Open the source (a no-op when already open); UserFacingError with a clear message when it cannot."""

    def read(self) -> np.ndarray | None:
        """One BGR frame; None at the end of a file; raises SourceLost when a camera or stream stops delivering."""

    def close(self) -> None:
        """Release the device or file; idempotent."""


class _OpenCVSource:
    """What every OpenCV-backed source shares: one VideoCapture, a first frame read at open, idempotent close."""

    description = ""
    fps = 0.0
    retry_backoff = False

    def __init__(self) -> None:
        self._capture: cv2.VideoCapture | None = None
        self._first: np.ndarray | None = None  # read at open to prove the source delivers; returned by read()

    def close(self) -> None:
        capture, self._capture, self._first = self._capture, None, None
        if capture is not None:
            capture.release()

    def _keep_open(self, capture: cv2.VideoCapture) -> bool:
        """Adopt `capture` if it opened and delivers a first frame; otherwise release it and say so."""
        ok, image = _read(capture) if capture.isOpened() else (False, None)
        if not ok:
            capture.release()
            return False
        self._capture, self._first = capture, image
        return True

    def _next(self) -> tuple[bool, np.ndarray | None]:
        if self._capture is None:
            raise SourceLost(f"{self.description} is not open.")
        if self._first is not None:
            image, self._first = self._first, None
            return True, image
        return _read(self._capture)


class CameraSource(_OpenCVSource):
    """A webcam by index, through the backend each OS supports best."""

    def __init__(self, index: int, width: int | None = None, height: int | None = None) -> None:
        super().__init__()
        self.index, self.width, self.height = index, width, height
        name = _linux_camera_names().get(index)
        self.description = f"Camera {index} ({name})" if name else f"Camera {index}"

    def open(self) -> None:
        if self._capture is not None:
            return
        device = Path(f"/dev/video{self.index}")
        if sys.platform.startswith("linux") and not device.exists():
            raise UserFacingError(f"No camera {self.index} was found.", _connect_hint())
        cv2 = opencv()
        for backend in _camera_backends():
            capture = cv2.VideoCapture(self.index, backend)
            if capture.isOpened():
                self._configure(capture, backend)
            if self._keep_open(capture):
                self.fps = _usable_fps(capture.get(cv2.CAP_PROP_FPS))
                return
        if sys.platform.startswith("linux"):
            message = f"{self.description} could not be opened, or it is not delivering pictures."
        else:  # other systems cannot tell a missing camera from a busy one
            message = f"{self.description} could not be opened: there is no such camera, or it is in use."
        raise UserFacingError(message, _busy_hint(device))

    def _configure(self, capture: cv2.VideoCapture, backend: int) -> None:
        cv2 = opencv()
        if self.width and self.height:
            if backend == cv2.CAP_V4L2:
                # USB cameras send HD at full frame rate only as MJPG; the raw format would crawl at a few fps.
                capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer stale frames queued inside the driver, where supported

    def read(self) -> np.ndarray:
        ok, image = self._next()
        if not ok:
            raise SourceLost(f"{self.description} stopped delivering frames (unplugged?).")
        return image


class VideoFileSource(_OpenCVSource):
    """A video file played at its own frame rate: read() sleeps until each frame is due, like a player would."""

    def __init__(self, path: str | os.PathLike, loop: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.loop = loop
        self.description = self.path.name
        self._clock_start = 0.0
        self._played = 0  # frames returned since the clock started

    def open(self) -> None:
        if self._capture is not None:
            return
        label = f'"{self.path}"'
        if not self.path.exists():
            raise UserFacingError(f"{label} does not exist.",
                                  "Check the path; the file may have been moved, renamed or deleted.")
        if self.path.is_dir():
            raise UserFacingError(f"{label} is a folder, not a video file.", "Choose a video file instead.")
        if not os.access(self.path, os.R_OK):
            raise UserFacingError(f"{label} cannot be read: permission denied.",
                                  "Give your user read access to the file and try again.")
        cv2 = opencv()
        if not self._keep_open(cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)):
            raise UserFacingError(f"{label} is not a video Classifier Studio can play (it could not be decoded).",
                                  "Use an MP4, AVI, MKV or WebM video, or convert the file to one of them.")
        assert self._capture is not None
        self.fps = _usable_fps(self._capture.get(cv2.CAP_PROP_FPS))
        self._clock_start, self._played = 0.0, 0  # the clock starts at the first read, not at open

    def read(self) -> np.ndarray | None:
        ok, image = self._next()
        if not ok and self.loop and self._rewind():
            ok, image = self._next()
        if not ok:
            return None
        self._wait_until_due()
        return image

    def _rewind(self) -> bool:
        assert self._capture is not None
        if self._capture.set(opencv().CAP_PROP_POS_FRAMES, 0):
            return True
        self.close()  # a container that cannot seek: start it again from scratch
        try:
            self.open()
        except UserFacingError:
            return False
        return True

    def _wait_until_due(self) -> None:
        interval = 1.0 / (self.fps or _FALLBACK_FPS)
        now = time.perf_counter()
        if not self._clock_start:  # first frame: playback starts now, so early frames do not come in a burst
            self._clock_start, self._played = now, 0
        due = self._clock_start + self._played * interval
        if now - due > _MAX_LAG_S:  # decoding fell behind (or the reader paused): play on from now
            self._clock_start, self._played, due = now, 0, now
        elif due > now:
            time.sleep(due - now)
        self._played += 1


class StreamSource(_OpenCVSource):
    """A network stream (RTSP camera, HTTP MJPEG, …) through OpenCV's FFmpeg, with connect and read timeouts."""

    retry_backoff = True

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.description = _without_password(url)

    def open(self) -> None:
        if self._capture is not None:
            return
        cv2 = opencv()
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS]
        try:
            capture = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        except cv2.error as exc:
            raise self._unreachable() from exc
        if not self._keep_open(capture):
            raise self._unreachable()
        assert self._capture is not None
        self.fps = _usable_fps(self._capture.get(cv2.CAP_PROP_FPS))

    def read(self) -> np.ndarray:
        ok, image = self._next()
        if not ok:
            raise SourceLost(f"The stream {self.description} stopped delivering frames.")
        return image

    def _unreachable(self) -> UserFacingError:
        return UserFacingError(
            f"Could not receive video from {self.description}.",
            "Check the address, that the camera or server is on and reachable from this computer, "
            "and the user name and password in the address, if it needs them.",
        )


def open_source(text: str, loop: bool = False) -> FrameSource:
    """The source a user typed: "0"/"1" a camera, a path a video file, "rtsp://…"/"http://…" a stream."""
    text = text.strip()
    if re.fullmatch(r"\d{1,3}", text):
        return CameraSource(int(text))
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    if scheme == "file":
        from urllib.request import url2pathname  # deferred: it imports http and ssl, a tenth of the window's start-up

        return VideoFileSource(url2pathname(urllib.parse.urlsplit(text).path), loop)
    if scheme in STREAM_SCHEMES and "://" in text:
        return StreamSource(text)
    path = Path(text).expanduser()
    if path.exists() or path.suffix.lower() in VIDEO_EXTENSIONS or os.sep in text or "/" in text:
        return VideoFileSource(path, loop)  # a missing file gets its own clear message at open()
    raise UserFacingError(f'"{text}" is not a camera number, a video file or a stream address.',
                          "Give a camera number (0, 1, …), the path of a video file, or an rtsp:// or http:// "
                          "address.")


def list_cameras(max_index: int = 8) -> list[CameraInfo]:
    """Cameras with their OS names. Linux lists them without opening any; elsewhere indices are probed."""
    if sys.platform.startswith("linux"):
        return [CameraInfo(index, name) for index, name in sorted(_linux_camera_names().items())]
    found = []
    for index in range(max_index):
        source = CameraSource(index)
        try:
            source.open()
        except UserFacingError:
            break  # indices are handed out in order: the first gap is the end of the list
        finally:
            source.close()
        found.append(CameraInfo(index, f"Camera {index}"))
    return found


def _linux_camera_names() -> dict[int, str]:
    if not sys.platform.startswith("linux"):
        return {}
    names = {}
    for node in Path("/sys/class/video4linux").glob("video*"):
        match = re.fullmatch(r"video(\d+)", node.name)
        if not match:
            continue
        # A webcam usually exposes a second node for metadata; only the node with index 0 captures pictures.
        if _read_sys(node / "index") not in ("", "0"):
            continue
        index = int(match.group(1))
        names[index] = _read_sys(node / "name") or f"Camera {index}"
    if not names:  # no sysfs (containers): the device nodes alone
        for device in Path("/dev").glob("video*"):
            match = re.fullmatch(r"video(\d+)", device.name)
            if match:
                names[int(match.group(1))] = f"Camera {match.group(1)}"
    return names


def _read_sys(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _camera_backends() -> tuple[int, ...]:
    cv2 = opencv()
    if sys.platform.startswith("win"):
        return cv2.CAP_MSMF, cv2.CAP_DSHOW  # DirectShow still works for cameras whose MSMF driver does not
    if sys.platform == "darwin":
        return (cv2.CAP_AVFOUNDATION,)
    return (cv2.CAP_V4L2,)


def _connect_hint() -> str:
    return "Connect a camera (and check it is switched on), or choose another camera."


def _busy_hint(device: Path) -> str:
    hint = "Close other programs that may be using it (video calls, other camera apps) and try again."
    if sys.platform == "darwin":
        return hint + " Also allow camera access in System Settings › Privacy & Security › Camera."
    if sys.platform.startswith("win"):
        return hint + " Also check Settings › Privacy & security › Camera allows desktop apps to use it."
    if sys.platform.startswith("linux") and device.exists() and not os.access(device, os.R_OK | os.W_OK):
        return f"Your user may not access {device}: add it to the 'video' group, then log in again."
    return hint


def _read(capture: cv2.VideoCapture) -> tuple[bool, np.ndarray | None]:
    try:
        ok, image = capture.read()
    except opencv().error:
        return False, None
    return (ok and image is not None and image.size > 0), image


def _usable_fps(value: float) -> float:
    # Containers report 0, NaN or absurd values (1000, 90000) when they do not know.
    return float(value) if math.isfinite(value) and 0.5 <= value <= 240 else 0.0


def _without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
