"""The Live tab with a real engine thread, real video files and a real model that tells red, green and blue apart."""
from __future__ import annotations

import csv
import json
import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog

from engine.decode import decode_image
from engine.live.sources import SourceLost, VideoFileSource
from engine.models import Bundle, ModelSpec
from gui.engine_worker import EngineBridge
from gui.live_sources import LivePreferences, SourceChoice
from gui.live_view import LiveView
from tests.conftest import make_bundle
from tests.gui.conftest import WAIT_MS, load_and_wait
from tests.gui.test_classify_view import drag_and_drop, drop_files, file_mime
from tests.video_files import COLORS, color_classifier, solid_frame, write_color_video, write_video

STATS = re.compile(r"capture (\d+) fps · model (\d+\.\d) fps · latency (\d+) ms")
CAPTURE_THREAD = "Classifier Studio capture"


def capture_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == CAPTURE_THREAD and t.is_alive()]


@pytest.fixture
def bridge(qtbot):
    bridge = EngineBridge()
    yield bridge
    bridge.shutdown()
    assert not capture_threads(), "a capture thread outlived its bridge"


@pytest.fixture
def color_bundle(tmp_path) -> Path:
    return color_classifier(tmp_path / "colours")


@pytest.fixture
def view(bridge, qtbot, color_bundle) -> LiveView:
    load_and_wait(bridge, qtbot, color_bundle)
    view = LiveView(bridge)
    qtbot.addWidget(view)
    view.resize(900, 640)
    view.show()
    qtbot.waitExposed(view)
    return view


def play(view: LiveView, path: Path, loop: bool = False) -> None:
    view.source_picker.add_choice(SourceChoice("file", str(path), path.name))
    view.loop_check.setChecked(loop)
    view.start()


def top1(view: LiveView) -> str:
    lines = view.video.top_lines()
    return lines[0].split()[0] if lines else ""


def wait_for_top1(view: LiveView, qtbot, labels: set[str]) -> None:
    qtbot.waitUntil(lambda: top1(view) in labels, timeout=WAIT_MS)


def wait_for_new_frames(view: LiveView, qtbot, count: int) -> None:
    shown = view.video.frame_index
    qtbot.waitUntil(lambda: view.video.frame_index >= shown + count, timeout=WAIT_MS)


def test_a_video_file_plays_with_its_predictions_and_speeds_over_it(view, qtbot, tmp_path, monkeypatch):
    video = write_color_video(tmp_path / "red-then-blue.avi", [COLORS["red"], COLORS["blue"]], 60)
    # Chosen as the user does: the picker's "Video file…" item opens the file dialog.
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_args: (str(video), ""))
    picker = view.source_picker
    picker.activated.emit(picker.findText("Video file…"))
    assert picker.current_choice == SourceChoice("file", str(video), video.name)
    assert view.loop_check.isVisible() and not view.resolution_combo.isVisible()
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)

    wait_for_top1(view, qtbot, {"red"})
    assert view.state == "running" and video.name in view.status_label.text()
    wait_for_new_frames(view, qtbot, 5)  # the picture follows the video, frame after frame
    assert view.video.image.size().toTuple() == (160, 120)
    wait_for_top1(view, qtbot, {"blue"})
    assert len(view.video.top_lines()) == 3  # top-5 of a three-class model
    qtbot.waitUntil(lambda: STATS.fullmatch(view.video.stats_text) is not None, timeout=WAIT_MS)
    capture, model, latency = STATS.fullmatch(view.video.stats_text).groups()
    assert int(capture) > 0 and float(model) > 0 and int(latency) >= 0


