"""Renders resources/icon.svg into the icon files each platform's packaging wants, next to it:
icon.png (Linux .desktop and window icon fallback), icon.ico (Windows executable), icon.icns (macOS bundle).

Run after changing icon.svg:  QT_QPA_PLATFORM=offscreen python scripts/make_icons.py
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QBuffer, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
ICO_SIZES = [16, 24, 32, 48, 64, 128, 256]
ICNS_SIZE = 1024  # Pillow derives the smaller icns sizes from it


def render(renderer: QSvgRenderer, size: int) -> Image.Image:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGBA")


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # QPainter needs one
    renderer = QSvgRenderer(str(RESOURCES / "icon.svg"))
    if not renderer.isValid():
        print("resources/icon.svg cannot be read", file=sys.stderr)
        return 1
    render(renderer, 256).save(RESOURCES / "icon.png", optimize=True)
    largest = render(renderer, 256)
    largest.save(RESOURCES / "icon.ico", sizes=[(s, s) for s in ICO_SIZES])
    render(renderer, ICNS_SIZE).save(RESOURCES / "icon.icns")
    del app
    for name in ("icon.png", "icon.ico", "icon.icns"):
        print(f"{name}: {(RESOURCES / name).stat().st_size / 1000:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
