"""A real web site on 127.0.0.1 for the tests of pictures downloaded from web addresses: pages, pictures, dead links."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebSite:
    """Serves what `add` put at each path, with its content type (none for ""); anything else answers 404. Use as
    a context manager; `url(path)` is the address a browser would hand over."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.holds: dict[str, threading.Event] = {}
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append(self.path)
                if self.path not in site.pages:
                    self.send_error(404, "Not Found")
                    return
                kind, body = site.pages[self.path]
                self.send_response(200)
                if kind:  # "": a site that names no type
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if hold := site.holds.get(self.path):  # a slow site: half now, the rest once the test says
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    hold.wait(timeout=30)
                    body = body[len(body) // 2:]
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="web-site", daemon=True)
        self._thread.start()

    def add(self, path: str, kind: str, body: bytes, hold: threading.Event | None = None) -> str:
        """Serve `body` at `path`; with `hold`, its second half only once `hold` is set."""
        self.pages[path] = (kind, body)
        if hold is not None:
            self.holds[path] = hold
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebSite:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
