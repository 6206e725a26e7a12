"""The command line, run for real as `python main.py …` on real photos and tiny self-made models."""
from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import timm
from safetensors.torch import save_file

from engine import cli, cli_classify, cli_common, devices, predict
from engine.catalog import catalog, find_entry
from engine.clip_catalog import CLIP_MODELS
from engine.errors import UserFacingError
from engine.models import Bundle, Hub, WeightsFile
from engine.paths import DATA_DIR_ENV
from tests.conftest import TINY_ARCH
from tests.video_files import write_color_video

REPO = Path(__file__).resolve().parents[1]
TOP_LINE = re.compile(r"^ +\d{1,3}\.\d %  (?P<label>.+)$")  # "  92.3 %  tabby, tabby cat"
HANG_GUARD_S = 120  # a subprocess that runs this long is stuck; fail instead of hanging the suite


@pytest.fixture(autouse=True)
def isolated_bug_log(tmp_path, monkeypatch) -> None:
    """The CLI's bug log goes under the test's folder on every OS (subprocesses inherit this), never the real home."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "user_data"))


def run_cli(*args: object, timeout: float = HANG_GUARD_S) -> subprocess.CompletedProcess:
    """`python main.py ARGS` from the repository root, with the test's (isolated, offline) environment."""
    return subprocess.run(
        [sys.executable, "main.py", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
    )


def human_results(stdout: str) -> dict[str, list[str]]:
    """Path line → its top-class labels, from the human-readable output."""
    results: dict[str, list[str]] = {}
    current = ""
    for line in stdout.splitlines():
        match = TOP_LINE.match(line)
        if match:
            results[current].append(match["label"])
        else:
            current = line.rsplit("  (", 1)[0]
            assert line.endswith(" ms)"), line
            results[current] = []
    return results


def test_classify_with_a_bundle_prints_each_image_and_its_top_classes(photo_files, tiny_bundle):
    done = run_cli("classify", *photo_files, "--model", tiny_bundle, "--topk", 3)

    assert done.returncode == 0, done.stderr
    results = human_results(done.stdout)
    assert list(results) == [str(p) for p in photo_files]
    for labels in results.values():
        assert sorted(labels) == ["bird", "cat", "dog"]
    assert "Traceback" not in done.stderr


def test_on_the_cpu_onnx_runtime_gives_pytorchs_answers_and_the_backend_can_be_chosen(photo_files, tiny_bundle):
    by_backend = {}
    for backend in ("pytorch", "auto"):
        done = run_cli("classify", *photo_files, "--model", tiny_bundle, "--json", "--topk", 3, "--backend", backend)
        assert done.returncode == 0, done.stderr
        by_backend[backend] = [json.loads(line) for line in done.stdout.splitlines()]
    assert "· PyTorch" in run_cli("classify", photo_files[0], "--model", tiny_bundle, "--backend", "pytorch").stderr
    assert "· ONNX Runtime" in done.stderr  # auto, on this CPU
    for eager, onnx in zip(by_backend["pytorch"], by_backend["auto"]):
        assert [t["label"] for t in eager["top"]] == [t["label"] for t in onnx["top"]]
        assert [t["prob"] for t in eager["top"]] == pytest.approx([t["prob"] for t in onnx["top"]], abs=1e-4)

    int8 = run_cli("classify", *photo_files, "--model", tiny_bundle, "--int8", "--json")
    assert int8.returncode == 0, int8.stderr
    assert "ONNX Runtime int8" in int8.stderr and "int8: top-1 agrees" in int8.stderr


def test_json_lines_recurse_folders_and_report_bad_files_without_stopping(photo_files, tiny_bundle, tmp_path):
    folder = photo_files[0].parent
    nested = folder / "more" / "deeper"
    nested.mkdir(parents=True)
    copy = nested / "copy.png"
    copy.write_bytes(photo_files[1].read_bytes())
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" * 20)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("a shopping list, not a picture", encoding="utf-8")
    missing = tmp_path / "no_such_photo.jpg"
    clip = write_color_video(tmp_path / "clip.avi", [(255, 0, 0)], 5)

    done = run_cli("classify", folder, text_file, missing, clip, "--model", tiny_bundle, "--json", "--topk", 2)

    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # every stdout line is JSON
    by_path = {line["path"]: line for line in lines}
    good = {str(p) for p in photo_files} | {str(copy)}
    bad = {str(corrupt), str(text_file), str(missing), str(clip)}
    assert set(by_path) == good | bad and len(lines) == len(by_path)
    for path in good:
        result = by_path[path]
        assert set(result) == {"path", "top", "ms"}
        assert len(result["top"]) == 2
        for top in result["top"]:
            assert set(top) == {"label", "index", "prob"} and top["label"] in {"cat", "dog", "bird"}
        probs = [top["prob"] for top in result["top"]]
        assert probs == sorted(probs, reverse=True) and all(0.0 <= p <= 1.0 for p in probs)
    for path in bad:
        assert set(by_path[path]) == {"path", "error"} and by_path[path]["error"]
        assert f"{path}: " in done.stderr  # and each failure named on the terminal
    assert "is a video" in by_path[str(clip)]["error"] and f"main.py live {clip}" in by_path[str(clip)]["error"]
    took = re.search(rf"{len(good)} of {len(lines)} images classified in (\d+ ms|\d+\.\d s)", done.stderr)
    assert took and took.group(1) != "0.0 s"
    assert f"; {len(bad)} could not be read." in done.stderr
    assert "Traceback" not in done.stderr


class RunsAShellCommand:
    """A "weights file" whose unpickling runs a command: what a hostile .pth looks like."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_web_addresses_are_downloaded_and_classified_after_the_files(photo_files, tiny_bundle, tmp_path):
    from tests.web_site import WebSite

    with WebSite() as site:
        picture = site.add("/cats/chelsea.jpg", "image/jpeg", photo_files[0].read_bytes())
        page = site.add("/cats/", "text/html", b"<html>cats</html>")
        done = run_cli("classify", picture, photo_files[0], page, "--model", tiny_bundle, "--json", "--topk", 3)
        sorting = run_cli("classify", picture, "--model", tiny_bundle, "--sort-into", tmp_path / "sorted")

    assert done.returncode == 1, done.stderr  # one address led to no picture
    local, web, dead = [json.loads(line) for line in done.stdout.splitlines()]
    assert local["path"] == str(photo_files[0]) and web["path"] == picture
    assert [t["label"] for t in web["top"]] == [t["label"] for t in local["top"]]  # the same bytes
    assert web["top"][0]["prob"] == pytest.approx(local["top"][0]["prob"], abs=1e-4)
    assert dead == {"path": page, "error": dead["error"]} and "is a web page, not a picture" in dead["error"]
    assert "Downloading chelsea.jpg" in done.stderr and "2 of 3 images classified" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorting.returncode == 2 and "a web address is not one" in sorting.stderr
    assert not (tmp_path / "sorted").exists()


def test_weights_file_loads_safetensors_and_refuses_a_pickle_that_runs_code(photo_files, tmp_path):
    weights = tmp_path / "finetuned.safetensors"
    save_file(timm.create_model(TINY_ARCH, pretrained=False).state_dict(), str(weights))
    done = run_cli("classify", photo_files[0], "--model", TINY_ARCH, "--weights", weights)
    assert done.returncode == 0, done.stderr
    assert list(human_results(done.stdout)) == [str(photo_files[0])]

    proof = tmp_path / "payload_works"
    pickle.loads(pickle.dumps(RunsAShellCommand(f"touch '{proof}'")))
    assert proof.exists(), "the hostile file must really run code when unpickled, or this test proves nothing"
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.pth"
    hostile.write_bytes(pickle.dumps(RunsAShellCommand(f"touch '{marker}'")))

    done = run_cli("classify", photo_files[0], "--model", TINY_ARCH, "--weights", hostile)

    assert done.returncode == 2
    assert "refused" in done.stderr and "hostile.pth" in done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists()


def test_unknown_model_name_is_a_usage_error_with_suggestions(photo_files):
    done = run_cli("classify", photo_files[0], "--model", "resnet5O")

    assert done.returncode == 2
    assert "Did you mean" in done.stderr and "resnet50" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_unreachable_hub_fails_fast_and_says_how_to_work_offline(photo_files):
    started = time.monotonic()
    done = run_cli("classify", photo_files[0], "--model", "resnet18", timeout=60)
    elapsed = time.monotonic() - started

    assert done.returncode == 2, done.stderr
    assert elapsed < 20, f"an unreachable Hub took {elapsed:.0f} s to report"
    assert "internet" in done.stderr and "--weights" in done.stderr
    assert "Traceback" not in done.stderr


CTRL_C_NEEDS_POSIX = pytest.mark.skipif(
    sys.platform == "win32", reason="Ctrl+C cannot be sent to a child process as SIGINT on Windows"
)


def interrupt_after_first_result(*args: object) -> tuple[int, str, str]:
    """Run `python main.py ARGS`, press Ctrl+C once its first result is printed, and return the exit status and
    everything it wrote (stdout, stderr). Tests that use it are marked CTRL_C_NEEDS_POSIX."""
    with subprocess.Popen(
        [sys.executable, "main.py", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    ) as process:
        try:
            first = process.stdout.readline()  # the first result: the model is loaded and classifying
            assert first.strip(), process.stderr.read()
            process.send_signal(signal.SIGINT)
            # Keep reading through the same buffered stream: communicate() reads the raw pipe and would drop
            # whatever readline() already buffered.
            stdout = process.stdout.read()
            stderr = process.stderr.read()
            process.wait(timeout=HANG_GUARD_S)
        finally:
            process.kill()
    return process.returncode, first + stdout, stderr


@CTRL_C_NEEDS_POSIX
def test_ctrl_c_stops_at_the_next_batch_with_exit_130(photo_files, tiny_bundle):
    folder = photo_files[0].parent
    many = [folder] * 200  # far more images than are classified before the signal lands

    returncode, stdout, stderr = interrupt_after_first_result(
        "classify", *many, "--model", tiny_bundle, "--batch-size", 1
    )

    assert returncode == 130, stderr
    assert "Cancelled" in stderr and "Traceback" not in stderr
    assert len(human_results(stdout)) < len(many) * len(photo_files)


def test_help_answers_without_loading_torch():
    command = [sys.executable, "-X", "importtime", "main.py", "--help"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0
    assert "classify" in done.stdout and "models" in done.stdout and "examples" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "torch" not in imported


def test_classify_help_version_and_missing_paths(capsys):
    assert cli.main(["classify", "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in ("--model", "--weights", "--device", "--precision", "--topk", "--batch-size", "--json", "examples"):
        assert option in help_text

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("Classifier Studio ")

    assert cli.main(["classify"]) == 2
    assert "PATH" in capsys.readouterr().err
    assert cli.main(["classify", "photo.jpg", "--topk", "0"]) == 2


def test_models_lists_the_catalog_as_a_table_and_as_json(capsys):
    entries = catalog()
    assert cli.main(["models"]) == 0
    table = capsys.readouterr().out
    for entry in entries:
        assert entry.display_name in table and entry.arch in table

    for model in CLIP_MODELS:  # zero-shot models after the catalog
        assert model.display_name in table and model.arch in table

    assert cli.main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == len(entries) + len(CLIP_MODELS)
    resnet50 = next(item for item in listed if item["arch"].split(".")[0] == "resnet50")
    assert resnet50["params"] == 25_557_032 and resnet50["zero_shot"] is False
    assert set(listed[-1]) >= set(resnet50)  # a CLIP entry has every field a catalog entry has
    assert listed[-1]["arch"] == CLIP_MODELS[-1].arch and listed[-1]["zero_shot"] is True

    assert cli.main(["models", "--family", "clip", "--json"]) == 0
    assert [item["arch"] for item in json.loads(capsys.readouterr().out)] == [m.arch for m in CLIP_MODELS]
    assert cli.main(["models", "--tag", "zero-shot"]) == 0
    table = capsys.readouterr().out
    assert CLIP_MODELS[0].display_name in table and entries[0].display_name not in table

    assert cli.main(["models", "--tag", "Fastest", "--json"]) == 0
    fastest = json.loads(capsys.readouterr().out)
    assert fastest and all("fastest" in item["tags"] for item in fastest) and len(fastest) < len(entries)

    assert cli.main(["models", "--family", "no such family"]) == 2
    assert "ResNet" in capsys.readouterr().err  # the error lists the families there are


def test_model_option_names_catalog_models_bundles_and_weights(tiny_bundle):
    # The curated checkpoint:
    assert cli_common.model_spec_from_args("ResNet-50", None).arch == find_entry("resnet50").arch
    assert cli_common.model_spec_from_args("resnet50.tv_in1k", None).source == Hub()
    assert cli_common.model_spec_from_args(str(tiny_bundle), None).source == Bundle(str(tiny_bundle))
    assert cli_common.model_spec_from_args(TINY_ARCH, "w.pth").source == WeightsFile("w.pth")
    assert cli_common.model_spec_from_args(None, None) == cli_common.default_model_spec()
    for model, weights in ((None, "w.pth"), (str(tiny_bundle), "w.pth"), ("missing_bundle.safetensors", None)):
        with pytest.raises(UserFacingError):
            cli_common.model_spec_from_args(model, weights)


def test_option_choices_match_the_engine():
    assert cli_common.DEVICE_CHOICES == devices.DEVICE_CHOICES
    assert set(cli_common.PRECISION_CHOICES) == set(devices.PRECISIONS)
    from engine import runtime

    assert cli_common.BACKEND_CHOICES == runtime.BACKENDS
    assert (cli_classify.DEFAULT_TOPK, cli_classify.DEFAULT_BATCH) == (predict.DEFAULT_TOPK, predict.DEFAULT_BATCH)


def test_an_unexpected_error_is_one_line_and_the_details_go_to_the_log(capsys):
    def broken_command(_args):
        raise RuntimeError("a bug in Classifier Studio")

    assert cli.run_guarded(broken_command, None) == 3
    err = capsys.readouterr().err
    assert err.startswith("something went wrong: ") and err.count("\n") == 1
    assert "Traceback" not in err
    log = cli.bug_log_path()
    assert str(log) in err and "a bug in Classifier Studio" in log.read_text(encoding="utf-8")


def test_with_no_model_the_built_in_one_names_real_photos_offline(photo_files, monkeypatch):
    """The first-start story with the network cable pulled: no --model, real photos, real ImageNet labels."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    chelsea = photo_files[0]  # chelsea.jpg, beside coffee.png, astronaut.webp and rocket.jpg
    iphone = chelsea.parent / "IMG_0001.HEIC"  # as an iPhone names its photos
    iphone.write_bytes((REPO / "resources" / "self-test" / "chelsea.heic").read_bytes())
    done = run_cli("classify", chelsea.parent, "--json")

    assert done.returncode == 0, done.stderr
    top1 = {Path(r["path"]).stem: r["top"][0]["label"] for r in map(json.loads, done.stdout.splitlines())}
    assert top1["chelsea"] in {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
    assert top1["IMG_0001"] in {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
    assert top1["coffee"] in {"espresso", "cup"}

    listed = run_cli("models")
    lines = listed.stdout.splitlines()
    first_row = lines[2] if "---" in lines[1] else lines[1]
    assert "EfficientNet-Lite0" in first_row and "built in" in first_row