def test_long_names_in_the_live_tab_and_status_bar_fit_a_1024_pixel_screen_beside_the_models_panel(
    open_window, qtbot, tmp_path, color_bundle
):
    window = open_window()
    load_and_wait(window.bridge, qtbot, color_bundle)
    window.resize(1024, 640)
    window.tabs.setCurrentWidget(window.live_view)
    view = window.live_view
    video = write_color_video(tmp_path / f"line-3-camera-recording-{'night-shift-' * 6}.avi", [COLORS["red"]], 30)
    play(view, video, loop=True)
    wait_for_top1(view, qtbot, {"red"})
    # A long name is shortened with "…", whole in the tooltip; it does not push the window past the screen.
    qtbot.waitUntil(lambda: video.name in view.status_label.toolTip(), timeout=WAIT_MS)
    assert video.name in view.status_label.text() and view.status_label.width() < view.status_label.sizeHint().width()
    assert window.minimumSizeHint().width() <= 1024 and window.width() == 1024
    view.stop()
    view.source_picker.add_choice(SourceChoice("camera", "0", "Camera 0 (Integrated Webcam)"))  # + resolution box
    assert view.resolution_combo.isVisible() and window.minimumSizeHint().width() <= 1024
    # The status bar too: a long model name and a long error shorten, the name keeping its first characters.
    long_name = f"my_finetuned_resnet50_on_the_factory_parts_dataset_{'v2_' * 10}"
    window.model_status.show_loading(long_name, "CPU · fp32")
    window.model_status.show_error("The model file is damaged: " + "details " * 40)
    qtbot.waitUntil(lambda: window.model_status.model_label.toolTip() == long_name, timeout=WAIT_MS)
    name_label = window.model_status.model_label
    assert name_label.width() >= name_label.fontMetrics().averageCharWidth() * 20
    assert window.minimumSizeHint().width() <= 1024
    window.resize(1800, 800)
    play(view, video, loop=True)
    qtbot.waitUntil(lambda: video.name in view.status_label.text() and not view.status_label.toolTip(), timeout=WAIT_MS)


def test_a_video_dropped_on_the_window_plays_in_the_live_tab_and_the_photos_beside_it_are_classified(
    open_window, qtbot, tmp_path, color_bundle
):
    window = open_window()
    load_and_wait(window.bridge, qtbot, color_bundle)
    green_clip = write_color_video(tmp_path / "green clip.avi", [COLORS["green"]], 30)
    red_photo = tmp_path / "red.png"
    Image.fromarray(solid_frame(COLORS["red"])).save(red_photo)
    drop_files(window.classify_view, qtbot, [green_clip, red_photo])
    assert window.tabs.currentWidget() is window.live_view
    wait_for_top1(window.live_view, qtbot, {"green"})
    assert window.classify_view.single_card.bars.rows[0][0].text() == "red"  # the photo, and no error for the video

    blue_clip = write_color_video(tmp_path / "blue clip.mp4", [COLORS["blue"]], 30, fourcc="mp4v")
    for paths, played in (([red_photo], False), ([blue_clip], True)):  # the Live tab takes videos, not photos
        enter, drop = drag_and_drop(window.live_view, file_mime(paths))
        assert [enter.isAccepted(), drop.isAccepted()] == [played, played]
    wait_for_top1(window.live_view, qtbot, {"blue"})
    assert "blue clip.mp4" in window.live_view.status_label.text()
    assert window.live_view.source_picker.findText("green clip.avi") >= 0  # still there to play again


