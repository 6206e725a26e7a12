"""Checks every file of a dataset scan: that its bytes decode completely (cheaply), its digest for finding copies,
and what to tell the user when it cannot be used."""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from functools import partial

from PIL import Image, UnidentifiedImageError

from engine import heif
from engine.decode import IMAGE_EXTENSIONS
from engine.events import CancelToken, EventSink, Progress
from engine.threads import ordered_on_threads

_DRAFT_SIZE = (160, 160)  # JPEGs decode at 1/2..1/8 scale: every byte is still read, at a fraction of the cost


@dataclass(frozen=True)
class FileCheck:
    """One file's verdict: its content digest and displayed size, or the kind of problem and what to tell the user."""

    digest: bytes = b""
    size: tuple[int, int] = (0, 0)
    problem: str = ""  # "" (usable), "corrupt" or "not_image"
    message: str = ""


def check_files(paths: list[str], root: str, on_event: EventSink, cancel: CancelToken) -> list[FileCheck]:
    """Check files on a few threads (Pillow and file reads release the GIL), results in the paths' order."""
    total = len(paths)
    every = max(1, -(-total // 100))  # at most 100 progress events, however many files
    results: list[FileCheck] = []
    workers = min(4, max(2, os.cpu_count() or 2))
    # A bounded window of work in flight: a cancelled scan has started at most a few files, not the whole folder.
    for result in ordered_on_threads(partial(check_file, root=root), paths, workers, workers * 4, cancel,
                                     "dataset-scan"):
        results.append(result)
        if len(results) % every == 0 and len(results) < total:
            on_event(Progress("Scanning images", len(results), total))
    on_event(Progress("Scanning images", total, total))
    return results


def check_file(path: str, root: str) -> FileCheck:
    rel = relative_name(path, root)
    if os.path.splitext(path)[1].lower() not in IMAGE_EXTENSIONS:
        return FileCheck(problem="not_image", message=(
            f'"{rel}" is not an image file Classifier Studio can read, so it is left out; move it out of the class '
            "folder, or convert it to JPEG or PNG if it is a picture."))
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        return _corrupt(f'"{rel}" cannot be read ({exc.strerror or exc}), so it is left out; check that your user '
                        "may read it.")
    if not data:
        return _corrupt(f'"{rel}" is empty (0 bytes), so it is left out; copy it again from the original.')
    try:
        size = displayed_size(data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return _corrupt(f'"{rel}" is too large to decode safely (a decompression-bomb guard), so it is left out; '
                        "downscale it in an image editor.")
    except UnidentifiedImageError:  # Pillow's message names an in-memory file object, not the user's file
        return _corrupt(f'"{rel}" has an image extension but its contents are not a picture Classifier Studio can '
                        "read, so it is left out; it may be damaged, or another format renamed: re-export or "
                        "download it again.")
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError, ... for damaged files
        detail = str(exc) or type(exc).__name__
        if "truncated" in detail or "ends early" in detail:
            return _corrupt(f'"{rel}" is cut off (its image data ends early), so it is left out; copy or download it '
                            "again from the original.")
        return _corrupt(f'"{rel}" is damaged and cannot be read ({detail}), so it is left out; re-export or download '
                        "it again.")
    return FileCheck(digest=hashlib.blake2b(data, digest_size=20).digest(), size=size)


def relative_name(path: str, root: str) -> str:
    """`path` as the user knows it inside their dataset folder, with forward slashes."""
    return os.path.relpath(path, root).replace(os.sep, "/")


def _corrupt(message: str) -> FileCheck:
    return FileCheck(problem="corrupt", message=message)


def displayed_size(data: bytes) -> tuple[int, int]:
    """Decode `data` cheaply but completely enough to find damage; the (width, height) it is shown at."""
    if heif.is_cut_off(data):
        raise OSError("the image data ends early")
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        limit = Image.MAX_IMAGE_PIXELS  # read, never set: the app owns that setting
        if limit is not None and width * height > limit:
            raise Image.DecompressionBombError(f"{width * height} pixels")
        is_jpeg = image.format in ("JPEG", "MPO")
        if image.format != "HEIF":  # libheif would find nothing more by decoding than heif.is_cut_off did
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
