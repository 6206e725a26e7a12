"""Bundles carry everything needed to use a model; prediction gives sorted top-k per image and keeps going past bad
files."""
from __future__ import annotations

import json
import time
import weakref
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image

from engine.bundle import INFO_NAME, WEIGHTS_NAME, BundleInfo, is_bundle, read_bundle, save_bundle
from engine.decode import decode_image
from engine.errors import Cancelled, UserFacingError
from engine.events import CancelToken, Progress
from engine.export import export_results
from engine.models import Bundle, ModelSpec, RandomInit, WeightsFile, load_model
from engine.predict import Classifier, expand_paths
from engine.preprocess import DataConfig
from engine.runtime import PyTorchBackend
from tests.conftest import make_bundle


def test_bundle_folder_loads_with_its_labels_and_preprocessing(tiny_bundle):
    assert is_bundle(tiny_bundle) and (tiny_bundle / WEIGHTS_NAME).is_file()
    info = json.loads((tiny_bundle / INFO_NAME).read_text())
    assert info["architecture"] == "test_efficientnet" and info["labels"] == ["cat", "dog", "bird"]
    loaded = load_model(ModelSpec(source=Bundle(str(tiny_bundle))))
    assert loaded.labels == ("cat", "dog", "bird")
    assert loaded.data_config == DataConfig.from_dict(info["data_config"])
    assert loaded.name == "tiny_bundle" and loaded.device.description == "CPU · fp32"


def test_single_file_bundle_also_opens_as_a_weights_file(tmp_path):
    path = make_bundle(tmp_path / "pets.safetensors", labels=("cat", "dog"))
    assert is_bundle(path)
    # A user picking the file through "load weights file" gets the bundle, no architecture needed.
    loaded = load_model(ModelSpec("", WeightsFile(str(path))))
    assert loaded.labels == ("cat", "dog") and loaded.arch == "test_efficientnet"


def test_bundle_predictions_equal_the_saved_model(tmp_path, photo_files):
    torch.manual_seed(3)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=4).eval()
    config = DataConfig((3, 96, 96), "bilinear", crop_pct=1.0)
    save_bundle(tmp_path / "b", model.state_dict(), BundleInfo("test_resnet", ("a", "b", "c", "d"), config))
    classifier = Classifier(load_model(ModelSpec(source=Bundle(str(tmp_path / "b")))))
    image = Image.open(photo_files[0]).convert("RGB")
    with torch.inference_mode():
        expected = model(classifier.preprocessor.batch([image])).softmax(-1)[0]
    top = classifier.predict_images([image], topk=4)[0]
    assert [t.index for t in top] == expected.argsort(descending=True).tolist()
    assert [t.prob for t in top] == pytest.approx(expected.sort(descending=True).values.tolist(), abs=1e-6)


def test_damaged_bundles_are_refused_clearly(tmp_path, tiny_bundle):
    (tiny_bundle / INFO_NAME).write_text("{broken")
    with pytest.raises(UserFacingError, match="not a valid model bundle"):
        read_bundle(tiny_bundle)
    newer = make_bundle(tmp_path / "newer")
    info = json.loads((newer / INFO_NAME).read_text())
    info["schema_version"] = 99
    (newer / INFO_NAME).write_text(json.dumps(info))
    with pytest.raises(UserFacingError, match="newer Classifier Studio"):
        read_bundle(newer)
    with pytest.raises(UserFacingError, match="not a model bundle"):
        read_bundle(tmp_path)


def test_a_batch_with_bad_files_classifies_the_rest(tiny_bundle, photo_files, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(photo_files[0].read_bytes()[:300])
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    paths = [photo_files[0], corrupt, photo_files[1], text, tmp_path / "missing.png", *photo_files[2:]]
    classifier = Classifier(load_model(ModelSpec(source=Bundle(str(tiny_bundle)))))
    events, batches_done_before = [], []
    results = []
    for result in classifier.classify_stream(paths, topk=5, batch_size=3, on_event=events.append):
        results.append(result)
        batches_done_before.append(len(events))
    assert [r.path for r in results] == [str(p) for p in paths]
    assert batches_done_before == [0, 0, 0, 1, 1, 1, 2]  # each batch's results come as it finishes
    failed = {Path(r.path).name for r in results if r.error}
    assert failed == {"corrupt.jpg", "notes.txt", "missing.png"}
    for result in results:
        if result.error is None:
            assert len(result.top) == 3  # top-5 of a 3-class model
            probs = [t.prob for t in result.top]
            assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-5)
            assert result.ms > 0
    assert [e.done for e in events if isinstance(e, Progress)] == [3, 6, 7]


class SlowBackend:
    """A real backend that waits before reading its input, as a big model on a slow CPU would."""

    def __init__(self, backend: PyTorchBackend) -> None:
        self.backend, self.name, self.agreement = backend, "slow PyTorch", None

    def logits(self, batch):
        time.sleep(0.2)
        return self.backend.logits(batch)


