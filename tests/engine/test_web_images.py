"""Pictures downloaded from web addresses, against a real local web site: the bytes, and every dead end in words."""
from __future__ import annotations

import pytest

from engine.decode import decode_image
from engine.errors import UserFacingError
from engine.errors import Cancelled
from engine.events import CancelToken, Progress
from engine.web_images import download_image, picture_name, web_image_urls
from tests.hub_server import SilentServer, refused_endpoint
from tests.web_site import WebSite


@pytest.fixture
def site():
    with WebSite() as running:
        yield running


def test_a_picture_is_downloaded_whole_with_its_progress(site, photo_files):
    jpeg = photo_files[0].read_bytes()
    url = site.add("/photos/chelsea%20the%20cat.jpg", "image/jpeg", jpeg)
    events = []
    data = download_image(url, on_event=events.append)
    assert data == jpeg
    assert decode_image(data).size == (451, 300)
    assert events[-1] == Progress("Downloading chelsea the cat.jpg", len(jpeg), len(jpeg), unit="bytes")
    assert picture_name(url) == "chelsea the cat.jpg"
    unnamed = site.add("/photo", "", jpeg)  # no Content-Type at all: still a picture
    assert download_image(unnamed) == jpeg


def test_a_page_a_dead_link_and_a_huge_file_are_said_in_words(site, photo_files):
    page = site.add("/gallery.html", "text/html; charset=utf-8", b"<html><img src='cat.jpg'></html>")
    with pytest.raises(UserFacingError, match="is a web page, not a picture") as raised:
        download_image(page)
    assert "copy the image address" in raised.value.hint

    with pytest.raises(UserFacingError, match="the site answered 404 Not Found"):
        download_image(site.url("/gone.jpg"))

    big = site.add("/poster.png", "image/png", photo_files[1].read_bytes())
    with pytest.raises(UserFacingError, match="too big for a picture"):
        download_image(big, max_bytes=1000)


def test_a_site_that_refuses_or_never_answers_is_said_without_hanging(tmp_path):
    with pytest.raises(UserFacingError, match="could not be downloaded") as raised:
        download_image(f"{refused_endpoint()}/cat.jpg")
    assert "internet connection" in raised.value.hint
    with SilentServer() as silent, pytest.raises(UserFacingError, match="could not be downloaded"):
        download_image(f"{silent.endpoint}/cat.jpg", timeout_s=0.5)


def test_a_cancelled_download_stops(site, photo_files):
    url = site.add("/rocket.jpg", "image/jpeg", photo_files[3].read_bytes())
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        download_image(url, cancel)


def test_only_text_made_of_web_addresses_is_taken_for_pictures_to_download():
    assert web_image_urls("https://example.org/a.jpg\n  http://example.org/b.png \n") == [
        "https://example.org/a.jpg", "http://example.org/b.png"]
    assert web_image_urls("look at https://example.org/a.jpg") == []
    assert web_image_urls("ftp://example.org/a.jpg") == []
    assert web_image_urls("https://") == []
    assert picture_name("https://example.org/") == "example.org"