def test_pause_freezes_the_picture_snapshot_and_recording_save_what_was_seen(view, qtbot, tmp_path, monkeypatch):
    video = write_color_video(tmp_path / "colours.avi", list(COLORS.values()), 10)
    play(view, video, loop=True)
    wait_for_top1(view, qtbot, set(COLORS))

    log_path = tmp_path / "records" / "predictions.csv"
    log_path.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_args: (str(log_path.with_suffix("")), ""))
    qtbot.mouseClick(view.record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.note.text().startswith("Recording predictions to"), timeout=WAIT_MS)
    # The log grows on disk while recording (header, then rows), so a crash mid-recording keeps what was logged.
    qtbot.waitUntil(lambda: len(log_path.read_text(encoding="utf-8").splitlines()) > 2, timeout=WAIT_MS)

    qtbot.mouseClick(view.pause_button, Qt.MouseButton.LeftButton)
    assert view.paused and view.pause_button.text() == "▶ Resume"
    frozen, frozen_lines = view.video.frame_index, view.video.top_lines()
    session = view.bridge.live_session
    # Capture pauses too (a video file resumes where it stopped): nothing new arrives while the display keeps
    # polling. Absence of change has no signal to wait on, so the event loop runs for a while (about 12 frames).
    qtbot.waitUntil(lambda: session.pipeline.capture.paused, timeout=WAIT_MS)
    held = session.pipeline.mailbox.peek().index
    qtbot.wait(400)
    assert session.pipeline.mailbox.peek().index <= held + 1  # at most the read already under way
    assert view.video.frame_index == frozen and view.video.top_lines() == frozen_lines

    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_args: str(snapshots))
    qtbot.mouseClick(view.snapshot_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.note.text().startswith("Saved snapshot"), timeout=WAIT_MS)
    (png,) = snapshots.glob("*.png")
    info = json.loads(png.with_suffix(".json").read_text())
    assert info["top"][0]["label"] == top1(view)
    assert [f"{t['label']} {t['prob'] * 100:.1f}%" for t in info["top"]] == frozen_lines
    # The picture on screen, which is the very frame classified whenever the display saw that one.
    assert info["prediction_frame_index"] <= info["frame_index"] == frozen
    assert np.array_equal(cv2.imread(str(png)), view._shown_frame.image)
    assert LivePreferences.load().snapshot_folder == str(snapshots)  # remembered for the next snapshot and run
    show_folder = next(a for a in view.snapshot_button.actions() if a.text() == "Show snapshot folder")
    show_folder.trigger()  # the offscreen platform, like a desktop without a file manager, opens nothing
    assert view.note.text().startswith(f"Could not open {snapshots}.")

    qtbot.mouseClick(view.pause_button, Qt.MouseButton.LeftButton)
    assert not view.paused
    wait_for_new_frames(view, qtbot, 3)

    qtbot.mouseClick(view.record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.note.text().startswith("Recorded"), timeout=WAIT_MS)
    with log_path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert rows and f"Recorded {len(rows)} predictions to predictions.csv" == view.note.text()
    assert {row["top1_label"] for row in rows} <= set(COLORS)
    assert all(0 <= float(row["top1_prob"]) <= 1 and float(row["latency_ms"]) >= 0 for row in rows)
    assert view.running and view.record_button.text() == "● Record…"


def test_switching_the_model_keeps_the_stream_running(view, qtbot, tmp_path):
    video = write_color_video(tmp_path / "colours.avi", list(COLORS.values()), 10)
    play(view, video, loop=True)
    wait_for_top1(view, qtbot, set(COLORS))
    session = view.bridge.live_session

    animals = make_bundle(tmp_path / "animals", labels=("cat", "dog", "bird"))
    view.bridge.request_load(ModelSpec(source=Bundle(str(animals))))
    wait_for_top1(view, qtbot, {"cat", "dog", "bird"})
    assert {line.split()[0] for line in view.video.top_lines()} == {"cat", "dog", "bird"}
    assert view.bridge.live_session is session and view.state == "running"
    wait_for_new_frames(view, qtbot, 3)
    assert view.video.model_name == animals.name


def test_a_missing_video_file_is_said_inline(view, qtbot, tmp_path):
    play(view, tmp_path / "gone.mp4")
    qtbot.waitUntil(lambda: view.state == "failed", timeout=WAIT_MS)
    assert view.banner.isVisible()
    assert "gone.mp4" in view.banner.message_label.text() and "does not exist" in view.banner.message_label.text()
    assert not view.running and view.start_button.text() == "▶ Start" and view.start_button.isEnabled()
    assert "Could not" in view.status_label.text()


def test_the_end_of_a_video_is_said_and_the_last_picture_stays(view, qtbot, tmp_path):
    video = write_color_video(tmp_path / "short.avi", [COLORS["green"]], 15)
    play(view, video)
    qtbot.waitUntil(lambda: view.state == "ended", timeout=WAIT_MS)
    assert "short.avi has ended" in view.status_label.text()
    assert view.video.image is not None and not view.running
    qtbot.waitUntil(lambda: not capture_threads(), timeout=WAIT_MS)


class UnpluggedOnce(VideoFileSource):
    """A real video that stops delivering after a few frames, once, as an unplugged camera does."""

    def __init__(self, path: str) -> None:
        super().__init__(path, loop=True)
        self.reads = 0

    def read(self) -> np.ndarray | None:
        self.reads += 1
        if self.reads == 10:
            raise SourceLost("Camera 9 stopped delivering frames (unplugged?).")
        return super().read()


