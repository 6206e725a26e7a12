"""`train` and `evaluate` on the command line, run in-process on real shape images with a tiny model from scratch."""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from engine.bundle import is_bundle
from engine.cli import EXIT_CANCELLED, EXIT_OK, EXIT_USAGE, main
from engine.cli_train import TrainReporter
from engine.errors import Cancelled
from engine.events import CancelToken
from engine.paths import DATA_DIR_ENV
from engine.training.dataset import scan_class_folders
from engine.training.plan import EpochMetrics, StepMetrics, TrainPlan, default_model_name
from engine.training.run import CHECKPOINT_FILE, create_run, open_run, runs_dir
from engine.training.trainer import train_run
from tests.training.shapes import SHAPE_CLASSES, write_shapes_dataset

TINY = ["--model", "test_efficientnet", "--init", "scratch", "--image-size", "64", "--batch-size", "16"]
SIGNAL_GUARD_S = 120  # the Ctrl+C test gives up waiting for a first checkpoint after this long


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return write_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", per_class=30, seed=0)


@pytest.fixture(scope="module")
def few_shapes(tmp_path_factory) -> Path:
    return write_shapes_dataset(tmp_path_factory.mktemp("few") / "few_shapes", per_class=10, seed=3)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> Path:
    return write_shapes_dataset(tmp_path_factory.mktemp("held_out") / "held_out", per_class=8, seed=99)


@pytest.fixture(scope="module")
def full_training(tmp_path_factory, shapes, one_torch_thread) -> tuple[int, dict, Path]:
    """One full fine-tune with --json, shared by the tests that read its result (training is the slow part)."""
    folder = tmp_path_factory.mktemp("full")
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), \
            contextlib.redirect_stderr(io.StringIO()):
        patch.setenv(DATA_DIR_ENV, str(folder / "studio"))
        code = main(["train", str(shapes), *TINY, "--method", "full", "--epochs", "12",
                     "--out", str(folder / "model"), "--json"])
    return code, json.loads(stdout.getvalue()), folder / "model"


def test_quick_training_saves_a_bundle_and_prints_its_accuracy(shapes, capsys):
    code = main(["train", str(shapes), *TINY, "--epochs", "5"])
    out, err = capsys.readouterr()

    assert code == EXIT_OK, err
    saved = Path(out.split("Model saved: ", 1)[1].splitlines()[0])
    assert is_bundle(saved)
    assert (saved / "report" / "report.html").is_file()
    assert "accuracy:" in out
    assert all(name in out for name in SHAPE_CLASSES)  # the scan summary and the confusion matrix name them
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == [f"{n}/5" for n in range(1, 6)]
    assert "resume with: python main.py train --resume" in out


def test_json_prints_one_object_with_the_result(full_training):
    code, result, bundle = full_training

    assert code == EXIT_OK
    assert {"bundle", "report", "run_folder", "best_epoch", "epochs_run", "stopped_early", "evaluation"} <= set(result)
    assert Path(result["bundle"]) == bundle and is_bundle(bundle)
    assert Path(result["report"]).is_file()
    assert open_run(result["run_folder"]).status == "finished"
    assert 1 <= result["best_epoch"] <= result["epochs_run"] <= 12
    assert result["evaluation"]["labels"] == sorted(SHAPE_CLASSES)


