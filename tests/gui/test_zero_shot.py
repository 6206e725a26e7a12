"""The model picker's Zero-shot page in the real window: name classes, CLIP loads from a (local) Hub, a dropped photo
gets exactly those classes, and the choice survives a restart."""
from __future__ import annotations

import open_clip
import pytest
import torch
from PySide6.QtCore import Qt
from safetensors.torch import save as safetensors_bytes
from safetensors.torch import save_file

from engine.specs import InferenceChoice, ModelSpec, ZeroShot
from engine.zero_shot import new_clip
from gui.settings import load_settings
from tests.gui.conftest import WAIT_MS
from tests.gui.test_classify_view import drop_files
from tests.hub_server import FakeHub

NAME, TAG, REPO = "ViT-S-32-alt", "testtag", "test-org/clip-s32"  # a small real open_clip model, random weights
ARCH = f"clip/{NAME}/{TAG}"


@pytest.fixture
def clip_hub(monkeypatch):
    """A local Hub serving the CLIP checkpoint, and open_clip told which repo the test tag's weights are in."""
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, NAME, {TAG: {"hf_hub": f"{REPO}/"}})
    torch.manual_seed(5)
    weights = safetensors_bytes({k: v.contiguous() for k, v in new_clip(NAME).state_dict().items()})
    with FakeHub() as hub:
        hub.add_file(REPO, "open_clip_model.safetensors", weights)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        yield hub


def test_named_classes_classify_a_dropped_photo_and_come_back_after_a_restart(open_window, qtbot, clip_hub,
                                                                               photo_files):
    window = open_window()
    window.picker.set_choice(InferenceChoice("cpu", "fp32", "pytorch"))
    page = window.picker.zero_shot_page
    window.picker.tabs.setCurrentWidget(page)
    page.show_spec(ModelSpec(ARCH, ZeroShot(("x", "y"))))  # offers the test's model in the list, as for any CLIP
    page.classes_field.setPlainText("cat, coffee mug\nrocket\n")
    qtbot.keyClicks(page.prompt_field, "a photo of a {}, on my desk.")
    qtbot.mouseClick(page.use_button, Qt.MouseButton.LeftButton)

    status = window.model_status
    qtbot.waitUntil(lambda: status.state_label.text() == "ready", timeout=WAIT_MS)
    assert status.model_label.text() == f"CLIP {NAME} ({TAG}) · zero-shot"
    drop_files(window.classify_view, qtbot, [photo_files[0]])
    bars = window.classify_view.single_card.bars
    assert bars.visible_count() == 3
    assert {bars.rows[i][0].text() for i in range(3)} == {"cat", "coffee mug", "rocket"}
    window.close()

    settings = load_settings()
    assert settings.model_spec() == ModelSpec(ARCH, ZeroShot(("cat", "coffee mug", "rocket"), "",
                                                             "a photo of a {}, on my desk."))
    reopened = open_window(autoload=True, settings=settings)
    qtbot.waitUntil(lambda: reopened.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    assert reopened.model_status.model_label.text() == f"CLIP {NAME} ({TAG}) · zero-shot"
    reopened_page = reopened.picker.zero_shot_page
    assert reopened_page.classes_field.toPlainText() == "cat\ncoffee mug\nrocket"
    assert reopened_page.prompt_field.text() == "a photo of a {}, on my desk."
    assert reopened_page.model_box.currentData() == ARCH


def test_fewer_than_two_classes_or_a_sentence_without_braces_are_explained_inline_and_nothing_loads(open_window, qtbot):
    window = open_window()
    requests = []
    window.picker.load_requested.connect(lambda spec, choice: requests.append(spec))
    page = window.picker.zero_shot_page
    window.picker.tabs.setCurrentWidget(page)
    page.classes_field.setPlainText("cat")
    qtbot.mouseClick(page.use_button, Qt.MouseButton.LeftButton)

    assert "needs at least two class names" in window.picker.message
    assert requests == [] and window.model_status.model_label.text() == "No model"
    page.classes_field.setPlainText("cat, dog")  # typing clears the message
    assert window.picker.message == ""

    page.prompt_field.setText("a photo of my cat")  # a sentence with no place for the class name
    qtbot.keyClick(page.prompt_field, Qt.Key.Key_Return)  # Return in the sentence uses the classes
    assert "needs {} once, where each class name goes" in window.picker.message
    assert requests == []
    page.prompt_field.clear()  # empty: CLIP's own sentence
    qtbot.keyClick(page.prompt_field, Qt.Key.Key_Return)
    assert window.picker.message == ""
    assert [spec.source for spec in requests] == [ZeroShot(("cat", "dog"), "", "a photo of a {}.")]


def test_load_weights_file_on_the_zero_shot_tab_uses_the_checkpoint_for_the_chosen_clip_model(
    open_window, qtbot, tmp_path
):
    """Offline, with a CLIP checkpoint at hand: Load weights file… on this tab loads it for the typed classes."""
    torch.manual_seed(6)
    checkpoint = tmp_path / "my-clip.safetensors"
    save_file({k: v.contiguous() for k, v in new_clip(NAME).state_dict().items()}, str(checkpoint))
    window = open_window()
    window.picker.set_choice(InferenceChoice("cpu", "fp32", "pytorch"))
    page = window.picker.zero_shot_page
    window.picker.tabs.setCurrentWidget(page)
    page.show_spec(ModelSpec(f"clip/{NAME}", ZeroShot(("ant", "bee"))))  # a model given by name, no Hub tag
    window.picker.load_model_file(str(checkpoint))  # what the Load weights file… dialog does with its choice

    qtbot.waitUntil(lambda: window.model_status.state_label.text() == "ready", timeout=WAIT_MS)
    assert window.model_status.model_label.text() == f"CLIP {NAME} · zero-shot"
    window.close()
    assert load_settings().model_spec() == ModelSpec(f"clip/{NAME}", ZeroShot(("ant", "bee"), str(checkpoint)))
