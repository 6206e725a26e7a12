"""Evaluate on a folder, from the model picker's My models tab: one of the user's models measured on real labelled
pictures off the GUI thread, shown as the training wizard shows its results, and the same figures as the engine's."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from engine.decode import decode_image
from engine.explain import explain_classes
from engine.models import load_model
from engine.predict import Classifier
from engine.runtime import create_backend
from engine.specs import Bundle, ModelSpec
from engine.training.evaluate import evaluate_bundle
from gui.evaluation_view import MAX_GALLERY, EvaluationView
from gui.picture_menu import heat_map_name
from gui.settings import load_settings, save_settings
from tests.engine.test_my_models import save_my_model
from tests.conftest import make_bundle
from tests.gui.conftest import WAIT_MS, open_my_models
from tests.gui.test_where_it_looked import right_click
from tests.training.shapes import SHAPE_CLASSES, write_shapes_dataset

CLASSES = tuple(sorted(SHAPE_CLASSES))


@pytest.fixture
def shapes(tmp_path) -> Path:
    return write_shapes_dataset(tmp_path / "new photos", per_class=6, seed=5)


@pytest.fixture
def my_model(models_folder) -> Path:
    return save_my_model(models_folder / "shapes", "Shapes", "2026-11-20T10:00:00", 0.9, labels=CLASSES)


def open_evaluate_dialog(qtbot, picker):
    open_my_models(qtbot, picker)
    page = picker.my_models_page
    assert not page.evaluate_button.isEnabled()  # nothing chosen yet
    page.table.selectRow(0)
    qtbot.mouseClick(page.evaluate_button, Qt.MouseButton.LeftButton)
    dialog = page.evaluate_dialog
    assert dialog is not None and dialog.isVisible() and dialog.windowTitle() == "Evaluate Shapes"
    qtbot.addWidget(dialog)
    return dialog


def evaluated_in_dialog(qtbot, picker, folder: Path):
    """The Evaluate dialog of the model, after Evaluate on `folder` has finished."""
    dialog = open_evaluate_dialog(qtbot, picker)
    dialog.folder_field.setText(str(folder))
    with qtbot.waitSignal(dialog.evaluation_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.evaluate_button, Qt.MouseButton.LeftButton)
    return dialog


def test_my_model_is_measured_on_a_folder_of_labelled_pictures(my_model, shapes, picker, qtbot):
    dialog = open_evaluate_dialog(qtbot, picker)
    assert not dialog.evaluate_button.isEnabled()  # no folder yet
    dialog.folder_field.setText(str(shapes))
    with qtbot.waitSignal(dialog.evaluation_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.evaluate_button, Qt.MouseButton.LeftButton)
        assert dialog.running and dialog.close_button.text() == "Cancel" and not dialog.folder_field.isEnabled()

    expected, part = evaluate_bundle(my_model, shapes, device="cpu")  # the engine, as `main.py evaluate` runs it
    assert part == "all" and not dialog.error.isVisible()
    assert dialog.headline.text() == f"Accuracy {expected.accuracy * 100:.1f} %"
    assert f"{expected.num_images} images (all of {shapes})" in dialog.details.text()
    assert f"{expected.num_mistakes} mistaken" in dialog.details.text()
    view = dialog.evaluation_view
    assert [view.class_table.item(row, 0).text() for row in range(view.class_table.rowCount())] == list(CLASSES)
    assert view.matrix.labels == CLASSES and view.matrix.confusion == expected.confusion
    assert view.gallery.count() == min(expected.num_mistakes, MAX_GALLERY)
    if expected.num_mistakes:  # an untrained model: its mistakes, each with its picture once decoded
        first = expected.misclassified[0]
        assert view.gallery.item(0).toolTip().splitlines()[0] == first.path
        assert f"true: {first.true_label}" in view.gallery.item(0).text()
    assert dialog.close_button.text() == "Close" and dialog.folder_field.isEnabled()
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


def test_a_folder_split_into_train_val_and_test_is_measured_on_its_test_folder(my_model, picker, qtbot, tmp_path):
    split = tmp_path / "split"
    write_shapes_dataset(split / "train", per_class=4, seed=1)
    write_shapes_dataset(split / "test", per_class=2, seed=2)
    dialog = evaluated_in_dialog(qtbot, picker, split)

    assert f"{2 * len(CLASSES)} images (the test folder of {split})" in dialog.details.text()
    assert sum(map(sum, dialog.evaluation_view.matrix.confusion)) == 2 * len(CLASSES)


def test_a_folder_whose_classes_the_model_does_not_know_is_said_in_the_dialog(my_model, picker, qtbot, tmp_path):
    other = write_shapes_dataset(tmp_path / "other", per_class=3, classes=tuple(SHAPE_CLASSES)[:2])
    (other / tuple(SHAPE_CLASSES)[0]).rename(other / "hexagons")
    dialog = evaluated_in_dialog(qtbot, picker, other)

    assert dialog.error.isVisible()
    assert dialog.error.text().startswith(f"The model does not know the classes hexagons found in {other}.")
    assert not dialog.headline.isVisible() and not dialog.evaluation_view.isVisible()

    dialog.folder_field.setText(str(tmp_path / "nowhere"))  # a folder that is not there
    with qtbot.waitSignal(dialog.evaluation_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.evaluate_button, Qt.MouseButton.LeftButton)
    assert dialog.error.isVisible() and "nowhere" in dialog.error.text()


def test_cancel_stops_the_measuring_and_the_dialog_says_so(my_model, shapes, picker, qtbot):
    dialog = open_evaluate_dialog(qtbot, picker)
    dialog.folder_field.setText(str(shapes))
    with qtbot.waitSignal(dialog.evaluation_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.evaluate_button, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)  # Cancel, while the model loads
        assert dialog.isVisible() and dialog.close_button.text() == "Stopping…"

    assert dialog.note.isVisible() and dialog.note.text() == "Stopped before the end: nothing was measured."
    assert not dialog.error.isVisible() and not dialog.headline.isVisible()
    assert dialog.close_button.isEnabled() and dialog.close_button.text() == "Close"
    assert dialog.isVisible()


def test_the_figures_are_saved_as_the_report_training_writes(my_model, shapes, picker, qtbot, monkeypatch, tmp_path):
    dialog = open_evaluate_dialog(qtbot, picker)
    assert not dialog.save_button.isVisible()  # nothing measured yet
    dialog.folder_field.setText(str(shapes))
    with qtbot.waitSignal(dialog.evaluation_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.evaluate_button, Qt.MouseButton.LeftButton)
    reports = tmp_path / "reports"
    reports.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_args: str(reports))

    for expected_folder in ("Shapes-evaluation", "Shapes-evaluation-2"):  # a second save never overwrites the first
        assert dialog.save_button.isEnabled()
        with qtbot.waitSignal(dialog.report_saved, timeout=WAIT_MS):
            qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
        folder = reports / expected_folder
        assert f"{expected_folder}/report.html" in dialog.saved_label.text() and dialog.saved_label.isVisible()
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["evaluation"] == json.loads(json.dumps(dialog.evaluation.to_dict()))
        assert metrics["title"] == "Shapes: evaluation" and metrics["summary"]["Pictures"] == f"all of {shapes}"
        assert metrics["summary"]["Saved as"] == str(my_model)
        assert f"Measured on all of {shapes}" in (folder / "report.html").read_text(encoding="utf-8")
        assert not dialog.error.isVisible()

    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_args: str(blocked))
    with qtbot.waitSignal(dialog.report_saved, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.error.isVisible() and not dialog.saved_label.isVisible()
    assert "report" in dialog.error.text().lower() and dialog.save_button.isEnabled()


def shown_pixels(label) -> np.ndarray:
    image = label.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()  # before `image` goes


def double_click_mistake(view, row: int, qtbot):
    centre = view.gallery.visualItemRect(view.gallery.item(row)).center()
    qtbot.mouseClick(view.gallery.viewport(), Qt.MouseButton.LeftButton, pos=centre)  # a double-click's first half
    qtbot.mouseDClick(view.gallery.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    viewer = view.viewer
    assert viewer is not None and viewer.isVisible()
    qtbot.waitUntil(lambda: not viewer.running, timeout=WAIT_MS)
    return viewer


def test_a_mistake_double_clicked_shows_where_the_model_looked_for_its_answer_and_for_the_right_class(
    my_model, shapes, picker, qtbot, tmp_path, monkeypatch
):
    dialog = evaluated_in_dialog(qtbot, picker, shapes)
    view = dialog.evaluation_view
    mistakes = dialog.evaluation.misclassified
    assert len(mistakes) >= 2  # an untrained model
    assert "Double-click" in view.gallery.item(0).toolTip()

    viewer = double_click_mistake(view, 0, qtbot)
    first = mistakes[0]
    loaded = load_model(ModelSpec(source=Bundle(str(my_model))))
    classifier = Classifier(loaded, create_backend(loaded, "auto"))  # as the Classify view runs it
    assert viewer.status.text().startswith("Took ") and viewer.status.text().endswith(", ONNX Runtime")  # the CPU's
    labels = classifier.loaded.labels
    expected = explain_classes(classifier, decode_image(first.path, classifier.preprocessor.decode_size),
                               [labels.index(first.predicted_label), labels.index(first.true_label)])
    for picture, caption, explanation in zip(viewer.pictures, viewer.captions, expected):
        assert np.abs(shown_pixels(picture).astype(int) - explanation.overlay().astype(int)).max() <= 2
        assert f"“{explanation.label}”" in caption.text()
    assert not viewer.error.isVisible()
    saved = tmp_path / "right class.png"  # the right class's map saved from its right-click menu, for a report
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_args: (str(saved), ""))
    right_click(viewer.pictures[1]).actions()[1].trigger()
    assert np.array_equal(np.asarray(Image.open(saved)), expected[1].overlay())
    qtbot.mouseClick(viewer.close_button, Qt.MouseButton.LeftButton)
    assert not viewer.isVisible()

    settings = load_settings()
    settings.backend = "pytorch"  # chosen in the model picker: the viewer runs the model as the window would
    save_settings(settings)
    viewer = double_click_mistake(view, 0, qtbot)
    assert viewer.status.text().endswith(", PyTorch") and not viewer.error.isVisible()
    viewer.close()

    Path(mistakes[1].path).unlink()  # a photo deleted since the evaluation: said in the viewer
    viewer = double_click_mistake(view, 1, qtbot)
    assert viewer.error.isVisible() and Path(mistakes[1].path).name in viewer.error.text()


def click_cell(matrix, row: int, column: int, qtbot) -> None:
    qtbot.mouseClick(matrix, Qt.MouseButton.LeftButton, pos=matrix.cell_rect(row, column).center().toPoint())


def test_a_cell_of_the_confusion_matrix_clicked_shows_just_its_mistakes(my_model, shapes, picker, qtbot):
    dialog = evaluated_in_dialog(qtbot, picker, shapes)
    view, evaluation = dialog.evaluation_view, dialog.evaluation
    matrix = view.matrix
    count = len(CLASSES)
    mistaken = [(r, c) for r in range(count) for c in range(count) if r != c and matrix.confusion[r][c]]
    row, column = max(mistaken, key=lambda cell: matrix.confusion[cell[0]][cell[1]])  # an untrained model's
    true, predicted = CLASSES[row], CLASSES[column]

    def shown() -> list:
        return [view.gallery.item(i).data(Qt.ItemDataRole.UserRole) for i in range(view.gallery.count())]

    click_cell(matrix, row, column, qtbot)
    expected = [m for m in evaluation.misclassified if (m.true_label, m.predicted_label) == (true, predicted)]
    assert shown() == expected and len(expected) == matrix.confusion[row][column]  # every mistake is kept here
    assert view.gallery_title.text() == f"“{true}” taken for “{predicted}” ({len(expected)})"
    assert matrix.chosen == (row, column) and view.all_mistakes_button.isVisible()

    click_cell(matrix, row, row, qtbot)  # the diagonal: right answers, not mistakes
    assert matrix.chosen == (row, column) and shown() == expected
    qtbot.mouseClick(view.all_mistakes_button, Qt.MouseButton.LeftButton)
    assert matrix.chosen is None and not view.all_mistakes_button.isVisible()
    assert shown() == list(evaluation.misclassified[:MAX_GALLERY])
    assert view.gallery_title.text().startswith(f"Mistakes ({evaluation.num_mistakes}")
    click_cell(matrix, row, column, qtbot)
    click_cell(matrix, row, column, qtbot)  # the chosen cell again: all mistakes
    assert matrix.chosen is None and len(shown()) == min(evaluation.num_mistakes, MAX_GALLERY)

    assert matrix.current == (row, column)  # the keyboard goes on from the cell clicked
    matrix.setFocus()  # to the corner, then arrows to the cell, Space to choose it; arrows stop at the edges
    steps = ((Qt.Key.Key_Up, count), (Qt.Key.Key_Left, count), (Qt.Key.Key_Right, column), (Qt.Key.Key_Down, row),
             (Qt.Key.Key_Left, count))
    for key, times in steps:
        for _ in range(times):
            qtbot.keyClick(matrix, key)
        if key == Qt.Key.Key_Down:
            assert matrix.current == (row, column)
            qtbot.keyClick(matrix, Qt.Key.Key_Space)
            assert matrix.chosen == (row, column) and shown() == expected
    assert matrix.current == (row, 0)  # stops at the edge


def test_a_photo_filed_under_the_wrong_class_is_moved_from_the_viewer_and_put_back(my_model, shapes, picker, qtbot,
                                                                                    opened_urls):
    dialog = evaluated_in_dialog(qtbot, picker, shapes)
    view = dialog.evaluation_view
    mistake = dialog.evaluation.misclassified[0]
    photo = Path(mistake.path)
    content = photo.read_bytes()
    actions = double_click_mistake(view, 0, qtbot).photo_actions
    assert actions.move_button.text() == f"Move to “{mistake.predicted_label}”"
    qtbot.mouseClick(actions.open_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(actions.folder_button, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened_urls] == [str(photo), str(photo.parent)]

    qtbot.mouseClick(actions.move_button, Qt.MouseButton.LeftButton)
    moved = shapes / mistake.predicted_label / photo.name
    assert not photo.exists() and moved.read_bytes() == content
    assert f"Moved into the “{mistake.predicted_label}” folder as {photo.name}" in actions.note.text()
    tile = view.gallery.item(0)
    assert tile.toolTip().splitlines()[0] == str(moved) and f"now in “{mistake.predicted_label}”" in tile.text()
    cell = (CLASSES.index(mistake.true_label), CLASSES.index(mistake.predicted_label))
    click_cell(view.matrix, *cell, qtbot)
    click_cell(view.matrix, *cell, qtbot)  # the gallery filled again: the tile still follows the photo
    tile = view.gallery.item(0)
    assert tile.toolTip().splitlines()[0] == str(moved) and f"now in “{mistake.predicted_label}”" in tile.text()

    qtbot.mouseClick(actions.move_button, Qt.MouseButton.LeftButton)  # Put it back
    assert photo.read_bytes() == content and not moved.exists()
    assert actions.move_button.text() == f"Move to “{mistake.predicted_label}”" and "Back in" in actions.note.text()
    assert tile.toolTip().splitlines()[0] == str(photo) and "now in" not in tile.text()

    qtbot.mouseClick(actions.move_button, Qt.MouseButton.LeftButton)  # moved again, and the viewer closed
    actions.window().close()
    again = double_click_mistake(view, 0, qtbot)  # the tile's photo, looked at in its new folder
    assert again.photo_actions.path == str(moved) and not again.error.isVisible()
    assert again.windowTitle().endswith(photo.name) and again.overlays
    assert again.photo_actions.move_button.text() == "Put it back"
    assert f"Moved into the “{mistake.predicted_label}” folder as {photo.name}" in again.photo_actions.note.text()
    qtbot.mouseClick(again.photo_actions.move_button, Qt.MouseButton.LeftButton)  # still undone: Put it back
    assert photo.read_bytes() == content and not moved.exists()
    assert view.gallery.item(0).toolTip().splitlines()[0] == str(photo)
    again.close()
    actions = double_click_mistake(view, 1, qtbot).photo_actions
    photo = Path(actions.path)
    photo.unlink()  # gone since: said, nothing moved
    qtbot.mouseClick(actions.move_button, Qt.MouseButton.LeftButton)
    assert actions.error.isVisible() and "is not there any more" in actions.error.text()


def test_a_photo_moved_under_a_new_name_offers_its_heat_map_under_that_name(my_model, shapes, picker, qtbot,
                                                                             monkeypatch):
    dialog = evaluated_in_dialog(qtbot, picker, shapes)
    mistake = dialog.evaluation.misclassified[0]
    photo = Path(mistake.path)
    taken = shapes / mistake.predicted_label / photo.name  # another photo of that name in the folder it goes to
    taken.write_bytes(next(p for p in (shapes / mistake.predicted_label).iterdir() if p != taken).read_bytes())
    viewer = double_click_mistake(dialog.evaluation_view, 0, qtbot)
    qtbot.mouseClick(viewer.photo_actions.move_button, Qt.MouseButton.LeftButton)
    renamed = Path(viewer.photo_actions.path)
    assert renamed.name == f"{photo.stem} (2){photo.suffix}" and renamed.parent == taken.parent

    offered = []

    def save_dialog(_parent, _title, path: str, _filters: str) -> tuple[str, str]:
        offered.append(path)
        return "", ""  # the user looks at the name offered, and cancels

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    right_click(viewer.pictures[0]).actions()[1].trigger()  # Save picture…, beside the photo where it is now
    assert offered == [str(renamed.parent / heat_map_name(str(renamed), mistake.predicted_label))]
    assert Path(offered[0]).name.startswith(f"{photo.stem} (2)-where-it-looked-")


def test_a_model_of_many_classes_shows_only_the_classes_with_images_or_answers(shapes, tmp_path, qtbot):
    labels = (*CLASSES, *(f"part {n}" for n in range(200)))  # most of them never seen in these photos
    bundle = make_bundle(tmp_path / "many classes", labels=labels)
    evaluation, _ = evaluate_bundle(bundle, shapes, device="cpu")
    view = EvaluationView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show_evaluation(evaluation, bundle)
    view.show()
    qtbot.waitExposed(view)

    answered = {labels.index(m.predicted_label) for m in evaluation.misclassified}  # all 18 photos' mistakes
    assert list(view.matrix.shown) == sorted({*range(len(CLASSES)), *answered})  # with photos, or answered
    assert [view.class_table.item(r, 0).text() for r in range(view.class_table.rowCount())] == [
        labels[c] for c in view.matrix.shown
    ]
    assert view.matrix_title.text() == f"Confusion matrix: the {len(view.matrix.shown)} of {len(labels)} classes " \
                                       "with images or answers"
    shown = view.matrix.shown
    row, column = next((r, c) for r in shown for c in shown if view.matrix.holds_mistakes((r, c)))
    click_cell(view.matrix, row, column, qtbot)  # its cells, by their classes' places on screen
    assert view.gallery_title.text().startswith(f"“{labels[row]}” taken for “{labels[column]}”")


def test_long_class_names_wrap_in_the_viewer_which_stays_as_wide_as_its_two_pictures(qtbot, tmp_path):
    from engine.training.metrics import Misclassified
    from gui.mistake_viewer import TEXT_WIDTH, MistakeViewer

    long_names = {shape: f"{shape} drawn in the workshop on a rainy afternoon with a blunt pencil"
                  for shape in SHAPE_CLASSES}
    data = write_shapes_dataset(tmp_path / "data", per_class=1, seed=2)
    for shape, name in long_names.items():
        (data / shape).rename(data / name)
    bundle = make_bundle(tmp_path / "model", labels=tuple(sorted(long_names.values())))
    photo = next((data / long_names["circles"]).iterdir())
    answered = long_names["triangles"]
    viewer = MistakeViewer(str(bundle), Misclassified(str(photo), long_names["circles"], answered, 0.4))
    qtbot.addWidget(viewer)
    viewer.show()
    qtbot.waitUntil(lambda: not viewer.running, timeout=WAIT_MS)
    actions = viewer.photo_actions
    assert actions.move_button.text().startswith("Move to “triangles drawn") and "…" in actions.move_button.text()
    assert answered in actions.move_button.toolTip()
    qtbot.mouseClick(actions.move_button, Qt.MouseButton.LeftButton)
    assert f"Moved into the “{answered}” folder" in actions.note.text()

    viewer.layout().activate()  # the window grows to the note's new height
    assert viewer.width() < TEXT_WIDTH + 60  # not as wide as the names: they wrap
    # Nothing drawn over anything: each picture above its caption, the move note below the pictures' captions.
    for picture, caption in zip(viewer.pictures, viewer.captions):
        assert picture.geometry().bottom() < caption.geometry().top()
        assert caption.height() >= caption.heightForWidth(caption.width())
    note_top = actions.mapTo(viewer, actions.note.geometry().topLeft()).y()
    assert max(caption.geometry().bottom() for caption in viewer.captions) < actions.geometry().top() <= note_top
    assert actions.note.height() >= actions.note.heightForWidth(actions.note.width()) > actions.fontMetrics().height()


def test_a_photo_moved_before_the_model_has_looked_is_looked_at_where_it_went(my_model, shapes, qtbot):
    import threading

    from engine.training.metrics import Misclassified
    from gui.background import background_calls
    from gui.mistake_viewer import MistakeViewer

    photo = next((shapes / "circles").iterdir())
    busy = threading.Event()
    background_calls("where-it-looked").submit(busy.wait, WAIT_MS / 1000)  # a first model export, say
    viewer = MistakeViewer(str(my_model), Misclassified(str(photo), "circles", "triangles", 0.6))
    qtbot.addWidget(viewer)
    viewer.show()
    qtbot.mouseClick(viewer.photo_actions.move_button, Qt.MouseButton.LeftButton)  # while it is still loading
    moved = shapes / "triangles" / photo.name
    assert moved.is_file()
    busy.set()
    qtbot.waitUntil(lambda: not viewer.running, timeout=WAIT_MS)
    assert viewer.overlays and not viewer.error.isVisible()
    assert viewer.status.text().startswith("Took ")
