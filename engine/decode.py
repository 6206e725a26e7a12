"""Image decoding for the whole product: any file, bytes or PIL image in, upright 8-bit RGB out.

Every failure becomes an ImageDecodeError naming the file and the fix; nothing here mutates global state.
"""
from __future__ import annotations

import io
import os
import re
from typing import IO

import numpy as np
import pi_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from engine import heif
from engine.errors import UserFacingError
from engine.live.sources import VIDEO_EXTENSIONS

# Pillow registers its format plugins lazily on first use; doing it once at import means worker threads
# never race on that first registration. HEIC (iPhone photos) comes from libheif; its plugin turns the picture
# upright as it decodes and resets the EXIF orientation, so exif_transpose leaves it be.
Image.init()
pi_heif.register_heif_opener()

_COMMON_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".bmp", ".dib", ".gif", ".tif", ".tiff", ".webp",
    ".heic", ".heif", ".hif", ".avif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".pcx", ".qoi", ".jp2", ".j2k",
    ".mpo",
)
# Filtered against this Pillow build so a file picker never offers a format that then fails to open.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    ext for ext in _COMMON_EXTENSIONS if ext in Image.registered_extensions()
)

_FORMATS_HINT = "Use a JPEG, PNG, HEIC, BMP, GIF, TIFF or WebP image (or convert the file to one of them)."
_PREMULTIPLIED = {"RGBa": "RGBA", "La": "LA"}
_DEEP_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_WHITE = (255, 255, 255, 255)


class ImageDecodeError(UserFacingError):
    """An image could not be decoded; `message` names the file and what is wrong with it, `hint` the fix."""

    def __init__(self, message: str, hint: str = "", path: str | None = None) -> None:
        super().__init__(message, hint)
        self.path = path  # the file involved, or None for in-memory data