def test_a_folder_classified_in_overlapping_batches_matches_one_image_at_a_time(tiny_bundle, photo_files, tmp_path):
    """The next batch is prepared while the model runs on the current one: no row may land in the wrong result."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    paths = [*photo_files, broken, *reversed(photo_files), broken, *photo_files[:3]]
    loaded = load_model(ModelSpec(source=Bundle(str(tiny_bundle))))
    classifier = Classifier(loaded)
    slow = Classifier(loaded, SlowBackend(PyTorchBackend(loaded)))  # the next batch is surely decoded meanwhile
    results = list(slow.classify_stream(paths, topk=3, batch_size=3, thumbnail_size=32))
    assert [r.path for r in results] == [str(p) for p in paths]
    for path, result in zip(paths, results):
        if path == broken:
            assert result.error and result.top == () and result.thumbnail is None
            continue
        alone = classifier.predict_images([decode_image(path, classifier.preprocessor.decode_size)], topk=3)[0]
        assert [t.index for t in result.top] == [t.index for t in alone], path
        assert [t.prob for t in result.top] == pytest.approx([t.prob for t in alone], abs=1e-5), path
        assert result.thumbnail is not None and max(result.thumbnail.shape[:2]) == 32


def test_cancel_stops_a_batch_between_images(tiny_bundle, photo_files):
    classifier = Classifier(load_model(ModelSpec(source=Bundle(str(tiny_bundle)))))
    cancel = CancelToken()
    seen = []
    with pytest.raises(Cancelled):
        for result in classifier.classify_stream(photo_files * 5, batch_size=2, cancel=cancel):
            seen.append(result)
            cancel.cancel()
    assert len(seen) == 2  # the batch in flight finishes; nothing after it starts


def test_a_large_folder_is_not_held_in_memory_while_it_streams(tiny_bundle, photo_files):
    """The window keeps thumbnails within a budget; the engine must not keep every one behind its back
    (15,000 photos held ~1.2 GB of thumbnails until the batch ended)."""
    classifier = Classifier(load_model(ModelSpec(source=Bundle(str(tiny_bundle)))))
    thumbnails, most_alive = [], 0
    for result in classifier.classify_stream(photo_files * 6, batch_size=2, thumbnail_size=64):
        thumbnails.append(weakref.ref(result.thumbnail))
        del result
        most_alive = max(most_alive, sum(ref() is not None for ref in thumbnails))
    assert len(thumbnails) == len(photo_files) * 6
    assert most_alive <= 2  # the batch being handed out; earlier ones are gone as soon as the caller drops them


def test_folders_expand_recursively_to_image_files(tmp_path, photo_files):
    nested = tmp_path / "photos" / "more" / "deeper"
    nested.mkdir(parents=True)
    (nested / "copy.PNG").write_bytes(photo_files[1].read_bytes())
    (tmp_path / "photos" / "readme.txt").write_text("x")
    found = expand_paths([tmp_path / "photos"])
    assert {p.name for p in found} == {p.name for p in photo_files} | {"copy.PNG"}


def test_exported_csv_and_json_hold_every_result(tiny_bundle, photo_files, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    classifier = Classifier(load_model(ModelSpec(source=Bundle(str(tiny_bundle)))))
    results = classifier.classify_files([*photo_files, bad])
    data = json.loads(export_results(results, tmp_path / "out.json").read_text())
    assert [d["path"] for d in data] == [r.path for r in results]
    assert "error" in data[-1] and data[0]["top"][0]["label"] in {"cat", "dog", "bird"}
    lines = export_results(results, tmp_path / "out.csv").read_text().splitlines()
    assert lines[0].startswith("path,top1_label") and len(lines) == len(results) + 1


def test_unknown_architecture_suggests_close_names():
    with pytest.raises(UserFacingError) as caught:
        load_model(ModelSpec("resnet5O", RandomInit()))
    assert "resnet5O" in caught.value.message and "resnet50" in caught.value.hint


def test_torchvision_alexnet_is_offered(tmp_path):
    loaded = load_model(ModelSpec("torchvision/alexnet", RandomInit()))
    assert loaded.num_classes == 1000 and loaded.labels[281] == "tabby, tabby cat"
    assert loaded.data_config.input_size == (3, 224, 224)


def test_a_camera_sized_photo_is_decoded_small_and_classified_as_at_full_size(tmp_path, photo_arrays):
    """A 12-megapixel JPEG decodes at a reduced scale (several times faster) and gets the same answer."""
    from engine.decode import decode_image
    from engine.specs import builtin_model_spec

    big = tmp_path / "camera.jpg"
    Image.fromarray(photo_arrays["chelsea"]).resize((4000, 2660), Image.Resampling.BICUBIC).save(big, quality=92)
    classifier = Classifier(load_model(builtin_model_spec(), device="cpu"))
    size = classifier.preprocessor.decode_size
    assert size == 256  # 224 / 0.875

    drafted = decode_image(big, min_size=size)
    assert min(drafted.size) >= 2 * size and drafted.size == (1000, 665)  # 1/4 scale: DCT scaling
    assert decode_image(big).size == (4000, 2660)

    got = classifier.classify_files([big])[0].top
    full = classifier.predict_images([decode_image(big)])[0]
    assert got[0].index == full[0].index
    assert max(abs(a.prob - b.prob) for a, b in zip(got, full)) < 0.03
    assert [t.index for t in got[:3]] == [t.index for t in full[:3]]
