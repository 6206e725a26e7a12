"""Zero-shot classification with CLIP: the classes a user names, on real photos, through every backend.

The weights are a seeded random init of a real open_clip architecture (ViT-S-32-alt, the smallest with CLIP's own
tokenizer), so what is checked is that Classifier Studio computes exactly what open_clip computes for CLIP
zero-shot classification, and that it loads, caches and fails as a user meets it.
"""
from __future__ import annotations

import pickle

import numpy as np
import open_clip
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save as safetensors_bytes
from safetensors.torch import save_file
from torch.utils.flop_counter import FlopCounterMode

from engine.clip_catalog import (
    CLIP_MODELS,
    DEFAULT_CLIP_ARCH,
    DEFAULT_PROMPT,
    parse_classes,
    parse_prompt,
    prompt_as_typed,
    resolve_clip_arch,
)
from engine.errors import Cancelled, UserFacingError
from engine.events import CancelToken, Progress
from engine.models import load_model
from engine.predict import Classifier
from engine.quick_start import quick_classifier, remember
from engine.runtime import PyTorchBackend, create_backend
from engine.specs import InferenceChoice, ModelSpec, ZeroShot
from engine.zero_shot import new_clip
from tests.hub_server import FakeHub

NAME = "ViT-S-32-alt"
ARCH = f"clip/{NAME}"  # no pretrained tag: a local checkpoint file
CLASSES = ("cat", "coffee mug", "rocket")


@pytest.fixture(scope="module")
def clip_model() -> torch.nn.Module:
    torch.manual_seed(7)
    return new_clip(NAME)


@pytest.fixture(scope="module")
def clip_state(clip_model) -> dict[str, torch.Tensor]:
    return {key: value.contiguous() for key, value in clip_model.state_dict().items()}


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory, clip_state):
    path = tmp_path_factory.mktemp("clip") / "clip-s32.safetensors"
    save_file(clip_state, str(path))
    return path


def open_clip_probabilities(
    clip_model, image: Image.Image, classes: tuple[str, ...], prompt: str = DEFAULT_PROMPT
) -> np.ndarray:
    """CLIP zero-shot as open_clip's own README computes it, with open_clip's own eval transform."""
    preprocess = open_clip.image_transform(clip_model.visual.image_size, is_train=False)
    tokens = open_clip.get_tokenizer(NAME)([prompt.format(name) for name in classes])
    with torch.no_grad():
        image_features = clip_model.encode_image(preprocess(image)[None], normalize=True)
        text_features = clip_model.encode_text(tokens, normalize=True)
        return (clip_model.logit_scale.exp() * image_features @ text_features.T).softmax(dim=-1).numpy()


def zero_shot(classes=CLASSES, path="", prompt=DEFAULT_PROMPT) -> ModelSpec:
    return ModelSpec(ARCH, ZeroShot(classes, path, prompt))


def test_class_names_are_read_as_users_type_them():
    assert parse_classes("cat, dog ,coffee   mug") == ("cat", "dog", "coffee mug")
    assert parse_classes("cat\ndog\n\nCat\n") == ("cat", "dog")  # blank lines and repeats in another case dropped
    for too_few in ("", "cat", "cat, cat", " , ,"):
        with pytest.raises(UserFacingError, match="at least two class names"):
            parse_classes(too_few)
    assert resolve_clip_arch("clip") == DEFAULT_CLIP_ARCH
    assert resolve_clip_arch("clip/ViT-B-16") == "clip/ViT-B-16/openai"  # the curated checkpoint of that model
    assert resolve_clip_arch("clip/ViT-B-32/laion2b_s34b_b79k") == "clip/ViT-B-32/laion2b_s34b_b79k"
    assert resolve_clip_arch(ARCH) == ARCH


def test_the_sentence_is_read_as_users_type_it():
    assert parse_prompt("") == parse_prompt("   ") == DEFAULT_PROMPT == "a photo of a {}."
    assert parse_prompt("  a  photo of a {},\n a type of bird. ") == "a photo of a {}, a type of bird."
    assert parse_prompt("a {} in {braces}") == "a {} in {braces}"  # other braces are the user's words
    for typed in ("", "a sketch of a {}."):  # what is remembered and shown reads back as it was
        assert prompt_as_typed(parse_prompt(typed)) == typed
    for wrong in ("a photo of a cat", "a {} next to a {}"):
        with pytest.raises(UserFacingError, match="needs {} once"):
            parse_prompt(wrong)
    with pytest.raises(UserFacingError, match="more than 200"):
        parse_prompt("a photo of a {} " + "and more " * 30)


