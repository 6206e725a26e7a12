"""`python main.py live …` run for real on real video files, with a real model that tells colours apart."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from engine import cli, cli_common
from engine.cli_live import SourceReporter
from engine.live.capture import SourceStatus
from tests.test_cli import CTRL_C_NEEDS_POSIX, interrupt_after_first_result, isolated_bug_log, run_cli  # noqa: F401
from tests.video_files import COLOR_LABELS, COLORS, color_classifier, write_color_video

HUMAN_LINE = re.compile(r"^frame (?P<index>\d+)  (?P<ms>\d+) ms  (?P<classes>.+)$")  # "frame 12  34 ms  92.3 % red"
HUMAN_CLASS = re.compile(r"^ *\d{1,3}\.\d % (?P<label>.+)$")
PREDICTION_KEYS = {"frame_index", "top", "latency_ms", "inference_fps", "capture_fps", "dropped"}


@pytest.fixture(scope="module")
def colour_bundle(tmp_path_factory) -> Path:
    return color_classifier(tmp_path_factory.mktemp("colour_bundle"))


def red_then_blue(folder: Path, frames_per_color: int) -> Path:
    return write_color_video(folder / "red_then_blue.avi", [COLORS["red"], COLORS["blue"]], frames_per_color)


def collapse(labels: list[str]) -> list[str]:
    """["red", "red", "blue"] → ["red", "blue"]: the order in which the predictions changed."""
    return [label for i, label in enumerate(labels) if i == 0 or labels[i - 1] != label]


def test_json_predictions_follow_the_video_from_red_to_blue_then_a_summary(tmp_path, colour_bundle):
    video = red_then_blue(tmp_path, frames_per_color=20)

    done = run_cli("live", video, "--model", colour_bundle, "--json", "--topk", 3)

    assert done.returncode == 0, done.stderr
    *predictions, summary = [json.loads(line) for line in done.stdout.splitlines()]  # every stdout line is JSON
    assert predictions
    for prediction in predictions:
        assert set(prediction) == PREDICTION_KEYS
        assert sorted(top["label"] for top in prediction["top"]) == sorted(COLOR_LABELS)  # --topk 3
        probs = [top["prob"] for top in prediction["top"]]
        assert probs == sorted(probs, reverse=True) and all(0.0 <= p <= 1.0 for p in probs)
        assert prediction["latency_ms"] >= 0 and prediction["dropped"] >= 0
    indices = [p["frame_index"] for p in predictions]
    assert indices == sorted(set(indices)) and indices[-1] < 40
    assert collapse([p["top"][0]["label"] for p in predictions]) == ["red", "blue"]

    assert summary["summary"] is True and summary["predictions"] == len(predictions)
    assert summary["inference_fps"] > 0 and summary["capture_fps"] > 0 and summary["source_fps"] == 30
    assert 0 <= summary["latency_ms_median"] <= summary["latency_ms_p95"]
    assert summary["dropped"] == predictions[-1]["dropped"]
    assert "Traceback" not in done.stderr


def test_frames_stops_after_n_predictions_and_loop_plays_a_short_file_again(tmp_path, colour_bundle):
    video = red_then_blue(tmp_path, frames_per_color=3)  # 6 frames: 15 predictions need it played 3 times or more

    done = run_cli("live", video, "--model", colour_bundle, "--loop", "--frames", 15, "--topk", 2)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 15
    for line in lines:
        match = HUMAN_LINE.match(line)
        assert match, line
        classes = [HUMAN_CLASS.match(part) for part in match["classes"].split("   ")]
        assert len(classes) == 2 and all(c and c["label"] in COLOR_LABELS for c in classes), line
    for figure in ("15 predictions", "inference", "capture", "FPS", "latency", "median", "p95", "dropped"):
        assert figure in done.stderr
    assert "Traceback" not in done.stderr


@CTRL_C_NEEDS_POSIX
def test_ctrl_c_stops_a_looping_video_with_exit_130_and_still_prints_the_summary(tmp_path, colour_bundle):
    video = red_then_blue(tmp_path, frames_per_color=10)

    returncode, stdout, stderr = interrupt_after_first_result(
        "live", video, "--model", colour_bundle, "--loop", "--json"
    )

    assert returncode == 130, stderr
    records = [json.loads(line) for line in stdout.splitlines()]
    assert records[-1]["summary"] is True and records[-1]["predictions"] == len(records) - 1 >= 1
    assert "Traceback" not in stderr


@pytest.mark.parametrize("case", ["missing file", "text file named .mp4", "camera 7"])
def test_a_source_that_cannot_be_opened_is_a_clear_error_before_the_model_loads(case, tmp_path, colour_bundle):
    if case == "missing file":
        source, named = tmp_path / "no_such_clip.mp4", "no_such_clip.mp4"
    elif case == "text file named .mp4":
        source, named = tmp_path / "notes.mp4", "notes.mp4"
        source.write_text("a shopping list, not a video", encoding="utf-8")
    else:
        source, named = "7", "7"  # no machine that runs the tests has eight cameras

    done = run_cli("live", source, "--model", colour_bundle)

    assert done.returncode == 2, done.stderr
    assert "error: " in done.stderr and "hint: " in done.stderr and named in done.stderr
    assert "Loading" not in done.stderr  # the user hears about the source without waiting for the model
    assert done.stdout == "" and "Traceback" not in done.stderr


def test_help_documents_the_options(capsys):
    assert cli.main(["live", "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in ("SOURCE", "--model", "--weights", "--device", "--frames", "--json", "--loop", "--topk",
                   "--smoothing", "--mirror", "examples", "130"):
        assert option in help_text
    assert cli.main(["live", "0", "--smoothing", "1.5"]) == 2
    assert "--smoothing" in capsys.readouterr().err


def test_a_camera_that_drops_out_is_reported_as_reconnecting_and_back(capsys):
    show = SourceReporter(cli_common.StderrReporter(sys.stderr))
    lost = "Camera 0 stopped delivering frames (unplugged?). Retrying every 3 s…"
    for event in (SourceStatus("running", "Camera 0"), SourceStatus("reconnecting", lost),
                  SourceStatus("running", "Reconnected to Camera 0.")):
        show(event)

    assert capsys.readouterr().err.splitlines() == [f"reconnecting: {lost}", "Reconnected to Camera 0."]
