"""The training report folder: a self-contained HTML page plus JSON and CSV numbers that match the evaluation."""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from engine.errors import UserFacingError
from engine.training.metrics import Evaluation, evaluate_predictions, seen_classes
from engine.training.plan import EpochMetrics
from engine.training.report import GALLERY_SIZE, THUMB_PX, ReportFiles, write_report

LABELS = ("cat", "<b>&co", "dog")
ESCAPED = "&lt;b&gt;&amp;co"


@pytest.fixture
def evaluation(tmp_path, photo_arrays) -> Evaluation:
    """Six images, three of them wrong: two real JPEGs on disk and one path that no longer exists."""
    folder = tmp_path / "images"
    folder.mkdir()
    paths = []
    for i, pixels in enumerate((list(photo_arrays.values()) * 2)[:6]):
        path = folder / f"photo {i}.jpg"
        Image.fromarray(pixels).resize((320, 240)).save(path, quality=85)
        paths.append(str(path))
    os.remove(paths[5])  # the user moved this one away after training
    targets = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.2, 0.7, 0.1],  # cat taken for <b>&co
            [0.1, 0.8, 0.1],
            [0.3, 0.1, 0.6],  # <b>&co taken for dog
            [0.1, 0.1, 0.8],
            [0.9, 0.05, 0.05],  # dog taken for cat: the file is missing
        ]
    )
    return evaluate_predictions(LABELS, targets, probabilities, paths)


def _history(epochs: int = 3) -> list[EpochMetrics]:
    return [
        EpochMetrics(
            epoch=e, epochs=epochs, train_loss=1.0 / e, train_accuracy=0.5 + 0.1 * e, val_loss=1.2 / e,
            val_accuracy=0.45 + 0.1 * e, val_top5=None, per_class_accuracy=(0.5, 0.6, 0.7), seconds=2.5,
            best_epoch=e,
        )
        for e in range(1, epochs + 1)
    ]


SUMMARY = {"model_name": "Pets & <friends>", "architecture": "tf_efficientnet_lite0.in1k", "epochs": 3,
           "images_per_class": {"cat": 2, "dog": 2}, "mixed_precision": False, "training_time": 12.345}


