"""Pictures from the web on the Classify view: an image dragged out of a browser (its address, or its pixels) or its
address pasted, downloaded from a real local web site off the GUI thread and classified; dead ends in the banner."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from engine.decode import decode_image
from engine.explain import explain
from engine.models import load_model
from engine.predict import Classifier
from engine.specs import Bundle, ModelSpec
from gui.pictures_in_memory import png_bytes
from tests.gui.conftest import WAIT_MS
from tests.gui.test_classify_view import drag_and_drop
from tests.web_site import WebSite


@pytest.fixture
def view(window_with_tiny_model):
    return window_with_tiny_model.classify_view


@pytest.fixture
def site():
    with WebSite() as running:
        yield running


def browser_drag(*urls: str) -> QMimeData:
    """What a browser puts in the drag of an image: its address (and the page's text, here left out)."""
    mime = QMimeData()
    mime.setUrls([QUrl(url) for url in urls])
    return mime


def test_a_picture_dragged_out_of_a_browser_is_downloaded_and_classified(view, qtbot, site, photo_files,
                                                                        tiny_bundle):
    jpeg = photo_files[0].read_bytes()
    url = site.add("/photos/chelsea.jpg", "image/jpeg", jpeg)
    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        enter, drop = drag_and_drop(view.drop_zone, browser_drag(url))
        assert enter.isAccepted() and enter.highlighted and drop.isAccepted()
    result = view.model.result_at(0)
    assert result.path == "chelsea.jpg" and result.error is None
    model = Classifier(load_model(ModelSpec(source=Bundle(str(tiny_bundle)))))
    (expected,) = model.predict_images([decode_image(jpeg)], topk=len(result.top))
    assert result.top[0].label == expected[0].label and abs(result.top[0].prob - expected[0].prob) < 1e-4
    assert view.note.text() == ""  # "Downloading chelsea.jpg… 100 %" is gone once it is in

    # Where it looked reads the downloaded picture again from memory, not from the site.
    requests = len(site.requests)
    looked = view.single_looked
    explained = []
    view.bridge.worker.explained.connect(explained.append)
    looked.button.click()
    qtbot.waitUntil(lambda: not looked.looking, timeout=WAIT_MS)
    reference = explain(model, decode_image(jpeg), result.top[0].index)
    assert np.abs(explained[0].overlay.astype(int) - reference.overlay().astype(int)).max() <= 2
    assert len(site.requests) == requests


def test_an_image_address_pasted_is_downloaded_and_two_of_one_name_are_told_apart(view, qtbot, site, photo_files):
    first = site.add("/a/image.png", "image/png", photo_files[1].read_bytes())
    second = site.add("/b/image.png", "image/png", photo_files[2].read_bytes())
    QApplication.clipboard().setText(f"{first}\n{second}\n")  # "Copy image address", twice
    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        view.paste_from_clipboard()
    qtbot.waitUntil(lambda: view.model.rowCount() == 2 and not view.running, timeout=WAIT_MS)
    assert [result.path for result in view.model.results] == ["image.png", "image.png 2"]
    assert all(result.error is None for result in view.model.results)
    assert view.pasted.get("image.png 2") == photo_files[2].read_bytes()


def test_a_page_a_dead_link_and_a_file_that_is_no_picture_are_said(view, qtbot, site):
    page = site.add("/cats.html", "text/html", b"<html>cats</html>")
    drag_and_drop(view.drop_zone, browser_drag(page))
    qtbot.waitUntil(view.banner.isVisible, timeout=WAIT_MS)
    assert view.banner.message_label.text() == f"{page} is a web page, not a picture."
    assert view.model.rowCount() == 0

    view.banner.hide()
    drag_and_drop(view.drop_zone, browser_drag(site.url("/gone.jpg")))
    qtbot.waitUntil(view.banner.isVisible, timeout=WAIT_MS)
    assert "answered 404" in view.banner.message_label.text()

    data = site.add("/data.bin", "application/octet-stream", b"\x00" * 500)  # downloaded, but no picture
    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        drag_and_drop(view.drop_zone, browser_drag(data))
    assert view.model.result_at(0).path == "data.bin" and view.model.result_at(0).error


def test_a_picture_dragged_as_pixels_is_classified_without_a_download(view, qtbot, site, photo_files):
    mime = browser_drag(site.url("/never-fetched.jpg"))
    mime.setImageData(QImage(str(photo_files[3])))  # an image editor's drag, or a browser's with the pixels
    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        drag_and_drop(view.drop_zone, mime)
    assert view.model.result_at(0).path == "Dropped picture" and view.model.result_at(0).error is None
    assert site.requests == []


def test_a_slow_download_can_be_cancelled_and_what_it_read_is_let_go(view, qtbot, site, photo_files):
    big = QImage(str(photo_files[0])).scaled(1600, 1100)  # ~5 MB as uncompressed PNG: many chunks, half held back
    png = png_bytes(big)
    hold = threading.Event()
    slow = site.add("/slow/big.png", "image/png", png, hold=hold)
    drag_and_drop(view.drop_zone, browser_drag(slow))
    assert view.cancel_download_button.isVisible()  # at once, before the site has said a word
    qtbot.waitUntil(lambda: view.note.text().endswith("%"), timeout=WAIT_MS)
    assert view.note.text().startswith("Downloading big.png…")
    view.cancel_download_button.click()
    assert view.note.text() == "" and not view.cancel_download_button.isVisible()

    hold.set()  # the rest arrives: the cancelled download lets it go
    qtbot.waitUntil(lambda: not any(t.name == "web-pictures" for t in threading.enumerate()), timeout=WAIT_MS)
    qtbot.wait(100)  # anything its thread still sent has been delivered
    assert view.model.rowCount() == 0 and not view.banner.isVisible() and view.note.text() == ""

    hold.clear()  # Esc, the window's Cancel, stops a download too
    drag_and_drop(view.drop_zone, browser_drag(slow))
    qtbot.waitUntil(lambda: view.note.text().endswith("%"), timeout=WAIT_MS)
    qtbot.keyClick(view.window(), Qt.Key.Key_Escape)
    assert view.note.text() == "" and not view.cancel_download_button.isVisible()
    hold.set()
    qtbot.waitUntil(lambda: not any(t.name == "web-pictures" for t in threading.enumerate()), timeout=WAIT_MS)
    qtbot.wait(100)
    assert view.model.rowCount() == 0

    # A new drop of the same picture downloads and is classified.
    site.holds.clear()
    with qtbot.waitSignal(view.set_finished, timeout=WAIT_MS):
        drag_and_drop(view.drop_zone, browser_drag(slow))
    assert view.model.result_at(0).path == "big.png" and view.model.result_at(0).error is None
    assert not view.cancel_download_button.isVisible()
