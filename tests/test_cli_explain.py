"""`python main.py explain IMAGE`: where the model looked, saved as a heat-map PNG, run in-process on real photos."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine import cli
from engine.cli_common import EXIT_OK, EXIT_USAGE
from engine.decode import decode_image
from engine.explain import explain
from engine.models import load_model
from engine.predict import Classifier
from engine.specs import Bundle, ModelSpec, builtin_model_spec
from tests.test_cli import isolated_bug_log  # noqa: F401


def read_picture(path) -> tuple[str, np.ndarray]:
    with Image.open(path) as picture:
        return picture.format, np.asarray(picture)


def test_the_heat_map_of_the_built_in_model_is_saved_here_and_never_over_an_earlier_one(
    photo_files, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    cat = photo_files[0]  # chelsea.jpg

    assert cli.main(["explain", str(cat)]) == EXIT_OK
    said = capsys.readouterr().out
    first = tmp_path / "chelsea-where-it-looked.png"
    assert f"heat map: {first.name}" in said and "cat”" in said  # tiger, tabby or Egyptian: a cat class
    expected = explain(Classifier(load_model(builtin_model_spec())), decode_image(str(cat), 256))
    _, saved = read_picture(first)
    assert saved.shape == (224, 224, 3)
    # The command runs ONNX Runtime, the check PyTorch: probabilities within 1e-4, pixels within a step or two.
    assert np.abs(saved.astype(int) - expected.overlay().astype(int)).max() <= 2
    assert expected.describe() == said.splitlines()[0]

    assert cli.main(["explain", str(cat), "--class", "EGYPTIAN CAT", "--json"]) == EXIT_OK
    answer = json.loads(capsys.readouterr().out)
    assert answer["label"] == "Egyptian cat" and answer["heat_map"] == "chelsea-where-it-looked-2.png"
    assert answer["prob_with_warmest_part_hidden"] < answer["prob"]
    assert np.array_equal(read_picture(first)[1], saved)  # the first one is kept as it was


@pytest.mark.parametrize("name, index", [("dog", 1), ("BIRD", 2), (" cat ", 0)])
def test_a_class_is_chosen_by_its_name_in_any_case(tiny_bundle, photo_files, tmp_path, capsys, name, index):
    out = tmp_path / "heat.png"
    assert cli.main(["explain", str(photo_files[0]), "--model", str(tiny_bundle), "--class", name,
                     "--out", str(out), "--json"]) == EXIT_OK
    answer = json.loads(capsys.readouterr().out)
    assert answer["index"] == index and answer["heat_map"] == str(out) and out.is_file()
    expected = explain(Classifier(load_model(ModelSpec(source=Bundle(str(tiny_bundle))))),
                       decode_image(str(photo_files[0])), index)
    assert answer["prob"] == pytest.approx(expected.prob, abs=1e-4)
    assert read_picture(out)[0] == "PNG"


def test_the_heat_map_is_saved_in_the_format_its_name_asks_for(tiny_bundle, photo_files, tmp_path, capsys):
    shapes = set()
    for name, kind in (("heat.jpg", "JPEG"), ("heat.webp", "WEBP"), ("heat", "PNG")):
        out = tmp_path / name
        assert cli.main(["explain", str(photo_files[0]), "--model", str(tiny_bundle), "--out", str(out)]) == EXIT_OK
        found, pixels = read_picture(out)
        assert found == kind
        shapes.add(pixels.shape)
    assert shapes == {(160, 160, 3)}  # the tiny model's input size


def test_an_unknown_class_a_broken_photo_and_an_unwritable_place_are_said_plainly(
    tiny_bundle, photo_files, tmp_path, capsys
):
    photo = str(photo_files[0])
    assert cli.main(["explain", photo, "--model", str(tiny_bundle), "--class", "do"]) == EXIT_USAGE
    said = capsys.readouterr().err
    assert "The model has no class “do”." in said and "Did you mean: dog?" in said

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photo_files[0].read_bytes()[:300])
    assert cli.main(["explain", str(broken), "--model", str(tiny_bundle)]) == EXIT_USAGE
    said = capsys.readouterr().err
    assert said.count("error: ") == 1 and "broken.jpg" in said and "Traceback" not in said

    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    assert cli.main(["explain", photo, "--model", str(tiny_bundle), "--out", str(a_file / "heat.png")]) == EXIT_USAGE
    said = capsys.readouterr().err
    assert "error: " in said and "heat.png" in said and "Traceback" not in said
