"""`python main.py --self-test`: every part passes on a working installation, offscreen and offline, leaving the
user's folders as they were; a failing part is reported with its reason while the other parts still run."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from engine.paths import DATA_DIR_ENV
from engine.self_test import SelfTestContext, SelfTestFailure, run_self_test
from main import main

REPO = Path(__file__).resolve().parents[1]
PARTS = ("catalog", "model", "photos", "onnxruntime", "zero-shot", "live", "training", "window")
HANG_GUARD_S = 600  # a self-test still running after this long is stuck; fail instead of hanging the suite
PART_LINE = re.compile(r"^(?P<status>PASS|FAIL)  (?P<name>\S+) +(?P<detail>.+) \(\d+\.\d s\)$")


def part_lines(output: str) -> dict[str, tuple[str, str]]:
    """{part name: (PASS or FAIL, what it said)} for each part's line in the output."""
    found = {}
    for line in output.splitlines():
        match = PART_LINE.match(line)
        if match:
            found[match["name"]] = (match["status"], match["detail"])
    return found


def test_self_test_passes_every_part_offscreen_and_leaves_the_users_folders_alone(tmp_path, monkeypatch):
    user_data = tmp_path / "user_data"
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(user_data))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("TMPDIR", str(temp))  # where the self-test's own temporary folder goes

    done = subprocess.run(
        [sys.executable, "main.py", "--self-test"],
        cwd=REPO, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=HANG_GUARD_S, check=False,
    )

    lines = part_lines(done.stdout)
    assert list(lines) == list(PARTS), done.stdout + done.stderr
    failures = {name: detail for name, (status, detail) in lines.items() if status != "PASS"}
    assert failures == {}, done.stderr
    assert done.stdout.splitlines()[-1] == "Self-test passed (8/8)"
    assert done.returncode == 0
    assert "ONNX Runtime" in lines["onnxruntime"][1]
    assert lines["photos"][1].startswith("HEIC: ") and "AVIF: " in lines["photos"][1]
    assert "offscreen" in lines["window"][1]
    assert not user_data.exists()  # everything went into the self-test's temporary data folder
    assert not (Path(os.environ["XDG_CONFIG_HOME"]) / "Classifier Studio").exists()  # the window's settings too
    assert [p.name for p in temp.iterdir() if p.name.startswith("classifier-studio-self-test")] == []


def test_a_failing_part_says_why_and_the_parts_after_it_still_run(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "user_data"))
    seen: list[tuple[str, Path, str]] = []

    def record(name: str):
        def check(context: SelfTestContext) -> str:
            seen.append((name, context.folder, os.environ[DATA_DIR_ENV]))
            return f"{name} is fine"

        return check

    def broken(context: SelfTestContext) -> str:
        raise RuntimeError("the video codec is missing\n(second line of OpenCV's message)")

    def unmet(context: SelfTestContext) -> str:
        raise SelfTestFailure("the window was not shown")

    out = io.StringIO()
    code = run_self_test(
        [("first", record("first")), ("broken", broken), ("unmet", unmet), ("last", record("last"))], out
    )

    assert code == 1
    lines = part_lines(out.getvalue())
    assert lines == {
        "first": ("PASS", "first is fine"),
        "broken": ("FAIL", "RuntimeError: the video codec is missing (second line of OpenCV's message)"),
        "unmet": ("FAIL", "the window was not shown"),
        "last": ("PASS", "last is fine"),
    }
    assert out.getvalue().splitlines()[-1] == "Self-test FAILED (2/4 passed; failed: broken, unmet)"
    # Both parts ran in one temporary folder that was also the data folder, and is gone; the setting is restored.
    [(_, folder, data_dir), (_, same_folder, _)] = seen
    assert folder == same_folder and Path(data_dir).is_relative_to(folder)
    assert not folder.exists()
    assert os.environ[DATA_DIR_ENV] == str(tmp_path / "user_data")


def test_parts_that_all_pass_exit_zero():
    out = io.StringIO()
    assert run_self_test([("only", lambda context: "fine")], out) == 0
    assert part_lines(out.getvalue()) == {"only": ("PASS", "fine")}
    assert out.getvalue().splitlines()[-1] == "Self-test passed (1/1)"


def test_an_unknown_self_test_option_is_a_usage_error(capsys):
    assert main(["--self-test", "--fast"]) == 2
    assert "--fast" in capsys.readouterr().err
