"""Users' weights files are read safely: safetensors or weights-only torch.load; a hostile pickle never runs."""
from __future__ import annotations

import os
import pickle

import pytest
import timm
import torch
from safetensors.torch import save_file

from engine.errors import UserFacingError
from engine.models import ModelSpec, WeightsFile, load_model
from engine.weights import read_state_dict

ARCH = "test_efficientnet"


class _Hostile:
    """Unpickling this would run a shell command: the classic malicious model file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def state_dict():
    torch.manual_seed(1)
    return timm.create_model(ARCH, pretrained=False).state_dict()


def test_safetensors_and_torch_files_load_the_same_weights(tmp_path, state_dict):
    save_file(state_dict, tmp_path / "w.safetensors")
    torch.save(state_dict, tmp_path / "w.pth")
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state_dict.items()}}, tmp_path / "ckpt.pt")
    for name in ("w.safetensors", "w.pth", "ckpt.pt"):
        loaded = read_state_dict(tmp_path / name)
        assert loaded.keys() == state_dict.keys(), name
        assert all(torch.equal(loaded[k], state_dict[k]) for k in state_dict), name


def test_a_hostile_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pth"
    evil.write_bytes(pickle.dumps({"weight": _Hostile(marker)}))
    with pytest.raises(UserFacingError) as caught:
        read_state_dict(evil)
    assert "refused" in caught.value.message and "model.pth" in caught.value.message
    assert not marker.exists()
    # Through the model loader too: same refusal, nothing executed.
    with pytest.raises(UserFacingError):
        load_model(ModelSpec(ARCH, WeightsFile(str(evil))))
    assert not marker.exists()


@pytest.mark.parametrize(
    "name, content",
    [("empty.pth", b""), ("garbage.pt", os.urandom(2048)), ("text.bin", b"hello, not weights"),
     ("broken.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json"), ("photo.jpg", b"\xff\xd8\xff\xe0")],
)
def test_damaged_or_foreign_files_give_a_clear_message(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserFacingError) as caught:
        read_state_dict(path)
    assert name in caught.value.message
    assert caught.value.hint


def test_a_folder_or_missing_file_is_explained(tmp_path):
    with pytest.raises(UserFacingError, match="folder"):
        read_state_dict(tmp_path)
    with pytest.raises(UserFacingError, match="does not exist"):
        read_state_dict(tmp_path / "nope.safetensors")


def test_weights_for_another_architecture_do_not_half_load(tmp_path):
    save_file(timm.create_model("test_resnet", pretrained=False).state_dict(), tmp_path / "resnet.safetensors")
    with pytest.raises(UserFacingError) as caught:
        load_model(ModelSpec(ARCH, WeightsFile(str(tmp_path / "resnet.safetensors"))))
    assert "does not fit test_efficientnet" in caught.value.message
    assert "architecture" in caught.value.hint


def test_fine_tuned_weights_with_their_own_class_count_load(tmp_path):
    torch.manual_seed(2)
    model = timm.create_model(ARCH, pretrained=False, num_classes=7)
    save_file(model.state_dict(), tmp_path / "seven.safetensors")
    loaded = load_model(ModelSpec(ARCH, WeightsFile(str(tmp_path / "seven.safetensors"))))
    assert loaded.num_classes == 7 and loaded.labels[0] == "class 0"
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(loaded.model(x), model.eval()(x))


def test_a_weights_file_needs_an_architecture(tmp_path, state_dict):
    save_file(state_dict, tmp_path / "w.safetensors")
    with pytest.raises(UserFacingError) as caught:
        load_model(ModelSpec("", WeightsFile(str(tmp_path / "w.safetensors"))))
    assert "w.safetensors" in caught.value.hint


def test_a_truncated_checkpoint_is_called_damaged_not_hostile(tmp_path, state_dict):
    torch.save(state_dict, tmp_path / "full.pth")
    for name, cut in (("zip.pth", 0.5), ("head.pth", 0.01)):
        data = (tmp_path / "full.pth").read_bytes()
        (tmp_path / name).write_bytes(data[: int(len(data) * cut)])
        with pytest.raises(UserFacingError) as caught:
            read_state_dict(tmp_path / name)
        assert "damaged" in caught.value.message and "refused" not in caught.value.message
