"""Checks that an image file's bytes decode completely, cheaply: what the dataset scan runs on every file."""
from __future__ import annotations

import io

from PIL import Image

_DRAFT_SIZE = (160, 160)  # JPEGs decode at 1/2..1/8 scale: every byte is still read, at a fraction of the cost


def displayed_size(data: bytes) -> tuple[int, int]:
    """Decode `data` cheaply but completely enough to find damage; the (width, height) it is shown at."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        limit = Image.MAX_IMAGE_PIXELS  # read, never set: the app owns that setting
        if limit is not None and width * height > limit:
            raise Image.DecompressionBombError(f"{width * height} pixels")
        is_jpeg = image.format in ("JPEG", "MPO")
        if is_jpeg:
            image.draft("RGB", _DRAFT_SIZE)
        image.load()
        # Pillow accepts a cut-off file when someone set ImageFile.LOAD_TRUNCATED_IMAGES; check the end ourselves.
        if is_jpeg and not _jpeg_is_complete(data):
            raise OSError("the image data ends early")
        try:
            turned = image.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF orientation: shown rotated a quarter turn
        except Exception:  # noqa: BLE001 - a damaged EXIF block does not spoil the pixels
            turned = False
    return (height, width) if turned else (width, height)


def _jpeg_is_complete(data: bytes) -> bool:
    """Whether the JPEG's marker chain reaches its end-of-image marker (absent from a cut-off file)."""
    position, end = 2, len(data)
    while position + 1 < end:
        if data[position] != 0xFF:
            position = data.find(b"\xff", position)  # stray bytes before a marker: decoders skip them too
            if position < 0:
                return False
            continue
        marker = data[position + 1]
        if marker == 0xD9:
            return True
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD7:  # fill byte or marker without a length
            position += 1 if marker == 0xFF else 2
            continue
        if position + 4 > end:
            return False
        position += 2 + int.from_bytes(data[position + 2:position + 4], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data runs to the next marker that is not 00 or RSTn
            while True:
                position = data.find(b"\xff", position)
                if position < 0 or position + 1 >= end:
                    return False
                following = data[position + 1]
                if following == 0x00 or following == 0xFF or 0xD0 <= following <= 0xD7:
                    position += 1
                    continue
                break
    return False