def test_report_files_hold_the_evaluation(tmp_path, evaluation):
    history = _history()
    files = write_report(tmp_path / "report", evaluation, history, SUMMARY)

    assert files == ReportFiles(tmp_path / "report" / "report.html", tmp_path / "report" / "metrics.json",
                                tmp_path / "report" / "per_class.csv", tmp_path / "report" / "confusion.csv")
    assert all(p.is_file() for p in (files.html, files.json, files.per_class_csv, files.confusion_csv))

    document = json.loads(files.json.read_text(encoding="utf-8"))
    assert Evaluation.from_dict(document["evaluation"]) == evaluation
    assert document["test_evaluation"] is None
    assert [EpochMetrics.from_dict(h) for h in document["history"]] == history
    assert document["summary"] == SUMMARY

    with open(files.per_class_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["class", "precision", "recall", "f1", "support"]
    assert len(rows) == 1 + len(LABELS)
    for row, expected in zip(rows[1:], evaluation.per_class):
        assert row[0] == expected.name
        assert [float(v) for v in row[1:4]] == pytest.approx([expected.precision, expected.recall, expected.f1],
                                                             abs=1e-6)
        assert int(row[4]) == expected.support

    with open(files.confusion_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["true \\ predicted", *LABELS]
    assert [row[0] for row in rows[1:]] == list(LABELS)
    assert tuple(tuple(int(v) for v in row[1:]) for row in rows[1:]) == evaluation.confusion


def test_html_is_self_contained_and_escapes_user_text(tmp_path, evaluation):
    files = write_report(tmp_path / "report", evaluation, _history(), SUMMARY, title="Pets <v2>")
    page = files.html.read_text(encoding="utf-8")

    assert page.startswith("<!DOCTYPE html>")
    assert ESCAPED in page and "<b>&co" not in page
    assert "Pets &amp; &lt;friends&gt;" in page and "<friends>" not in page
    assert "Pets &lt;v2&gt;" in page
    assert "Images per class" in page and "cat: 2, dog: 2" in page
    assert page.count("<svg") == 3  # loss curves, accuracy curves, confusion matrix
    for outside in ('src="http', "src='http", 'href="http', "href='http", "<script", "<link", "url("):
        assert outside not in page
    # The headline shows the accuracy the evaluation measured.
    assert f"{evaluation.accuracy * 100:.1f} %" in page


def test_gallery_embeds_small_thumbnails_and_a_placeholder_for_a_missing_file(tmp_path, evaluation):
    page = write_report(tmp_path / "report", evaluation, _history()).html.read_text(encoding="utf-8")

    thumbnails = re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(thumbnails) == 2  # the two mistakes whose files still exist
    for encoded in thumbnails:
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as thumb:
            assert thumb.format == "JPEG"
            assert max(thumb.size) <= THUMB_PX
    assert page.count('class="placeholder"') == 1
    assert "image not available" in page and "photo 5.jpg" in page
    assert f"true: cat · taken for: {ESCAPED} (70 %)" in page
    assert f"true: {ESCAPED} · taken for: dog (60 %)" in page
    assert "true: dog · taken for: cat (90 %)" in page


def test_empty_history_still_writes_a_report(tmp_path, evaluation):
    files = write_report(tmp_path / "report", evaluation)
    page = files.html.read_text(encoding="utf-8")

    assert files.json.is_file() and files.per_class_csv.is_file() and files.confusion_csv.is_file()
    assert "No training history" in page
    assert page.count("<svg") == 1  # the confusion matrix only
    assert json.loads(files.json.read_text(encoding="utf-8"))["history"] == []


def test_test_set_gets_its_own_section(tmp_path, evaluation):
    rng = np.random.default_rng(3)
    test_ev = evaluate_predictions(
        [f"class {i}" for i in range(6)], rng.integers(0, 6, size=40), rng.dirichlet(np.ones(6), size=40)
    )
    files = write_report(tmp_path / "report", evaluation, _history(), test_evaluation=test_ev)
    page = files.html.read_text(encoding="utf-8")

    assert "Test set" in page and "Top-5 accuracy" in page
    assert page.count("<svg") == 4
    assert Evaluation.from_dict(json.loads(files.json.read_text(encoding="utf-8"))["test_evaluation"]) == test_ev


def test_many_classes_with_long_names_and_many_mistakes(tmp_path):
    labels = [f"a rather long class name number {i}" for i in range(30)]
    rng = np.random.default_rng(7)
    ev = evaluate_predictions(labels, rng.integers(0, 30, size=200), rng.dirichlet(np.ones(30), size=200),
                              [str(tmp_path / f"gone {i}.jpg") for i in range(200)])
    page = write_report(tmp_path / "report", ev).html.read_text(encoding="utf-8")

    assert ev.num_mistakes > GALLERY_SIZE
    assert page.count("<figure") == GALLERY_SIZE
    assert page.count('class="placeholder"') == GALLERY_SIZE
    assert f"<title>{labels[12]}</title>{labels[12][:17]}…<" in page  # cut on the axes, whole in the tooltip
    assert page.count("<rect") == 30 * 30


def test_an_interrupted_write_keeps_the_previous_report(tmp_path, evaluation):
    folder = tmp_path / "report"
    first = write_report(folder, evaluation, _history(), SUMMARY)
    old = {p.name: p.read_bytes() for p in (first.html, first.per_class_csv, first.confusion_csv)}

    # Something now sits where metrics.json goes (a folder), so saving it fails.
    first.json.unlink()
    first.json.mkdir()
    rng = np.random.default_rng(5)
    other = evaluate_predictions(("x", "y"), rng.integers(0, 2, size=10), rng.dirichlet(np.ones(2), size=10))
    with pytest.raises(UserFacingError, match="metrics.json"):
        write_report(folder, other, (), {"model_name": "another"})

    assert {p.name: p.read_bytes() for p in (first.html, first.per_class_csv, first.confusion_csv)} == old
    assert sorted(os.listdir(folder)) == ["confusion.csv", "metrics.json", "per_class.csv", "report.html"]

    # With the obstacle gone the new report replaces the old one completely.
    first.json.rmdir()
    write_report(folder, other)
    assert Evaluation.from_dict(json.loads(first.json.read_text(encoding="utf-8"))["evaluation"]) == other
    assert [line.split(",")[0] for line in first.per_class_csv.read_text(encoding="utf-8").splitlines()] == [
        "class", "x", "y"]
    assert ESCAPED not in first.html.read_text(encoding="utf-8")


def test_a_model_of_many_classes_reports_only_the_classes_with_images_or_answers(tmp_path):
    labels = [f"class {i}" for i in range(1000)]  # the built-in ImageNet model checked on two folders
    targets = np.array([3, 3, 3, 7, 7])
    probabilities = np.full((5, 1000), 0.5 / 999)
    for row, answer in enumerate((3, 3, 500, 7, 3)):  # one taken for a class with no images, one for the other
        probabilities[row, answer] = 0.5
    ev = evaluate_predictions(labels, targets, probabilities)
    assert seen_classes(ev.confusion) == (3, 7, 500)

    files = write_report(tmp_path / "report", ev)
    page = files.html.read_text(encoding="utf-8")
    assert page.count("<rect") == 3 * 3
    assert "Only the 3 of the model" in page and "1000 classes that have images" in page
    assert page.count('<td class="name"') == 3 and "class 999" not in page
    with open(files.confusion_csv, newline="", encoding="utf-8") as f:
        assert len(list(csv.reader(f))) == 1 + 1000  # the numbers keep every class