def test_evaluate_measures_the_trained_model_on_held_out_images(full_training, held_out, capsys):
    _, _, bundle = full_training

    code = main(["evaluate", str(bundle), str(held_out), "--device", "cpu"])
    out, err = capsys.readouterr()

    assert code == EXIT_OK, err
    accuracy = [line for line in out.splitlines() if line.startswith("accuracy: ")]
    assert len(accuracy) == 1 and len(accuracy[0].split()[1]) == len("0.953")
    assert float(accuracy[0].split()[1]) >= 0.9
    assert "macro F1:" in out
    matrix = out.split("confusion matrix", 1)[1].splitlines()[1:]
    assert matrix[0].split() == sorted(SHAPE_CLASSES)
    rows = {line.split()[0]: [int(n) for n in line.split()[1:]] for line in matrix[1:4]}
    assert sum(map(sum, rows.values())) == 3 * 8
    assert len({len(line) for line in matrix[:4]}) == 1  # aligned columns

    assert f"{3 * 8} images (all of {held_out})" in out

    code = main(["evaluate", str(bundle), str(held_out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK and result["images"] == "all" and result["num_images"] == 3 * 8
    assert result["report"] is None


def test_evaluate_writes_the_report_training_writes_when_asked(full_training, held_out, capsys, tmp_path):
    _, _, bundle = full_training
    folder = tmp_path / "line 3 check"

    code = main(["evaluate", str(bundle), str(held_out), "--json", "--report", str(folder)])
    result = json.loads(capsys.readouterr().out)

    assert code == EXIT_OK and Path(result["report"]) == folder / "report.html"
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["evaluation"] == {key: value for key, value in result.items() if key not in ("images", "report")}
    trained_as = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))["provenance"]["name"]
    assert metrics["title"] == f"{trained_as}: evaluation"  # the name My models shows, as the window's report has
    assert metrics["summary"]["Pictures"] == f"all of {held_out}" and metrics["history"] == []
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert f"Measured on all of {held_out}" in html and "Training curves" not in html
    per_class = (folder / "per_class.csv").read_text(encoding="utf-8").splitlines()
    assert [row.split(",")[0] for row in per_class[1:]] == sorted(SHAPE_CLASSES)
    confusion = (folder / "confusion.csv").read_text(encoding="utf-8").splitlines()
    assert sum(int(n) for row in confusion[1:] for n in row.split(",")[1:]) == 3 * 8

    code = main(["evaluate", str(bundle), str(held_out), "--report", str(folder)])  # again, into the same folder
    out, err = capsys.readouterr()
    assert code == EXIT_OK and f"report: {folder / 'report.html'}" in out, err


def test_a_single_class_folder_is_refused_with_a_message(tmp_path, capsys):
    data = write_shapes_dataset(tmp_path / "one", per_class=6, classes=("circles",))

    code = main(["train", str(data), *TINY])
    out, err = capsys.readouterr()

    assert code == EXIT_USAGE
    assert "error:" in err and "Traceback" not in out + err


def test_evaluate_measures_a_folder_of_one_class_with_a_single_photo(full_training, capsys, tmp_path):
    """Training needs two classes and photos to split; checking a model on the one new photo of a scratch does not."""
    _, _, bundle = full_training
    one = write_shapes_dataset(tmp_path / "new", per_class=1, classes=("circles",), seed=7)

    code = main(["evaluate", str(bundle), str(one), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK and result["num_images"] == 1 and result["images"] == "all"


def test_a_missing_folder_is_refused(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nowhere"), *TINY]) == EXIT_USAGE
    assert main(["evaluate", str(tmp_path / "no_model"), str(tmp_path)]) == EXIT_USAGE
    _, err = capsys.readouterr()
    assert err.count("error:") == 2 and "Traceback" not in err


def test_runs_lists_the_runs_with_their_progress(few_shapes, capsys):
    plan = TrainPlan(str(few_shapes), arch="test_efficientnet", init="scratch", method="full", epochs=3)
    run = create_run(plan, scan_class_folders(few_shapes))

    assert main(["train", "--runs"]) == EXIT_OK
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if str(run.folder) in line)
    assert row.split()[:3] == ["few_shapes", "new", "0/3"]

    assert main(["train", "--delete-run", str(run.folder)]) == EXIT_OK
    assert not run.folder.exists() and str(run.folder) in capsys.readouterr().out
    assert main(["train", "--delete-run", str(few_shapes)]) == EXIT_USAGE  # not a run: refused, left alone
    assert "not a training run" in capsys.readouterr().err and few_shapes.is_dir()


def test_a_model_trained_on_a_folder_called_data_is_named_after_what_holds_it(tmp_path, capsys):
    data = write_shapes_dataset(tmp_path / "gearbox parts" / "dataset" / "images", per_class=6)
    run = create_run(TrainPlan(str(data), arch="test_efficientnet", init="scratch"), scan_class_folders(data))
    assert run.plan.name == "gearbox parts" and run.folder.name.endswith("-gearbox-parts")
    assert main(["train", "--runs"]) == EXIT_OK
    assert "gearbox parts" in capsys.readouterr().out
    assert default_model_name(str(tmp_path / "shapes")) == "shapes"  # a telling name is kept as it is
    assert default_model_name(str(Path.home() / "data")) == "data"  # never the user's own name


def test_a_cancelled_run_resumes_where_it_stopped(few_shapes, capsys):
    plan = TrainPlan(str(few_shapes), arch="test_efficientnet", init="scratch", image_size=64, batch_size=16,
                     method="full", epochs=3)
    folder = create_run(plan, scan_class_folders(few_shapes)).folder
    token = CancelToken()

    def cancel_after_first_epoch(event) -> None:
        if isinstance(event, EpochMetrics):
            token.cancel()

    with pytest.raises(Cancelled):
        train_run(folder, cancel_after_first_epoch, token)
    assert open_run(folder).epochs_done == 1

    assert main(["train", "--resume", str(folder), "--lr", "0.5"]) == EXIT_USAGE  # what it learns cannot change
    assert "--lr cannot change" in capsys.readouterr().err

    code = main(["train", "--resume", str(folder), "--batch-size", "8"])  # how it runs can
    out, err = capsys.readouterr()

    assert code == EXIT_OK, err
    epochs = [line.split()[1] for line in out.splitlines() if line.startswith("epoch ")]
    assert epochs == ["2/3", "3/3"]
    resumed = open_run(folder)
    assert resumed.status == "finished" and resumed.plan.batch_size == 8 and Path(resumed.bundle).is_dir()


def test_ctrl_c_stops_training_keeps_the_epochs_and_says_how_to_resume(few_shapes, capsys):
    def interrupt_after_first_checkpoint() -> None:
        deadline = time.monotonic() + SIGNAL_GUARD_S
        while time.monotonic() < deadline:
            if any(runs_dir().glob(f"*/{CHECKPOINT_FILE}")):
                os.kill(os.getpid(), signal.SIGINT)  # what the terminal sends on Ctrl+C
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=interrupt_after_first_checkpoint, daemon=True)
    watcher.start()
    # Many epochs and no early stopping: the interrupt always comes long before the end.
    code = main(["train", str(few_shapes), *TINY, "--method", "full", "--epochs", "100", "--patience", "0"])
    watcher.join()
    out, err = capsys.readouterr()

    assert code == EXIT_CANCELLED
    folder = Path(out.split("Run folder: ", 1)[1].split("  (")[0])
    run = open_run(folder)
    assert run.status == "cancelled" and run.resumable and run.epochs_done >= 1
    # The per-test data folder is ".../Classifier Studio/runs/...": the command quotes it, as shells need.
    assert f'Resume with: python main.py train --resume "{folder}"' in err


def test_progress_is_one_rewritten_line_on_a_terminal_and_silent_otherwise():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    step = StepMetrics(2, 10, 3, 12, 0.41234, 1e-4, 123.4, 83)
    epoch = EpochMetrics(2, 10, 0.412, 0.873, 0.301, 0.933, None, (1.0, 0.9), 4.2, 2)
    for stream, live in ((Terminal(), True), (io.StringIO(), False)):
        out = io.StringIO()
        reporter = TrainReporter(stream, out)
        reporter(step)
        reporter(epoch)

        assert out.getvalue() == "epoch 2/10  train loss 0.412 acc 0.873 · val loss 0.301 acc 0.933 (best 2)\n"
        if live:
            assert stream.getvalue().startswith("\repoch 2/10  step 3/12  loss 0.412")
            assert "123 img/s  ETA 1:23" in stream.getvalue() and stream.getvalue().endswith("\r")
        else:
            assert stream.getvalue() == ""


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_help_answers(command, capsys):
    assert main([command, "--help"]) == EXIT_OK
    assert "examples:" in capsys.readouterr().out


def test_evaluate_shows_a_many_class_model_on_the_classes_with_images_or_answers(capsys, tmp_path):
    from tests.conftest import make_bundle

    labels = (*sorted(SHAPE_CLASSES), *(f"part {n}" for n in range(200)))
    bundle = make_bundle(tmp_path / "many", labels=labels)
    photos = write_shapes_dataset(tmp_path / "new", per_class=3, seed=3)

    code = main(["evaluate", str(bundle), str(photos), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    code = main(["evaluate", str(bundle), str(photos), "--json"])
    result = json.loads(capsys.readouterr().out)
    confusion = result["confusion"]
    seen = [i for i in range(len(labels)) if sum(confusion[i]) or sum(row[i] for row in confusion)]
    assert len(result["labels"]) == len(labels) and len(seen) < 30  # --json keeps every class

    table = out.split("class ", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in table.splitlines()[1:len(seen) + 1]] == [labels[i].split()[0] for i in seen]
    assert f"(the {len(seen)} of the model's {len(labels)} classes with images or answers)" in out
    matrix = out.split("confusion matrix (rows: true class, columns: predicted)\n", 1)[1].splitlines()
    assert len(matrix) >= len(seen) + 1 and "part 199" not in out