def test_a_lost_source_is_said_while_it_reconnects_then_plays_on(view, qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(LiveView, "_make_source", lambda _view, choice: UnpluggedOnce(choice.target))
    play(view, write_color_video(tmp_path / "camera.avi", [COLORS["green"]], 30))
    qtbot.waitUntil(lambda: view.state == "reconnecting", timeout=WAIT_MS)
    assert "unplugged" in view.status_label.text() and "Retrying every 3 s" in view.status_label.text()
    assert view.video.badge == "Reconnecting…" and view.running
    qtbot.waitUntil(lambda: view.state == "running", timeout=WAIT_MS)
    assert not view.video.badge
    wait_for_new_frames(view, qtbot, 3)
    wait_for_top1(view, qtbot, {"green"})


def test_stream_addresses_are_checked_and_passwords_never_shown(view, qtbot, monkeypatch):
    picker = view.source_picker
    answers = iter([("www.example.com/camera", True), ("rtsp://admin:secret@192.168.1.20:554/stream1", True)])
    monkeypatch.setattr(QInputDialog, "getText", lambda *_args, **_kwargs: next(answers))
    picker.activated.emit(picker.findText("Stream URL…"))
    assert view.banner.isVisible() and "not a stream address" in view.banner.message_label.text()
    assert picker.current_choice is None or picker.current_choice.kind != "url"

    picker.activated.emit(picker.findText("Stream URL…"))
    choice = picker.current_choice
    assert choice.kind == "url" and choice.target.endswith("@192.168.1.20:554/stream1")
    assert "admin:***@192.168.1.20" in picker.currentText()
    roles = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole)
    shown = [picker.itemData(i, role) or "" for i in range(picker.count()) for role in roles]
    assert not any("secret" in text for text in shown)
    assert view.start_button.isEnabled() and not view.loop_check.isVisible()


def test_without_a_model_frames_show_and_predictions_start_once_one_loads(bridge, qtbot, tmp_path, color_bundle):
    view = LiveView(bridge)
    qtbot.addWidget(view)
    view.show()
    play(view, write_color_video(tmp_path / "red.avi", [COLORS["red"]], 30), loop=True)
    qtbot.waitUntil(lambda: "No model is loaded" in view.video.notice, timeout=WAIT_MS)
    wait_for_new_frames(view, qtbot, 3)
    load_and_wait(bridge, qtbot, color_bundle)
    wait_for_top1(view, qtbot, {"red"})
    assert not view.video.notice


def test_the_crop_box_chooses_what_the_model_sees(view, qtbot, tmp_path):
    """Left half red, right half blue: the box dragged from one side to the other changes the prediction."""
    halves = np.concatenate([solid_frame(COLORS["red"], (80, 120)), solid_frame(COLORS["blue"], (80, 120))], axis=1)
    play(view, write_video(tmp_path / "halves.avi", [halves] * 30), loop=True)
    view.smoothing_slider.setValue(0)
    wait_for_new_frames(view, qtbot, 1)
    view.crop_check.setChecked(True)
    _x, y, width, height = view.video.roi
    view.video.set_roi((0.05, y, width, height))  # over the red half
    view._set_roi(view.video.roi)
    wait_for_top1(view, qtbot, {"red"})

    box = view.video.roi_rect()
    start = box.center().toPoint()
    end = start + QPoint(int(view.video.image_rect().width() * 0.5), 0)
    qtbot.mousePress(view.video, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view.video, end)
    qtbot.mouseRelease(view.video, Qt.MouseButton.LeftButton, pos=end)
    assert view.video.roi[0] > 0.5
    assert view.bridge.live_session.pipeline.settings.roi == view.video.roi
    wait_for_top1(view, qtbot, {"blue"})


def test_closing_the_window_while_streaming_stops_everything_promptly(open_window, qtbot, tmp_path, color_bundle):
    window = open_window()
    load_and_wait(window.bridge, qtbot, color_bundle)
    window.tabs.setCurrentWidget(window.live_view)
    play(window.live_view, write_color_video(tmp_path / "colours.avi", list(COLORS.values()), 10), loop=True)
    wait_for_top1(window.live_view, qtbot, set(COLORS))
    session = window.bridge.live_session
    assert session.pipeline.capture.alive

    started = time.perf_counter()
    window.close()
    assert time.perf_counter() - started < 5
    assert not session.pipeline.capture.alive and not capture_threads()
    assert not window.live_view.running


