"""The folder scan's check of iPhone photos (HEIC): it reads their container, without decoding them, and still finds
every cut-off file, whichever version of the item-location box the camera wrote."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from engine.decode import decode_image
from engine.training.dataset import scan_class_folders
from engine.training.image_check import check_file

REPO = Path(__file__).parents[2]
CHELSEA = REPO / "resources" / "self-test" / "chelsea.heic"  # 300 x 200
PORTRAIT = REPO / "tests" / "photos" / "portrait.heic"  # stored 96 x 128 on its side, shown 128 x 96


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole box) in order; the test files use 32-bit sizes only."""
    boxes, position = [], 0
    while position < len(data):
        size = struct.unpack(">I", data[position:position + 4])[0]
        boxes.append((data[position + 4:position + 8], data[position:position + size]))
        position += size
    return boxes


def _box(kind: bytes, content: bytes) -> bytes:
    return struct.pack(">I", 8 + len(content)) + kind + content


def with_item_locations_version(data: bytes, version: int) -> bytes:
    """The same HEIC with its version-0 iloc box rewritten as `version` 1 (construction methods, as iPhones write)
    or 2 (32-bit item IDs and counts), every offset moved by the bytes that adds."""
    top = _boxes(data)
    assert [kind for kind, _ in top][:2] == [b"ftyp", b"meta"]
    meta = top[1][1]
    children = _boxes(meta[12:])
    old = next(box for kind, box in children if kind == b"iloc")
    assert old[8] == 0, "the test photos' encoder writes version 0"
    offset_size, length_size = divmod(old[12], 16)
    base_size = old[13] >> 4
    wide = 4 if version == 2 else 2
    position = 14
    count = int.from_bytes(old[position:position + 2], "big")
    position += 2
    items = []
    for _ in range(count):
        item_id, reference = struct.unpack(">HH", old[position:position + 4])
        position += 4
        base = int.from_bytes(old[position:position + base_size], "big")
        extents = int.from_bytes(old[position + base_size:position + base_size + 2], "big")
        position += base_size + 2
        spans = []
        for _ in range(extents):
            offset = int.from_bytes(old[position:position + offset_size], "big")
            length = int.from_bytes(old[position + offset_size:position + offset_size + length_size], "big")
            position += offset_size + length_size
            spans.append((offset, length))
        items.append((item_id, reference, base, spans))
    grown = (wide - 2) * (1 + count) + 2 * count  # wider IDs and count, plus a construction method per item

    content = bytes([version, 0, 0, 0, old[12], base_size << 4]) + count.to_bytes(wide, "big")
    for item_id, reference, base, spans in items:
        content += item_id.to_bytes(wide, "big") + struct.pack(">HH", 0, reference)
        # Every test item lies in mdat, after meta: its base offset, or else each extent's offset, moves.
        content += (base + grown * bool(base_size)).to_bytes(base_size, "big") + struct.pack(">H", len(spans))
        for offset, length in spans:
            content += (offset + grown * (not base_size)).to_bytes(offset_size, "big")
            content += length.to_bytes(length_size, "big")
    new = _box(b"iloc", content)
    assert len(new) == len(old) + grown
    meta = _box(b"meta", meta[8:12] + b"".join(new if kind == b"iloc" else box for kind, box in children))
    return top[0][1] + meta + b"".join(box for _, box in top[2:])


@pytest.mark.parametrize("version", [1, 2])
def test_every_item_location_version_is_read(tmp_path: Path, version: int) -> None:
    for photo in (CHELSEA, PORTRAIT):
        rewritten = tmp_path / f"v{version}_{photo.name}"
        rewritten.write_bytes(with_item_locations_version(photo.read_bytes(), version))
        # libheif reads the rewritten file as the same photo: it is a valid HEIC.
        assert np.array_equal(np.asarray(decode_image(rewritten)), np.asarray(decode_image(photo)))
        assert not check_file(str(rewritten), str(tmp_path)).problem


def test_scan_sizes_heic_photos_and_finds_every_cut_off_one(tmp_path: Path) -> None:
    """Photos kept whole are used at the size they are shown at; one cut anywhere (in its header, in its image data,
    whatever its iloc version) is left out, and the user is told it is cut off."""
    cats, dogs = tmp_path / "cats", tmp_path / "dogs"
    cats.mkdir()
    dogs.mkdir()
    whole = {CHELSEA: CHELSEA.read_bytes(), PORTRAIT: PORTRAIT.read_bytes()}
    variants = {f"v{version}": {photo: with_item_locations_version(content, version)
                                for photo, content in whole.items()} for version in (1, 2)}
    variants["v0"] = whole
    for name, photos in variants.items():
        (cats / f"{name}.heic").write_bytes(photos[CHELSEA])
        (dogs / f"{name}.heic").write_bytes(photos[PORTRAIT])
    cut_paths = []
    for name, photos in variants.items():
        for photo, content in photos.items():
            meta_end = 8 + len(_boxes(content)[0][1]) + 20  # inside the meta box
            for cut in (meta_end, len(content) // 2, len(content) - 1):
                cut_paths.append(cats / f"{name}_{photo.stem}_cut_at_{cut}.heic")
                cut_paths[-1].write_bytes(content[:cut])

    scan = scan_class_folders(tmp_path, for_training=False)

    assert scan.counts() == (3, 3)
    assert (scan.min_size, scan.max_size) == ((128, 96), (300, 200))
    left_out = {problem.path: problem for problem in scan.problems if problem.kind == "corrupt"}
    assert sorted(left_out) == sorted(str(path) for path in cut_paths)
    for problem in left_out.values():
        assert "cut off" in problem.message, problem.message


def test_a_heif_libheif_cannot_decode_and_a_cut_off_avif_are_left_out(tmp_path: Path) -> None:
    """A HEIF whose picture is in a codec this build has no decoder for is left out with a message in words, not
    handed to training; AVIF (Pillow's own decoder) is checked alike."""
    whole = CHELSEA.read_bytes()
    assert whole.count(b"hvc1") == 1  # the picture's item type, in its infe box
    (tmp_path / "av1.heic").write_bytes(whole.replace(b"hvc1", b"av01"))
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.avif", quality=80)
    coffee = (tmp_path / "coffee.avif").read_bytes()
    (tmp_path / "cut.avif").write_bytes(coffee[:len(coffee) // 2])

    unreadable = check_file(str(tmp_path / "av1.heic"), str(tmp_path))
    assert unreadable.problem == "corrupt" and "not a picture Classifier Studio can read" in unreadable.message
    assert "BytesIO" not in unreadable.message
    avif = check_file(str(tmp_path / "coffee.avif"), str(tmp_path))
    assert not avif.problem and avif.size == (data.coffee().shape[1], data.coffee().shape[0])
    cut = check_file(str(tmp_path / "cut.avif"), str(tmp_path))
    assert cut.problem == "corrupt" and "cut off" in cut.message
