"""Pictures from the web: an image dragged out of a browser (which hands over its address, not its bytes) or an
image address copied and pasted. Downloaded into memory, never onto disk, and then classified like a pasted
picture; a page, a huge file or a dead link is said in words.
"""
from __future__ import annotations

import posixpath
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit

from engine.errors import UserFacingError
from engine.events import CancelToken, EventSink, Progress, ignore_events

MAX_BYTES = 64 * 2**20  # a 100-megapixel JPEG is ~30 MB; anything larger is not a photo to try a model on
TIMEOUT_S = 20
CHUNK = 256 * 2**10
USER_AGENT = "ClassifierStudio (image download)"


def web_image_urls(text: str) -> list[str]:
    """The http(s) addresses written one per line in `text` (copied from a browser's address bar or its "Copy image
    address"); anything else in it makes it not a list of addresses, so [] ."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    urls = [line for line in lines if urlsplit(line).scheme in ("http", "https") and urlsplit(line).netloc]
    return urls if urls and len(urls) == len(lines) else []


def picture_name(url: str) -> str:
    """What to call a downloaded picture in the results: its file name in the address (`cat.jpg`), else the site."""
    parts = urlsplit(url)
    name = unquote(posixpath.basename(parts.path.rstrip("/")))
    return name or parts.netloc


def download_image(url: str, cancel: CancelToken | None = None, on_event: EventSink = ignore_events,
                   max_bytes: int = MAX_BYTES, timeout_s: float = TIMEOUT_S) -> bytes:
    """The bytes at `url`, read in chunks (each one a chance to cancel, each one a Progress); UserFacingError for a
    link that leads to no picture. Whether the bytes are an image is for decode_image to say, as for a file."""
    cancel = cancel or CancelToken()
    name = picture_name(url)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            # A page: the link of a search result or a gallery, not its picture. Without the header the type reads
            # text/plain, and a site that names none may still send a picture.
            named = response.headers.get("Content-Type") is not None
            if named and response.headers.get_content_type().startswith("text/"):
                raise UserFacingError(f"{url} is a web page, not a picture.",
                                      "Drag the picture itself, or right-click it and copy the image address.")
            size = int(response.headers.get("Content-Length") or 0)
            if size > max_bytes:
                raise _too_big(url, size, max_bytes)
            data = bytearray()
            while chunk := response.read1(CHUNK):  # what has come, up to CHUNK: progress and Cancel keep pace
                cancel.check()
                data += chunk
                if len(data) > max_bytes:
                    raise _too_big(url, len(data), max_bytes)
                on_event(Progress(f"Downloading {name}", len(data), size, unit="bytes"))
            return bytes(data)
    except urllib.error.HTTPError as exc:
        raise UserFacingError(f"{url} could not be downloaded: the site answered {exc.code} {exc.reason}.",
                              "Open it in a browser to check it is still there; save it and drop the file "
                              "if the site needs you to sign in.") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:  # socket.timeout is TimeoutError
        reason = getattr(exc, "reason", exc)
        raise UserFacingError(f"{url} could not be downloaded ({reason}).",
                              "Check the internet connection, or save the picture and drop the file.") from None


def _too_big(url: str, size: int, max_bytes: int) -> UserFacingError:
    return UserFacingError(f"{url} is over {max_bytes // 2**20} MB ({size / 2**20:.0f} MB so far), too big for a "
                           "picture.", "Save it, and drop the file if it really is one.")