def decode_image(source: str | os.PathLike | bytes, min_size: int = 0) -> Image.Image:
    """Decode a file path (or raw encoded bytes, e.g. from the clipboard) into an RGB PIL image, upright by its EXIF
    orientation.

    GIF, TIFF and other multi-frame files give their first frame. Raises ImageDecodeError for anything that
    is not a readable image within Pillow's Image.MAX_IMAGE_PIXELS limit; never any other exception.
    `min_size` is the shortest side the caller will resize to: a JPEG at least four times larger is then decoded
    at 1/2, 1/4 or 1/8 scale (JPEG's own DCT scaling: a 12-megapixel photo decodes ~8x faster), never below
    twice `min_size`, so the caller's resize still averages over many pixels.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageDecodeError("The image data is empty.", "Copy the image again and retry.")
        return _decode_stream(io.BytesIO(source), "The image data", suffix="", path=None, min_size=min_size)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"decode_image takes a path or bytes, not {type(source).__name__}")

    path = os.fsdecode(source)
    label = f'"{path}"'
    suffix = os.path.splitext(path)[1].lower()
    # Checked before open(): Windows reports a folder as "permission denied", which would send users astray.
    if os.path.isdir(path):
        raise ImageDecodeError(f"{label} is a folder, not an image file.",
                               "Choose an image file inside the folder instead.", path)
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise ImageDecodeError(f"{label} does not exist.",
                               "Check the path; the file may have been moved, renamed or deleted.", path) from None
    except PermissionError:
        raise ImageDecodeError(f"{label} cannot be read: permission denied.",
                               "Give your user read access to the file (or copy it somewhere readable) "
                               "and try again.", path) from None
    except (OSError, ValueError) as exc:
        raise ImageDecodeError(f"{label} cannot be opened ({exc}).",
                               "Check that the path is valid and its drive is connected.", path) from None
    with file:
        try:
            empty = os.fstat(file.fileno()).st_size == 0
        except OSError:
            empty = False  # unknown size: let the decoder decide
        if empty:
            raise ImageDecodeError(f"{label} is empty (0 bytes).",
                                   "The file was probably cut off by an interrupted download or copy; "
                                   "copy it again from the original.", path)
        return _decode_stream(file, label, suffix, path, min_size)


def pil_to_rgb(image: Image.Image) -> Image.Image:
    """Convert any already-open PIL image (any mode) to RGB correctly; used by decode_image and for clipboard images.

    Transparent pixels are composited onto white. 16-bit and 32-bit integer greyscale (I;16*, I) is read as
    0..65535 and scaled to 0..255; float greyscale (F) is read as 0..1 when its largest finite value is
    <= 1, otherwise as 0..255, and clipped. Returns `image` itself when it is already opaque RGB.
    Raises ImageDecodeError when the image cannot be converted.
    """
    try:
        return _to_rgb(image)
    except ImageDecodeError:
        raise
    except Exception as exc:
        raise _translate(exc, "The image", suffix="", path=None) from exc


def _decode_stream(file: IO[bytes], label: str, suffix: str, path: str | None, min_size: int = 0) -> Image.Image:
    try:
        with Image.open(file) as opened:
            # Between 1x and 2x the limit Pillow only warns. Silencing that with catch_warnings would swap
            # process-wide state (not thread-safe before Python 3.14), so we refuse by size ourselves instead.
            _refuse_if_too_large(opened.size[0] * opened.size[1], label, path)
            if min_size and opened.format == "JPEG":
                opened.draft(None, (2 * min_size, 2 * min_size))  # both sides stay >= 2 * min_size
            opened.load()  # decoding is lazy; force it here so truncation and corruption surface inside the guard
            return _to_rgb(_upright(opened))
    except ImageDecodeError:
        raise
    except Exception as exc:
        if _is_cut_off_heif(file):
            raise _truncated(label, path) from exc
        raise _translate(exc, label, suffix, path) from exc


def _is_cut_off_heif(file: IO[bytes]) -> bool:
    """A HEIC cut off before its EXIF fails at open as "not an image": its boxes tell what happened."""
    try:
        file.seek(0)
        if not heif.is_heif(file.read(12)):
            return False
        file.seek(0)
        return heif.is_cut_off(file.read())
    except (OSError, ValueError, MemoryError):
        return False


def _upright(image: Image.Image) -> Image.Image:
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:
        # A damaged EXIF block should not cost the user an image whose pixels decoded fine; keep it as stored.
        return image.copy()
    assert upright is not None  # only None with in_place=True
    return upright


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _PREMULTIPLIED:
        # Premultiplied colour must be un-multiplied before compositing, or edges come out too dark.
        image = image.convert(_PREMULTIPLIED[image.mode])
    if image.mode in _DEEP_GREY or image.mode == "F":
        return _deep_grey_to_rgb(image)
    if image.has_transparency_data:
        return _onto_white(image.convert("RGBA"))
    if image.mode == "RGB":
        return image
    # Pillow handles the rest (1, L, P, CMYK incl. Adobe-inverted JPEG, YCbCr, LAB, HSV, RGBX) correctly.
    return image.convert("RGB")


def _deep_grey_to_rgb(image: Image.Image) -> Image.Image:
    # Pillow's own convert("L") clips these at 255 instead of scaling, turning most of a 16-bit image white.
    values = np.asarray(image)
    if image.mode == "F":
        finite = values[np.isfinite(values)]
        # Float data has no declared range: 0..1 is the convention of normalised data, 0..255 of everything else.
        scale = 255.0 if finite.size == 0 or float(finite.max()) <= 1.0 else 1.0
        grey = np.nan_to_num(np.clip(values * scale, 0.0, 255.0), nan=0.0)
        grey8 = np.rint(grey).astype(np.uint8)
    else:
        # Integer greyscale is 16-bit data in practice (PNG, TIFF, PGM); round to the nearest 8-bit level.
        wide = np.clip(values, 0, 65535).astype(np.uint32)
        grey8 = ((wide * 255 + 32767) // 65535).astype(np.uint8)
    grey_image = Image.fromarray(grey8)
    key = image.info.get("transparency")
    if isinstance(key, int) and image.mode != "F":
        # A PNG tRNS key marks one grey value as transparent.
        alpha = np.where(values == key, 0, 255).astype(np.uint8)
        return _onto_white(Image.merge("RGBA", (grey_image,) * 3 + (Image.fromarray(alpha),)))
    return grey_image.convert("RGB")


def _onto_white(rgba: Image.Image) -> Image.Image:
    # A transparent background almost always means "no background", and viewers show it as white; black
    # (what dropping alpha gives) would paint every logo and cut-out dark and skew predictions.
    background = Image.new("RGBA", rgba.size, _WHITE)
    return Image.alpha_composite(background, rgba).convert("RGB")


def _refuse_if_too_large(pixels: int, label: str, path: str | None) -> None:
    # Read at call time, never set: the app may raise or lower the limit (or set None to disable it).
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and pixels > limit:
        raise _too_large(pixels, label, path)


def _too_large(pixels: int | None, label: str, path: str | None) -> ImageDecodeError:
    limit = Image.MAX_IMAGE_PIXELS or 0
    size = f"is {pixels / 1e6:.1f} megapixels, over" if pixels is not None else "exceeds"
    return ImageDecodeError(
        f"{label} {size} the {limit / 1e6:.1f}-megapixel safety limit for decoding images.",
        "Downscale it in an image editor first; images this large can exhaust memory, and the limit "
        "also guards against decompression-bomb files.", path)


def _truncated(label: str, path: str | None) -> ImageDecodeError:
    return ImageDecodeError(f"{label} is truncated: the image data ends early.",
                            "The file was cut off, probably by an interrupted download or copy; "
                            "get a complete copy of it.", path)


def _translate(exc: Exception, label: str, suffix: str, path: str | None) -> ImageDecodeError:
    text = str(exc).strip()
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        # Pillow raises this at open for > 2x the limit (or for 1x-2x when warnings are errors); only its
        # message carries the size.
        match = re.search(r"\((\d+) pixels\)", text)
        return _too_large(int(match.group(1)) if match else None, label, path)
    if isinstance(exc, UnidentifiedImageError):
        if suffix in IMAGE_EXTENSIONS:
            return ImageDecodeError(
                f"{label} has an image extension but its contents are not a readable image.",
                "The file is damaged or is another format renamed; re-export or download it again.", path)
        if suffix in VIDEO_EXTENSIONS:
            return ImageDecodeError(f"{label} is a video, not a picture.",
                                    "Videos are classified as they play: drop it on the Live tab, or run "
                                    f"`python main.py live {path or label}`.", path)
        return ImageDecodeError(f"{label} is not in an image format Classifier Studio can read.",
                                _FORMATS_HINT, path)
    if isinstance(exc, MemoryError):
        return ImageDecodeError(f"There is not enough memory to decode {label}.",
                                "Close other programs or downscale the image, then try again.", path)
    # Pillow's decoders say "truncated"; libheif (HEIC) says "Unexpected end of file", as a ValueError.
    if isinstance(exc, (OSError, ValueError)) and ("truncated" in text.lower() or "end of file" in text.lower()):
        return _truncated(label, path)
    if isinstance(exc, OSError) and exc.errno is not None:
        return ImageDecodeError(f"{label} could not be read ({exc.strerror or text}).",
                                "Check that the drive holding the file is connected and readable.", path)
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return ImageDecodeError(f"{label} is damaged and could not be decoded ({detail}).",
                            "Re-export or download the image again.", path)
