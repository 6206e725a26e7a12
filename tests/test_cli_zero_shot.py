"""`classify --classes`: zero-shot classification from the command line, run for real as `python main.py …`."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from engine.zero_shot import new_clip
from tests.test_cli import isolated_bug_log, run_cli  # noqa: F401  (the fixture keeps the CLI's log in tmp_path)

NAME = "ViT-S-32-alt"  # the smallest open_clip model with CLIP's own tokenizer (random weights: no network here)


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    torch.manual_seed(3)
    model = new_clip(NAME)
    path = tmp_path_factory.mktemp("clip") / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_classify_sorts_photos_into_the_named_classes(clip_file, photo_files):
    done = run_cli(
        "classify", *photo_files[:2], "--model", f"clip/{NAME}", "--weights", clip_file,
        "--classes", "cat, coffee mug,  rocket", "--backend", "pytorch", "--json",
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == 2
    for result in results:
        assert {top["label"] for top in result["top"]} == {"cat", "coffee mug", "rocket"}  # every class, no more
        assert abs(sum(top["prob"] for top in result["top"]) - 1) < 1e-4
    assert f"Using clip/{NAME}" in done.stderr

    in_a_sentence = run_cli(
        "classify", *photo_files[:2], "--model", f"clip/{NAME}", "--weights", clip_file,
        "--classes", "cat, coffee mug,  rocket", "--backend", "pytorch", "--json", "--prompt", "a sketch of a {}.",
    )
    assert in_a_sentence.returncode == 0, in_a_sentence.stderr
    tops = [[(top["label"], round(top["prob"], 4)) for top in result["top"]] for result in results]
    sketch_tops = [[(top["label"], round(top["prob"], 4)) for top in json.loads(line)["top"]]
                   for line in in_a_sentence.stdout.splitlines()]
    assert len(sketch_tops) == 2 and sketch_tops != tops  # CLIP read other sentences


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--classes", "cat"], "needs at least two class names"),
        (["--model", "resnet50", "--classes", "cat, dog"], "--classes needs a CLIP model, and resnet50 is not one"),
        (["--model", "clip/ViT-B-32"], 'Give them with --classes "cat, dog, coffee mug"'),
        (["--classes", "cat, dog", "--prompt", "a photo of a cat"], "needs {} once, where each class name goes"),
        (["--prompt", "a photo of a {}."], "no --classes were given"),
    ],
)
def test_zero_shot_mistakes_get_a_clear_message_and_exit_status_2(photo_files, args, message):
    done = run_cli("classify", photo_files[0], *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_the_models_command_lists_the_clip_models():
    done = run_cli("models")
    assert done.returncode == 0
    assert "Zero-shot (CLIP)" in done.stdout and "clip/ViT-B-32/openai" in done.stdout