def test_the_curated_models_have_hub_weights_in_open_clip():
    for model in CLIP_MODELS:
        assert open_clip.get_pretrained_cfg(model.name, model.tag).get("hf_hub"), model


def test_the_size_and_cost_listed_for_each_curated_model_are_open_clips_own():
    """What `models` and the window say a CLIP model weighs and costs per photo, counted again on its real
    architecture (on the meta device: shapes only, no weights)."""
    for model in CLIP_MODELS:
        with torch.device("meta"):
            net = open_clip.create_model(model.name, pretrained=None, device="meta").eval()
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                net.encode_image(torch.zeros(1, 3, 224, 224))
        assert sum(p.numel() for p in net.parameters()) == model.params, model
        assert counter.get_total_flops() / 2e9 == pytest.approx(model.gmacs, abs=0.005), model


def test_zero_shot_computes_what_open_clip_computes_on_a_real_photo(clip_model, clip_file, photo_arrays):
    events = []
    loaded = load_model(zero_shot(path=str(clip_file)), device="cpu", on_event=events.append)
    classifier = Classifier(loaded, PyTorchBackend(loaded))

    assert loaded.labels == CLASSES and loaded.name.endswith("zero-shot")
    assert loaded.data_config.crop_pct == 1.0 and loaded.data_config.mean == clip_model.visual.preprocess_cfg["mean"]
    for photo in ("chelsea", "coffee"):
        image = Image.fromarray(photo_arrays[photo])
        ours = classifier.probabilities(classifier.preprocessor.batch_array([image]))
        np.testing.assert_allclose(ours, open_clip_probabilities(clip_model, image, CLASSES), atol=1e-5)
    reading = [e for e in events if isinstance(e, Progress) and e.what == "Reading the class names"]
    assert reading[-1].done == reading[-1].total == len(CLASSES)


def test_a_sentence_of_the_users_own_is_what_clip_reads(clip_model, clip_file, photo_arrays):
    prompt = "a blurry photo of a {}, taken on a {phone}."
    loaded = load_model(zero_shot(path=str(clip_file), prompt=prompt), device="cpu")
    classifier = Classifier(loaded, PyTorchBackend(loaded))
    image = Image.fromarray(photo_arrays["chelsea"])
    ours = classifier.probabilities(classifier.preprocessor.batch_array([image]))

    theirs = open_clip_probabilities(clip_model, image, CLASSES, prompt.replace("{phone}", "{{phone}}"))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert np.abs(ours - open_clip_probabilities(clip_model, image, CLASSES)).max() > 1e-3  # not the default's


def test_onnx_runtime_exports_the_image_encoder_once_for_every_set_of_classes(clip_file, photo_arrays, tmp_path):
    image = Image.fromarray(photo_arrays["chelsea"])
    for classes in (CLASSES, ("cat", "dog")):
        loaded = load_model(zero_shot(classes, str(clip_file)), device="cpu")
        onnx = Classifier(loaded, create_backend(loaded, "onnxruntime", cache_dir=tmp_path))
        eager = Classifier(loaded, PyTorchBackend(loaded))
        batch = onnx.preprocessor.batch_array([image])

        assert onnx.backend.name == "ONNX Runtime"
        np.testing.assert_allclose(onnx.probabilities(batch), eager.probabilities(batch), atol=1e-4)
        assert onnx.predict_batch(batch)[0][0].label == eager.predict_batch(batch)[0][0].label
        assert onnx.backend.for_live().logits(batch).shape == (1, len(classes))
    assert len(list(tmp_path.glob("*.onnx"))) == 1, "new class names reuse the image encoder's export"


def test_int8_is_declined_with_a_note_and_the_model_runs_at_full_precision(clip_file, tmp_path):
    loaded = load_model(zero_shot(path=str(clip_file)), device="cpu")
    notes = []
    backend = create_backend(loaded, "onnxruntime", int8=True, on_event=notes.append, cache_dir=tmp_path)
    assert backend.name == "ONNX Runtime" and backend.agreement is None
    assert any("int8 is not offered for zero-shot models" in getattr(n, "text", "") for n in notes)


