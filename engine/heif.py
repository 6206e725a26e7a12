"""What Classifier Studio reads of a HEIF container (iPhone HEIC photos, AVIF) without decoding it.

libheif decodes damaged image data to garbage without a word, and an image whose data is cut off fails only when it is
decoded, or at open with a generic "cannot identify" when its EXIF lies past the cut. Reading the boxes finds a cut-off
file in microseconds, and lets the folder scan skip decoding (0.5 s of a core for a 12-megapixel photo).
"""
from __future__ import annotations

# Major brands of HEIF still images and sequences (ISO/IEC 23008-12) and AVIF; not those of MP4 or QuickTime videos.
_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"})


def is_heif(head: bytes) -> bool:
    """Whether a file starting with `head` (its first 12 bytes are enough) is a HEIF or AVIF image."""
    return head[4:8] == b"ftyp" and head[8:12] in _BRANDS


def is_cut_off(data: bytes) -> bool:
    """Whether `data` is a HEIF or AVIF image that ends before its boxes, or the image data they locate, do."""
    return is_heif(data) and not _is_complete(data)


def _is_complete(data: bytes) -> bool:
    """Whether the container's boxes, and every stretch of the file its item locations (iloc) name, lie within it."""
    top = _boxes(data, 0, len(data))
    if top is None:
        return False
    if b"meta" not in top:
        return True
    meta_start, meta_end = top[b"meta"]
    children = _boxes(data, meta_start + 4, meta_end)  # meta is a full box: version and flags come first
    if children is None:
        return False
    return b"iloc" not in children or _item_locations_fit(data, *children[b"iloc"])


def _boxes(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]] | None:
    """The first box of each type between `start` and `end`, as (content start, box end); None if one runs past."""
    found: dict[bytes, tuple[int, int]] = {}
    position = start
    while position + 8 <= end:
        size, header = int.from_bytes(data[position:position + 4], "big"), 8
        if size == 1:  # a 64-bit size follows the type
            size, header = int.from_bytes(data[position + 8:position + 16], "big"), 16
        elif size == 0:  # the box runs to the end of its parent
            size = end - position
        if size < header or position + size > end:
            return None
        found.setdefault(data[position + 4:position + 8], (position + header, position + size))
        position += size
    return found


def _item_locations_fit(data: bytes, start: int, end: int) -> bool:
    """Whether every extent an iloc box (ISO/IEC 14496-12, versions 0-2) places in this file ends within it."""
    version, position = data[start], start + 4

    def read(size: int) -> int:
        nonlocal position
        position += size
        return int.from_bytes(data[position - size:position], "big")

    offset_size, length_size = divmod(read(1), 16)
    base_offset_size, index_size = divmod(read(1), 16)
    if version == 0:
        index_size = 0  # reserved bits
    id_size = 4 if version == 2 else 2
    for _ in range(read(id_size)):
        read(id_size)
        construction = read(2) & 0xF if version else 0  # 0: offsets in this file; 1, 2: inside meta or another item
        data_reference = read(2)
        base_offset = read(base_offset_size)
        for _ in range(read(2)):
            read(index_size)
            offset, length = read(offset_size), read(length_size)
            if construction == 0 and data_reference == 0 and base_offset + offset + length > len(data):
                return False
        if position > end:
            return False  # the box itself is cut short
    return True
