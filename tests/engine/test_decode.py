"""engine.decode: every format, mode, orientation and broken-file case, on real files written here."""
from __future__ import annotations

import io
import os
import struct
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, features
from skimage import data

import engine.decode as decode_module
from engine.decode import IMAGE_EXTENSIONS, ImageDecodeError, decode_image, pil_to_rgb
from engine.errors import UserFacingError

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def _pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


def _save(tmp_path: Path, name: str, image: Image.Image, **kwargs) -> Path:
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def _png_claiming(width: int, height: int) -> bytes:
    """A structurally valid PNG whose header claims a huge size: Pillow sizes it without decoding anything."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 4))
            + chunk(b"IEND", b""))


def _assert_decode_error(source, names: str) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(source)
    error = caught.value
    assert isinstance(error, UserFacingError)
    assert names in error.message and error.hint
    return error


# --- formats ---------------------------------------------------------------------------------------------

def test_extensions_are_lowercase_suffixes_pillow_reads() -> None:
    common = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".jfif", ".ppm", ".pgm", ".heic"}
    assert common <= IMAGE_EXTENSIONS
    assert all(ext.startswith(".") and ext == ext.lower() for ext in IMAGE_EXTENSIONS)
    assert IMAGE_EXTENSIONS <= set(Image.registered_extensions())


FORMATS = [  # suffix, save kwargs, largest acceptable mean error against the source photo
    (".jpg", {"quality": 95}, 4.0), (".jpeg", {}, 6.0), (".jfif", {}, 6.0), (".png", {}, 0.0),
    (".bmp", {}, 0.0), (".gif", {}, 15.0), (".tif", {}, 0.0), (".tiff", {"compression": "tiff_lzw"}, 0.0),
    (".webp", {"lossless": True}, 0.0), (".webp", {"quality": 90}, 6.0), (".ppm", {}, 0.0), (".tga", {}, 0.0),
    pytest.param(".avif", {"quality": 90}, 8.0,
                 marks=pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")),
]


@pytest.mark.parametrize(("suffix", "kwargs", "tolerance"), FORMATS)
@pytest.mark.parametrize("photo", [data.chelsea, data.coffee])
def test_formats_decode_to_the_photo(tmp_path: Path, photo, suffix: str, kwargs: dict, tolerance: float) -> None:
    source = Image.fromarray(photo()).resize((160, 120))
    path = _save(tmp_path, f"photo{suffix}", source, **kwargs)
    decoded = decode_image(path)
    assert decoded.size == source.size
    assert np.abs(_pixels(decoded) - np.asarray(source).astype(int)).mean() <= tolerance


SELF_TEST_PHOTOS = Path(__file__).parents[2] / "resources" / "self-test"
TEST_PHOTOS = Path(__file__).parents[1] / "photos"  # HEIC files made with libheif's encoder: see its README


def test_heic_the_photos_iphones_take_decode_to_the_photo() -> None:
    assert {".heic", ".heif", ".hif"} <= IMAGE_EXTENSIONS
    heic, jpeg = decode_image(SELF_TEST_PHOTOS / "chelsea.heic"), decode_image(SELF_TEST_PHOTOS / "chelsea.jpg")
    assert heic.size == jpeg.size == (300, 200)
    assert np.abs(_pixels(heic) - _pixels(jpeg)).mean() <= 2.0  # the same photo, both compressed
    pasted = decode_image((SELF_TEST_PHOTOS / "chelsea.heic").read_bytes())  # downloaded or pasted
    assert np.array_equal(_pixels(pasted), _pixels(heic))


def test_a_heic_stored_on_its_side_is_shown_upright() -> None:
    # Stored 96 x 128 with HEIF's rotation (irot), as an iPhone held upright writes it.
    decoded = decode_image(TEST_PHOTOS / "portrait.heic")
    shown = Image.fromarray(data.astronaut()).resize((128, 128)).crop((0, 16, 128, 112))
    assert decoded.size == shown.size == (128, 96)
    assert np.abs(_pixels(decoded) - np.asarray(shown).astype(int)).mean() <= 6.0


def test_a_truncated_heic_says_so(tmp_path: Path) -> None:
    whole = (SELF_TEST_PHOTOS / "chelsea.heic").read_bytes()
    cut = tmp_path / "IMG_0001.HEIC"
    cut.write_bytes(whole[: len(whole) // 2])
    assert "truncated" in _assert_decode_error(cut, "IMG_0001.HEIC").message
    assert "truncated" in _assert_decode_error(whole[: len(whole) // 2], "The image data").message
    # Cut before its EXIF, libheif cannot even open it ("cannot identify image file"): still named truncated.
    with_exif = (TEST_PHOTOS / "portrait.heic").read_bytes()
    assert "truncated" in _assert_decode_error(with_exif[: len(with_exif) // 2], "The image data").message


def test_str_path_bytes_and_bytearray_agree(tmp_path: Path) -> None:
    path = _save(tmp_path, "astronaut.png", Image.fromarray(data.astronaut()))
    expected = _pixels(decode_image(path))
    assert np.array_equal(_pixels(decode_image(str(path))), expected)
    assert np.array_equal(_pixels(decode_image(path.read_bytes())), expected)
    assert np.array_equal(_pixels(decode_image(bytearray(path.read_bytes()))), expected)


def test_gif_gives_first_frame_of_animation(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in (RED, GREEN, BLUE)]
    path = _save(tmp_path, "anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as written:
        assert written.n_frames == 3
    assert (_pixels(decode_image(path)) == RED).all()


def test_tiff_gives_first_page(tmp_path: Path) -> None:
    pages = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (32, 8), GREEN)]
    path = _save(tmp_path, "pages.tif", pages[0], save_all=True, append_images=pages[1:])
    decoded = decode_image(path)
    assert decoded.size == (16, 16) and (_pixels(decoded) == RED).all()


# --- modes -----------------------------------------------------------------------------------------------

def _grey16(values: list[int]) -> Image.Image:
    return Image.fromarray(np.array([values], dtype=np.uint16))


@pytest.mark.parametrize(("name", "image", "save_kwargs", "expected"), [
    ("one.png", Image.fromarray(np.array([[True, False]])), {}, [WHITE, (0, 0, 0)]),
    ("grey.png", Image.new("L", (2, 1), 100), {}, [(100, 100, 100)] * 2),
    ("palette.png", Image.new("RGB", (2, 1), RED).convert("P"), {}, [RED] * 2),
    ("palette-key.png", Image.new("P", (2, 1), 0), {"transparency": 0}, [WHITE] * 2),
    ("palette-key.gif", Image.new("P", (2, 1), 3), {"transparency": 3}, [WHITE] * 2),
    ("grey-key.png", Image.new("L", (2, 1), 7), {"transparency": 7}, [WHITE] * 2),
    ("rgb-key.png", Image.new("RGB", (2, 1), (1, 2, 3)), {"transparency": (1, 2, 3)}, [WHITE] * 2),
    ("grey16.png", _grey16([0, 32768, 65535, 257]), {}, [(0,) * 3, (128,) * 3, (255,) * 3, (1,) * 3]),
    ("grey16-key.png", _grey16([0, 65535]), {"transparency": 0}, [WHITE, (255,) * 3]),
    ("grey16.pgm", _grey16([32768, 65535]), {}, [(128,) * 3, (255,) * 3]),  # Pillow opens as mode "I"
    ("cmyk.jpg", Image.new("CMYK", (16, 16), (255, 0, 0, 0)), {"quality": 100}, [(0, 255, 255)] * 256),
    ("cmyk.tif", Image.new("CMYK", (2, 1), (0, 255, 0, 0)), {}, [(255, 0, 255)] * 2),
])
def test_file_modes_decode_to_right_colours(tmp_path: Path, name: str, image: Image.Image, save_kwargs: dict,
                                           expected: list) -> None:
    decoded = decode_image(_save(tmp_path, name, image, **save_kwargs))
    assert np.abs(_pixels(decoded).reshape(-1, 3) - np.array(expected)).max() <= 2


def test_alpha_is_composited_onto_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (3, 1))
    rgba.putdata([(0, 0, 0, 0), (255, 0, 0, 255), (255, 0, 0, 128)])
    decoded = _pixels(decode_image(_save(tmp_path, "alpha.png", rgba)))
    assert np.abs(decoded[0] - [WHITE, RED, (255, 127, 127)]).max() <= 1
    grey = Image.new("LA", (2, 1))
    grey.putdata([(0, 0), (0, 255)])
    assert np.array_equal(_pixels(decode_image(_save(tmp_path, "la.png", grey)))[0], [WHITE, (0, 0, 0)])


def test_sixteen_bit_colour_png_keeps_colours(tmp_path: Path) -> None:
    path = tmp_path / "colour16.png"
    bgr = np.array([[[32768, 0, 65535], [0, 65535, 0]]], dtype=np.uint16)  # OpenCV writes BGR
    assert cv2.imwrite(str(path), bgr)
    assert np.abs(_pixels(decode_image(path))[0] - [(255, 0, 128), GREEN]).max() <= 1


@pytest.mark.parametrize(("values", "expected"), [([0.0, 0.5, 1.0], [0, 128, 255]),
                                                  ([0.0, 100.0, 300.0], [0, 100, 255]),
                                                  ([np.nan, -1.0, np.inf], [0, 0, 255])])
def test_float_tiff_follows_documented_range_rule(tmp_path: Path, values: list, expected: list) -> None:
    path = _save(tmp_path, "float.tif", Image.fromarray(np.array([values], dtype=np.float32)))
    with Image.open(path) as written:
        assert written.mode == "F"
    assert np.array_equal(_pixels(decode_image(path))[0, :, 0], expected)


def test_in_memory_modes_convert_correctly() -> None:
    half_red = Image.new("RGBA", (1, 1), (255, 0, 0, 128))
    assert np.abs(_pixels(pil_to_rgb(half_red.convert("RGBa")))[0, 0] - (255, 127, 127)).max() <= 2
    assert np.abs(_pixels(pil_to_rgb(Image.new("LA", (1, 1), (0, 128)).convert("La")))[0, 0] - 127).max() <= 2
    assert np.abs(_pixels(pil_to_rgb(Image.new("RGB", (1, 1), (10, 200, 30)).convert("YCbCr")))[0, 0]
                  - (10, 200, 30)).max() <= 3
    big_endian = Image.fromarray(np.array([[65535, 32768]], dtype=">u2"))
    assert big_endian.mode == "I;16B"
    assert np.array_equal(_pixels(pil_to_rgb(big_endian))[0, :, 0], [255, 128])
    assert np.array_equal(_pixels(pil_to_rgb(Image.new("I", (1, 1), 70000)))[0, 0], WHITE)
    palette_alpha = Image.new("RGBA", (1, 1), (0, 0, 255, 0)).convert("PA")
    assert np.array_equal(_pixels(pil_to_rgb(palette_alpha))[0, 0], WHITE)
    opaque = Image.new("RGB", (1, 1), RED)
    assert pil_to_rgb(opaque) is opaque


@pytest.mark.parametrize("mode", Image.MODES)
def test_every_pillow_mode_converts_to_rgb(mode: str) -> None:
    converted = pil_to_rgb(Image.new(mode, (3, 2)))
    assert converted.mode == "RGB" and converted.size == (3, 2)


# --- EXIF orientation ------------------------------------------------------------------------------------

# Where the stored top-left corner is shown for each Orientation value, and whether width and height swap.
ORIENTATIONS = {1: ("top-left", False), 2: ("top-right", False), 3: ("bottom-right", False),
                4: ("bottom-left", False), 5: ("top-left", True), 6: ("top-right", True),
                7: ("bottom-right", True), 8: ("bottom-left", True)}


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    stored = Image.new("RGB", (48, 32), BLUE)
    stored.paste(RED, (0, 0, 16, 16))  # 16-pixel blocks stay clean through JPEG's 16x16 chroma blocks
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = decode_image(_save(tmp_path, f"o{orientation}.jpg", stored, exif=exif, quality=95))
    corner, swapped = ORIENTATIONS[orientation]
    assert decoded.size == ((32, 48) if swapped else (48, 32))
    width, height = decoded.size
    corners = {"top-left": (8, 8), "top-right": (width - 8, 8),
               "bottom-left": (8, height - 8), "bottom-right": (width - 8, height - 8)}
    for name, xy in corners.items():
        expected = RED if name == corner else BLUE
        assert np.abs(np.array(decoded.getpixel(xy)) - expected).max() <= 12, name


def test_damaged_exif_still_decodes(tmp_path: Path) -> None:
    path = _save(tmp_path, "bad-exif.jpg", Image.new("RGB", (8, 8), RED), exif=b"Exif\x00\x00not-a-tiff-header")
    assert decode_image(path).size == (8, 8)


# --- broken input ----------------------------------------------------------------------------------------

def _half(tmp_path: Path, name: str, fmt: str) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(data.coffee()).save(buffer, fmt)
    path = tmp_path / name
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def test_missing_file(tmp_path: Path) -> None:
    assert "does not exist" in _assert_decode_error(tmp_path / "gone.jpg", "gone.jpg").message


def test_folder(tmp_path: Path) -> None:
    (tmp_path / "album.jpg").mkdir()
    assert "folder" in _assert_decode_error(tmp_path / "album.jpg", "album.jpg").message


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").touch()
    assert "empty" in _assert_decode_error(tmp_path / "empty.png", "empty.png").message


@pytest.mark.parametrize(("name", "content", "says"), [
    ("notes.txt", b"just some text\n", "not in an image format"),
    ("notes.jpg", b"just some text\n", "image extension"),
])
def test_non_image_files(tmp_path: Path, name: str, content: bytes, says: str) -> None:
    (tmp_path / name).write_bytes(content)
    assert says in _assert_decode_error(tmp_path / name, name).message


def test_zip_file(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as archive:
        archive.writestr("a.txt", "hello")
    _assert_decode_error(tmp_path / "photos.zip", "photos.zip")


@pytest.mark.parametrize(("name", "fmt"), [("cut.jpg", "JPEG"), ("cut.png", "PNG"), ("cut.gif", "GIF")])
def test_truncated_files_are_errors_not_grey(tmp_path: Path, name: str, fmt: str) -> None:
    assert "truncated" in _assert_decode_error(_half(tmp_path, name, fmt), name).message


@pytest.mark.parametrize(("name", "fmt"), [("cut.webp", "WEBP"), ("cut.tif", "TIFF")])
def test_other_truncated_formats_are_errors(tmp_path: Path, name: str, fmt: str) -> None:
    _assert_decode_error(_half(tmp_path, name, fmt), name)


def test_corrupt_png_data(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(data.chelsea()).save(buffer, "PNG")
    corrupt = bytearray(buffer.getvalue())
    corrupt[len(corrupt) // 2: len(corrupt) // 2 + 64] = b"\xff" * 64
    (tmp_path / "corrupt.png").write_bytes(bytes(corrupt))
    _assert_decode_error(tmp_path / "corrupt.png", "corrupt.png")


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(tmp_path, "private.png", Image.new("RGB", (4, 4)))
    path.chmod(0)
    if os.access(path, os.R_OK):  # root ignores permissions: simulate what open() would raise

        def denied(file, *args, **kwargs):
            raise PermissionError(13, "Permission denied", file)

        monkeypatch.setattr(decode_module, "open", denied, raising=False)
    try:
        assert "permission denied" in _assert_decode_error(path, "private.png").message
    finally:
        path.chmod(0o644)


def test_bad_bytes() -> None:
    _assert_decode_error(b"", "The image data")
    _assert_decode_error(b"definitely not an image", "The image data")


def test_not_a_path_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        decode_image(None)  # type: ignore[arg-type]


# --- decompression bombs ---------------------------------------------------------------------------------

def test_bomb_over_twice_the_limit_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(_png_claiming(20_000, 20_000))
    error = _assert_decode_error(tmp_path / "bomb.png", "bomb.png")
    assert "400.0 megapixels" in error.message and f"{Image.MAX_IMAGE_PIXELS / 1e6:.1f}" in error.message


def test_bomb_in_pillows_warning_band_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.png").write_bytes(_png_claiming(10_000, 10_000))
    with pytest.warns(Image.DecompressionBombWarning):  # Pillow's own warning; our check refuses it anyway
        error = _assert_decode_error(tmp_path / "big.png", "big.png")
    assert "100.0 megapixels" in error.message
    with warnings.catch_warnings():  # and when the app runs with warnings as errors
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert "100.0 megapixels" in _assert_decode_error(tmp_path / "big.png", "big.png").message


@pytest.mark.parametrize("limit", [100_000, 50_000])
def test_real_photo_over_a_lowered_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    path = _save(tmp_path, "cat.png", Image.fromarray(data.chelsea()))  # 451 x 300 = 135,300 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        assert "0.1 megapixels" in _assert_decode_error(path, "cat.png").message
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert decode_image(path).size == (451, 300)


# --- threads ---------------------------------------------------------------------------------------------

def test_concurrent_decodes_match_serial(tmp_path: Path) -> None:
    photo = Image.fromarray(data.astronaut()).resize((128, 128))
    paths = [_save(tmp_path, f"a{suffix}", photo) for suffix in (".jpg", ".png", ".webp", ".gif", ".tif")]
    paths.append(_save(tmp_path, "p.png", photo.convert("RGBA").convert("P")))
    paths.append(tmp_path / "missing.jpg")

    def attempt(path: Path) -> np.ndarray | str:
        try:
            return _pixels(decode_image(path))
        except ImageDecodeError as error:
            return error.message

    serial = [attempt(path) for path in paths]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, paths * 12))
    for index, result in enumerate(results):
        expected = serial[index % len(paths)]
        assert result == expected if isinstance(expected, str) else np.array_equal(result, expected)


def test_min_size_only_shrinks_large_jpegs_and_keeps_them_upright(tmp_path):
    pixels = np.zeros((1200, 1600, 3), np.uint8)
    pixels[:600] = (255, 0, 0)  # red top half: where "up" is
    turned = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: rotate 90° clockwise to view
    Image.fromarray(np.rot90(pixels, 1)).save(turned, quality=95, exif=exif)
    upright = decode_image(turned, min_size=256)
    assert upright.size == (800, 600)  # 1/2 scale, then turned upright
    top, bottom = np.asarray(upright)[10, 400], np.asarray(upright)[590, 400]
    assert top[0] > 200 and bottom[0] < 50

    png = tmp_path / "same.png"
    Image.fromarray(pixels).save(png)
    assert decode_image(png, min_size=256).size == (1600, 1200)  # only JPEG has cheap scaled decoding
    assert decode_image(turned, min_size=700).size == (1600, 1200)  # 1/2 scale would go below 2 x 700
