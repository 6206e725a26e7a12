"""Thumbnails of picture files (the wizard's class strips, the evaluation's mistakes): decoded on a few threads,
delivered in order, each as it would be decoded alone."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from engine.errors import Cancelled
from engine.events import CancelToken
from engine.predict import file_thumbnail, file_thumbnails

REPO = Path(__file__).parents[2]


@pytest.fixture
def pictures(tmp_path: Path) -> list[str]:
    """Photos in several formats (an upright-turned HEIC among them), a cut-off one and one deleted since."""
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.png")
    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.webp")
    chelsea = (REPO / "resources" / "self-test" / "chelsea.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(chelsea[:len(chelsea) // 3])
    names = [str(REPO / "resources" / "self-test" / "chelsea.heic"), str(tmp_path / "coffee.png"),
             str(tmp_path / "cut.jpg"), str(REPO / "tests" / "photos" / "portrait.heic"),
             str(tmp_path / "gone.jpg"), str(REPO / "resources" / "self-test" / "chelsea.jpg"),
             str(tmp_path / "astronaut.webp")]
    return names * 2  # more than the threads' window, so later ones are queued as earlier ones arrive


def test_thumbnails_arrive_in_order_each_as_decoded_alone(pictures: list[str]) -> None:
    got = list(file_thumbnails(pictures, 88))

    assert [path for path, _ in got] == pictures
    for path, pixels in got:
        alone = file_thumbnail(path, 88)
        if path.endswith(("cut.jpg", "gone.jpg")):
            assert pixels is None and alone is None  # shown as a blank tile
            continue
        assert pixels is not None and np.array_equal(pixels, alone)
        assert max(pixels.shape[:2]) == 88 and pixels.shape[2] == 3
    portrait = dict(got)[str(REPO / "tests" / "photos" / "portrait.heic")]
    assert portrait.shape[:2] == (66, 88)  # shown upright, 128 x 96, not as stored


def test_cancel_stops_the_thumbnails(pictures: list[str]) -> None:
    cancel = CancelToken()
    thumbnails = file_thumbnails(pictures, 88, cancel)
    assert next(thumbnails)[0] == pictures[0]
    cancel.cancel()
    with pytest.raises(Cancelled):
        next(thumbnails)