def test_videos_and_streams_chosen_are_offered_again_next_time_but_no_password_is_written(
    bridge, qtbot, tmp_path, settings_folder
):
    kept_video = write_color_video(tmp_path / "night shift.avi", [COLORS["red"]], 3)
    deleted_video = write_color_video(tmp_path / "deleted.avi", [COLORS["red"]], 3)
    plain, with_password, with_token = (
        "rtsp://cam.local:554/stream1", "rtsp://admin:s3cret@cam.local/stream2", "http://cam.local/mjpeg?token=t0ken",
    )
    first = LiveView(bridge)
    qtbot.addWidget(first)
    for kind, target in (("file", deleted_video), ("url", plain), ("url", with_password), ("url", with_token),
                         ("file", kept_video)):
        first.source_picker.add_choice(SourceChoice(kind, str(target), Path(target).name if kind == "file" else target))
    assert with_password in targets_offered(first)  # usable while the app runs
    deleted_video.unlink()

    written = "".join(path.read_text(encoding="utf-8") for path in settings_folder.rglob("*") if path.is_file())
    assert plain in written and "s3cret" not in written and "t0ken" not in written
    second = LiveView(bridge)  # the next run
    qtbot.addWidget(second)
    assert targets_offered(second) == [str(kept_video), plain]  # newest first; no deleted video, no secrets


def targets_offered(view: LiveView) -> list[str]:
    items = [view.source_picker.itemData(i) for i in range(view.source_picker.count())]
    return [item.target for item in items if isinstance(item, SourceChoice) and item.kind != "camera"]


def test_look_closer_pauses_and_classifies_what_the_model_saw_in_the_classify_tab(open_window, qtbot, tmp_path,
                                                                                  color_bundle):
    """Red on the left, blue on the right, mirrored: the crop box on the left of the picture holds blue."""
    window = open_window()
    load_and_wait(window.bridge, qtbot, color_bundle)
    live = window.live_view
    window.tabs.setCurrentWidget(live)
    halves = np.concatenate([solid_frame(COLORS["red"], (80, 120)), solid_frame(COLORS["blue"], (80, 120))], axis=1)
    play(live, write_video(tmp_path / "halves.avi", [halves] * 30), loop=True)
    live.smoothing_slider.setValue(0)
    live.mirror_check.setChecked(True)
    wait_for_new_frames(live, qtbot, 1)
    live.crop_check.setChecked(True)
    live._set_roi((0.05, 0.1, 0.4, 0.8))
    captured = live.bridge.live_session.pipeline.mailbox.peek().index
    # A prediction of a frame captured after the box moved: made with the box where it is now.
    qtbot.waitUntil(lambda: getattr(live.on_screen()[1], "frame_index", -1) > captured, timeout=WAIT_MS)

    view = window.classify_view
    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        qtbot.mouseClick(live.outputs.look_button, Qt.MouseButton.LeftButton)
    assert live.paused and window.tabs.currentWidget() is view
    result, paused = view.single_card.result, live.on_screen()[1]
    assert result.path == "Live frame" and result.top[0].label == paused.top[0].label == "blue"
    # Without smoothing, the Classify tab's answer is the one the Live tab showed for that picture.
    assert [t.label for t in result.top] == [t.label for t in paused.top]
    assert np.allclose([t.prob for t in result.top], [t.prob for t in paused.top], atol=1e-4)
    seen = np.asarray(decode_image(view.pasted.get("Live frame")))  # what was sent: the box's part, mirrored
    assert seen.shape == (round(0.8 * 120), round(0.4 * 160), 3)  # of the 160x120 video
    assert np.abs(seen.astype(int) - COLORS["blue"]).max() <= 8  # all blue, give or take the video codec's noise

    looked = view.single_looked
    looked.button.click()
    qtbot.waitUntil(lambda: not looked.looking, timeout=WAIT_MS)
    assert "“blue”" in looked.caption.text()