def test_a_quick_start_keeps_the_classes_and_other_classes_or_sentences_load_in_full(clip_file, photo_arrays):
    spec, choice = zero_shot(path=str(clip_file)), InferenceChoice("cpu")
    loaded = load_model(spec, device="cpu")
    classifier = Classifier(loaded, create_backend(loaded, "auto"))
    remember(spec, choice, classifier)

    quick = quick_classifier(spec, choice)
    assert quick is not None and quick.loaded.labels == CLASSES and quick.loaded.model is None
    batch = quick.preprocessor.batch_array([Image.fromarray(photo_arrays["coffee"])])
    np.testing.assert_allclose(quick.probabilities(batch), classifier.probabilities(batch), atol=1e-5)
    assert quick_classifier(zero_shot(("cat", "dog"), str(clip_file)), choice) is None
    assert quick_classifier(zero_shot(CLASSES, str(clip_file), "a drawing of a {}."), choice) is None


def test_cancel_while_reading_the_class_names(clip_file):
    cancel = CancelToken()

    def cancel_at_the_first_step(event):
        if isinstance(event, Progress) and event.what == "Reading the class names":
            cancel.cancel()

    with pytest.raises(Cancelled):
        load_model(zero_shot(path=str(clip_file)), device="cpu", on_event=cancel_at_the_first_step, cancel=cancel)


def test_weights_that_are_not_this_clip_model_are_refused_clearly(tmp_path, clip_state):
    hostile = tmp_path / "clip.pth"
    hostile.write_bytes(pickle.dumps(Exploit(str(tmp_path / "pwned"))))
    with pytest.raises(UserFacingError, match="refused to open it"):
        load_model(zero_shot(path=str(hostile)), device="cpu")
    assert not (tmp_path / "pwned").exists()

    resnet = tmp_path / "resnet.safetensors"
    save_file(timm.create_model("resnet18", pretrained=False).state_dict(), str(resnet))
    with pytest.raises(UserFacingError, match=f"is not a checkpoint of CLIP {NAME}"):
        load_model(zero_shot(path=str(resnet)), device="cpu")

    with pytest.raises(UserFacingError, match="Unknown CLIP model 'ViT-Q-99'"):
        load_model(ModelSpec("clip/ViT-Q-99", ZeroShot(CLASSES, str(resnet))), device="cpu")
    with pytest.raises(UserFacingError, match="resnet18 is not a CLIP model"):
        load_model(ModelSpec("resnet18", ZeroShot(CLASSES)), device="cpu")


class Exploit:
    """A pickle that would create a file if it were ever unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hub_weights_download_once_with_progress_and_use_the_tags_settings(
    monkeypatch, clip_state, clip_model, photo_arrays
):
    """A curated tag names its Hub repo and whether it was trained with QuickGELU (OpenAI's were): both count."""
    repo = "test-org/clip-s32"
    tags = {"testtag": {"hf_hub": f"{repo}/", "quick_gelu": True}}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, NAME, tags)  # open_clip's registry of checkpoints
    body = safetensors_bytes(clip_state)
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        hub.add_file(repo, "open_clip_model.safetensors", body)
        events = []
        loaded = load_model(ModelSpec(f"{ARCH}/testtag", ZeroShot(CLASSES)), device="cpu", on_event=events.append)
        again = load_model(ModelSpec(f"{ARCH}/testtag", ZeroShot(("cat", "dog"))), device="cpu")

    assert repo in loaded.source and again.labels == ("cat", "dog")
    downloads = [e for e in events if isinstance(e, Progress) and e.unit == "bytes"]
    assert downloads[-1].done == downloads[-1].total == len(body)
    activations = {type(m).__name__ for m in loaded.model.modules()}
    assert "QuickGELU" in activations, "the tag's QuickGELU is used: without it the answers are silently wrong"
    quick_gelu = new_clip(NAME, quick_gelu=True)
    quick_gelu.load_state_dict(clip_state)
    image = Image.fromarray(photo_arrays["rocket"])
    classifier = Classifier(loaded, PyTorchBackend(loaded))
    ours = classifier.probabilities(classifier.preprocessor.batch_array([image]))
    np.testing.assert_allclose(ours, open_clip_probabilities(quick_gelu, image, CLASSES), atol=1e-5)


def test_a_tag_open_clip_does_not_know_is_a_clear_error(clip_file):
    with pytest.raises(UserFacingError, match="open_clip has no Hugging Face Hub weights"):
        load_model(ModelSpec(f"{ARCH}/no-such-tag", ZeroShot(CLASSES)), device="cpu")
