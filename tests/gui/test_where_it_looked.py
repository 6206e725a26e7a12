"""A result card's "Where it looked": the engine thread's heat map shown on the card, in a real window."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.decode import decode_image
from engine.explain import explain
from engine.models import load_model
from engine.predict import Classifier
from engine.specs import Bundle, ModelSpec, builtin_model_spec
from gui.result_widgets import ERROR_COLOR
from tests.conftest import make_bundle
from tests.gui.conftest import WAIT_MS, load_and_wait
from tests.gui.test_classify_view import drop_files


def look(looked, qtbot, answers: list | None = None) -> None:
    """Press the card's button and wait for the engine thread's answer to be on the card."""
    if answers is not None:
        looked.bridge.worker.explained.connect(answers.append)
    looked.button.click()
    assert looked.button.isChecked() and looked.looking
    qtbot.waitUntil(lambda: not looked.looking, timeout=WAIT_MS)


def test_the_card_shows_where_the_built_in_model_looked_and_then_the_photo_again(open_window, qtbot, tmp_path,
                                                                                 photo_arrays):
    photo = tmp_path / "cat.jpg"
    Image.fromarray(photo_arrays["chelsea"]).save(photo)
    window = open_window()
    answers = []
    window.bridge.worker.model_loaded.connect(answers.append)
    window.bridge.request_load(builtin_model_spec())
    qtbot.waitUntil(lambda: bool(answers), timeout=WAIT_MS)
    view = window.classify_view
    drop_files(view, qtbot, [photo])
    card, looked = view.single_card, view.single_looked
    assert looked.isVisible() and not looked.caption.isVisible()
    photo_size = card.thumbnail.pixmap().size()
    assert (photo_size.width(), photo_size.height()) == (192, 128)  # the whole photo, 451x300

    explained = []
    look(looked, qtbot, explained)

    # What the card shows is what the engine computes for this photo and its top class (the window runs the
    # model in ONNX Runtime, the check in PyTorch: their probabilities agree within 1e-4).
    top = card.result.top[0]
    expected = explain(Classifier(load_model(builtin_model_spec())), decode_image(str(photo), 256), top.index)
    assert np.abs(explained[0].overlay.astype(int) - expected.overlay().astype(int)).max() <= 2
    assert expected.heat.max() == 1.0  # the cat's face matters: there is heat to see
    shown = card.thumbnail.pixmap()
    assert (shown.width(), shown.height()) == (192, 192)  # the square the model sees, in the photo's place
    assert looked.caption.isVisible() and f"“{top.label}”" in looked.caption.text()
    assert f"{top.prob:.1%}" in looked.caption.text() and looked.button.isChecked()
    assert looked.button.text() == "Show the photo"  # what pressing it again does

    looked.button.click()  # the photo again
    restored = card.thumbnail.pixmap().size()
    assert (restored.width(), restored.height()) == (192, 128)
    assert not looked.caption.isVisible() and not looked.button.isChecked()
    assert looked.button.text() == "Where it looked"


@pytest.fixture
def view(window_with_tiny_model):
    return window_with_tiny_model.classify_view


def test_choosing_another_row_of_a_batch_shows_its_photo_not_the_last_heat_map(view, qtbot, photo_files):
    drop_files(view, qtbot, photo_files)
    view.batch.table.selectRow(0)
    card, looked = view.batch.card, view.batch_looked
    look(looked, qtbot)
    assert looked.caption.isVisible() and card.result.top[0].label in looked.caption.text()
    heat = card.thumbnail.pixmap().toImage()

    view.batch.show_selected()  # as rows arriving in a sorted table show the chosen row again
    assert card.thumbnail.pixmap().toImage() == heat and looked.caption.isVisible() and looked.button.isChecked()

    view.batch.table.selectRow(1)
    assert card.result is view.model.result_at(1)
    assert not looked.button.isChecked() and not looked.caption.isVisible()
    look(looked, qtbot)  # and the new row can be looked at in turn
    assert card.result.top[0].label in looked.caption.text()


def test_a_photo_deleted_since_it_was_classified_is_said_in_red(view, qtbot, photo_files):
    drop_files(view, qtbot, photo_files[:1])
    photo_files[0].unlink()
    looked = view.single_looked
    look(looked, qtbot)
    assert "cannot be read again" in looked.caption.text() and "open the photo again" in looked.caption.text()
    assert ERROR_COLOR.name() in looked.caption.styleSheet()
    assert not looked.button.isChecked()


def test_after_switching_to_a_model_without_the_class_the_card_says_to_classify_again(
    view, qtbot, photo_files, tmp_path
):
    drop_files(view, qtbot, photo_files[:1])
    other = make_bundle(tmp_path / "parts", labels=("scratch", "dent", "good"))
    load_and_wait(view.bridge, qtbot, other)
    looked = view.single_looked
    look(looked, qtbot)
    label = view.single_card.result.top[0].label
    assert f"has no class “{label}”" in looked.caption.text() and "classify it again" in looked.caption.text()


def test_after_switching_to_a_model_with_the_same_classes_it_looks_with_the_new_one(view, qtbot, photo_files,
                                                                                    tmp_path):
    drop_files(view, qtbot, photo_files[:1])
    retrained = make_bundle(tmp_path / "retrained", seed=7)  # cat, dog, bird, other weights
    load_and_wait(view.bridge, qtbot, retrained)
    looked, top = view.single_looked, view.single_card.result.top[0]
    explained = []
    look(looked, qtbot, explained)
    expected = explain(Classifier(load_model(ModelSpec(source=Bundle(str(retrained))))),
                       decode_image(str(photo_files[0])), top.index)
    assert np.abs(explained[0].overlay.astype(int) - expected.overlay().astype(int)).max() <= 2
    assert f"“{top.label}”" in looked.caption.text()
