"""Live sources: real video files and a real HTTP MJPEG stream read through OpenCV, and every way opening fails."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import UserFacingError
from engine.live.capture import CaptureThread, LatestFrame, SourceStatus
from engine.live.sources import (
    CameraInfo,
    CameraSource,
    SourceLost,
    StreamSource,
    VideoFileSource,
    list_cameras,
    open_source,
)
from tests.video_files import COLORS, CodecUnavailable, solid_frame, write_color_video

RED, GREEN, BLUE = COLORS["red"], COLORS["green"], COLORS["blue"]


def dominant_color(bgr: np.ndarray) -> str:
    """The name of the colour a decoded BGR frame mostly shows."""
    rgb = bgr.reshape(-1, 3).mean(axis=0)[::-1]
    return min(COLORS, key=lambda name: float(np.abs(rgb - np.array(COLORS[name])).sum()))


def read_all(source: VideoFileSource, limit: int = 1000) -> list[np.ndarray]:
    frames = []
    while len(frames) < limit and (image := source.read()) is not None:
        frames.append(image)
    return frames


@pytest.mark.parametrize("suffix,fourcc", [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_video_file_plays_every_frame_at_its_own_frame_rate(tmp_path, suffix, fourcc):
    try:
        path = write_color_video(tmp_path / f"clip{suffix}", [RED, BLUE], frames_per_color=8, fps=30, fourcc=fourcc)
    except CodecUnavailable as exc:
        pytest.skip(str(exc))
    source = VideoFileSource(path)
    source.open()
    try:
        assert source.description == path.name and source.fps == pytest.approx(30)
        started = time.perf_counter()
        frames = read_all(source)
        elapsed = time.perf_counter() - started
    finally:
        source.close()
    assert [dominant_color(f) for f in frames] == ["red"] * 8 + ["blue"] * 8
    assert frames[0].shape == (120, 160, 3) and frames[0].dtype == np.uint8
    assert elapsed >= 15 / 30 * 0.9  # 16 frames at 30 fps: paced like a player, not decoded flat out


def test_looping_file_starts_over_at_the_end(tmp_path):
    path = write_color_video(tmp_path / "loop.avi", [RED, GREEN], frames_per_color=3, fps=120)
    source = VideoFileSource(path, loop=True)
    source.open()
    try:
        frames = read_all(source, limit=15)
    finally:
        source.close()
    assert [dominant_color(f) for f in frames] == (["red"] * 3 + ["green"] * 3) * 2 + ["red"] * 3


def test_missing_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "holiday.mp4"
    with pytest.raises(UserFacingError) as caught:
        VideoFileSource(missing).open()
    assert "holiday.mp4" in caught.value.message and "does not exist" in caught.value.message
    with pytest.raises(UserFacingError, match="folder"):
        VideoFileSource(tmp_path).open()


@pytest.mark.parametrize("content", [b"these are my notes, not a video\n" * 40, b""])
def test_file_that_is_not_a_video_is_a_clear_error(tmp_path, content):
    fake = tmp_path / "notes.mp4"
    fake.write_bytes(content)
    started = time.perf_counter()
    with pytest.raises(UserFacingError) as caught:
        VideoFileSource(fake).open()
    assert "notes.mp4" in caught.value.message and "not a video" in caught.value.message
    assert caught.value.hint
    assert time.perf_counter() - started < 5


def test_missing_camera_is_a_clear_error_quickly():
    started = time.perf_counter()
    camera = CameraSource(7)
    with pytest.raises(UserFacingError) as caught:
        camera.open()
    assert time.perf_counter() - started < 5
    assert "camera 7" in caught.value.message.lower() and caught.value.hint
    camera.close()
    camera.close()  # idempotent


def test_list_cameras_reports_what_the_system_has():
    cameras = list_cameras()
    assert all(isinstance(c, CameraInfo) and c.name for c in cameras)
    if not list(Path("/dev").glob("video*")):
        assert cameras == []  # this machine has no camera: an empty list, no error


def test_open_source_understands_what_users_type(tmp_path):
    video = write_color_video(tmp_path / "clip.avi", [RED], frames_per_color=2)
    assert isinstance(open_source("0"), CameraSource) and open_source(" 1 ").index == 1
    file_source = open_source(str(video), loop=True)
    assert isinstance(file_source, VideoFileSource) and file_source.loop and file_source.path == video
    assert isinstance(open_source("rtsp://192.168.1.20:554/stream1"), StreamSource)
    assert isinstance(open_source("http://camera.local/video.mjpg"), StreamSource)
    missing = open_source(str(tmp_path / "missing.mkv"))  # a path: the file's own clear error comes at open()
    with pytest.raises(UserFacingError, match="does not exist"):
        missing.open()
    with pytest.raises(UserFacingError, match="not a camera number"):
        open_source("webcam please")


def test_stream_description_hides_the_password():
    source = StreamSource("rtsp://admin:secret@192.168.1.20:554/stream1")
    assert "secret" not in source.description and "admin" in source.description
    assert source.url.endswith("stream1")


class MjpegServer:
    """A real HTTP MJPEG stream (multipart/x-mixed-replace), like IP cameras serve; each connection gets
    `frames_per_connection` JPEG frames at `fps`, then the server drops the connection."""

    def __init__(self, colors: list[tuple[int, int, int]], frames_per_connection: int, fps: float = 30) -> None:
        jpegs = [cv2.imencode(".jpg", solid_frame(c)[..., ::-1].copy())[1].tobytes() for c in colors]
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                server.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for i in range(frames_per_connection):
                        jpeg = jpegs[i % len(jpegs)]
                        head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                        self.wfile.write(head + jpeg + b"\r\n")
                        time.sleep(1 / fps)
                except OSError:
                    pass  # the client went away

            def log_message(self, *_args) -> None:
                pass

        self.connections = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/video.mjpg"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


@pytest.fixture
def mjpeg_server():
    servers: list[MjpegServer] = []
    yield lambda *args, **kwargs: servers.append(MjpegServer(*args, **kwargs)) or servers[-1]
    for server in servers:
        server.close()


def test_http_mjpeg_stream_delivers_frames_then_reports_the_drop(mjpeg_server):
    server = mjpeg_server([GREEN, GREEN, BLUE], frames_per_connection=30)
    source = StreamSource(server.url)
    source.open()
    frames = []
    try:
        with pytest.raises(SourceLost, match="stopped delivering"):
            while len(frames) < 100:
                frames.append(source.read())
    finally:
        source.close()
    colors = [dominant_color(f) for f in frames]
    assert 20 <= len(frames) <= 30 and set(colors) == {"green", "blue"}  # FFmpeg may use a few to probe


def test_unreachable_stream_is_a_clear_error_quickly():
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_port  # bound, then closed: nothing listens there any more
    started = time.perf_counter()
    with pytest.raises(UserFacingError) as caught:
        StreamSource(f"http://127.0.0.1:{port}/video.mjpg").open()
    assert time.perf_counter() - started < 5
    assert f"127.0.0.1:{port}" in caught.value.message and caught.value.hint


def test_dropped_stream_reconnects_and_frames_flow_again(mjpeg_server):
    server = mjpeg_server([BLUE], frames_per_connection=15)
    statuses: list[SourceStatus] = []
    mailbox = LatestFrame()
    capture = CaptureThread(StreamSource(server.url), mailbox, statuses.append, retry_s=0.05, max_backoff_s=0.2)
    capture.start()
    try:
        deadline = time.perf_counter() + 15
        while server.connections < 3 and time.perf_counter() < deadline:
            time.sleep(0.05)
        frame = mailbox.take(timeout=5)
    finally:
        capture.stop()
    states = [s.state for s in statuses]
    assert server.connections >= 3, states
    assert states[:2] == ["opening", "running"] and "reconnecting" in states
    first_drop = states.index("reconnecting")
    assert "running" in states[first_drop:]  # came back after the drop
    assert "stream" in statuses[first_drop].message and "Retrying" in statuses[first_drop].message
    assert frame is not None and dominant_color(frame.image) == "blue"
    assert states[-1] == "stopped"
