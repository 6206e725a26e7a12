"""Real local HTTP servers that play the Hugging Face Hub for download tests: resolve endpoint, LFS CDN, dead ends.

`FakeHub` answers what huggingface_hub 2.4 asks (file_download.py): HEAD/GET `/{repo_id}/resolve/{revision}/{file}`
redirecting like the Hub does for LFS files to a CDN origin that serves the bytes (with Range). No xet headers.
"""
from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import unquote

RESOLVE_PATH = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")
CDN_PATH = re.compile(r"^/cdn/(?P<sha256>[0-9a-f]{64})$")
RANGE = re.compile(r"^bytes=(?P<start>\d+)-(?P<end>\d*)$")


@dataclass(frozen=True)
class Request:
    server: str  # "hub" or "cdn"
    method: str
    path: str
    range: str | None


@dataclass(frozen=True)
class Throttle:
    """Send file bodies `chunk_bytes` at a time with `delay_s` between chunks: a slow connection."""

    chunk_bytes: int
    delay_s: float


class FakeHub:
    """A Hub on 127.0.0.1 with its LFS CDN on a second port (another origin, as cdn-lfs.hf.co is for the Hub).

    Use as a context manager; point HF_ENDPOINT at `endpoint`. A file that was not added answers 404
    EntryNotFound, an unknown repo 401 RepoNotFound: what the real Hub answers an anonymous client.
    """

    def __init__(self) -> None:
        self.throttle: Throttle | None = None
        self.fail_with: int | None = None  # an HTTP status every resolve request gets, e.g. 503 for an outage
        self.drop_once_after: int | None = None  # the CDN hangs up after this many body bytes, once: a flaky line
        self.requests: list[Request] = []
        self._files: dict[str, dict[str, bytes]] = {}  # repo id -> file name -> content
        self._blobs: dict[str, bytes] = {}  # sha256 -> content, what the CDN serves
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._hub = _serve(self, "hub")
        self._cdn = _serve(self, "cdn")

    @property
    def endpoint(self) -> str:
        return _origin(self._hub)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def add_file(self, repo_id: str, filename: str, content: bytes) -> None:
        sha256 = hashlib.sha256(content).hexdigest()
        with self._lock:
            self._files.setdefault(repo_id, {})[filename] = content
            self._blobs[sha256] = content

    def cdn_url(self, content: bytes) -> str:
        """Where the CDN serves `content` (added with add_file): a plain download URL."""
        return f"{_origin(self._cdn)}/cdn/{hashlib.sha256(content).hexdigest()}"

    def commit_of(self, repo_id: str) -> str:
        """The repo's one commit: a stable 40-hex id, like a git commit hash."""
        return hashlib.sha1(repo_id.encode()).hexdigest()

    def close(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()  # throttled senders stop between chunks
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # Called from the servers' handler threads.

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _resolve(self, handler: BaseHTTPRequestHandler) -> None:
        match = RESOLVE_PATH.match(handler.path.split("?", 1)[0])
        if self.fail_with is not None or match is None:
            return _send_empty(handler, self.fail_with or 404, {})
        repo_id, revision, filename = (unquote(match[name]) for name in ("repo", "revision", "filename"))
        with self._lock:
            files = self._files.get(repo_id)
            content = None if files is None else files.get(filename)
        if files is None:
            return _send_empty(
                handler, 401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}
            )
        commit = self.commit_of(repo_id)
        if revision not in ("main", commit):
            return _send_empty(handler, 404, {"X-Error-Code": "RevisionNotFound", "X-Repo-Commit": commit})
        if content is None:
            headers = {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found", "X-Repo-Commit": commit}
            return _send_empty(handler, 404, headers)
        sha256 = hashlib.sha256(content).hexdigest()
        # The Hub's answer for an LFS file: a redirect to the CDN carrying the file's commit, sha256 and size.
        _send_empty(
            handler,
            302,
            {
                "Location": self.cdn_url(content),
                "X-Repo-Commit": commit,
                "X-Linked-Etag": f'"{sha256}"',
                "X-Linked-Size": str(len(content)),
                "ETag": f'"{hashlib.sha1(content).hexdigest()}"',  # the git pointer's id; the linked one wins
            },
        )

    def _serve_blob(self, handler: BaseHTTPRequestHandler, send_body: bool) -> None:
        match = CDN_PATH.match(handler.path.split("?", 1)[0])
        with self._lock:
            content = None if match is None else self._blobs.get(match["sha256"])
        if content is None:
            return _send_empty(handler, 404, {})
        start, end, status = 0, len(content) - 1, 200
        asked = RANGE.match(handler.headers.get("Range", ""))
        if asked is not None:
            start, status = int(asked["start"]), 206
            end = min(int(asked["end"] or end), end)
            if start > end:
                return _send_empty(handler, 416, {"Content-Range": f"bytes */{len(content)}"})
        handler.send_response(status)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(end - start + 1))
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("ETag", f'"{match["sha256"]}"')
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{end}/{len(content)}")
        handler.send_header("Connection", "close")
        handler.end_headers()
        if send_body:
            body = content[start : end + 1]
            if self.drop_once_after is not None:  # hang up mid-body: the client gets a short read
                body, self.drop_once_after = body[: self.drop_once_after], None
            self._send_body(handler, body)

    def _send_body(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        throttle = self.throttle
        step = throttle.chunk_bytes if throttle else len(body) or 1
        try:
            for offset in range(0, len(body), step):
                if self._closing.is_set():
                    return
                handler.wfile.write(body[offset : offset + step])
                handler.wfile.flush()
                if throttle:
                    time.sleep(throttle.delay_s)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: a cancelled download


class SilentServer:
    """Accepts connections and never answers: a captive portal or a black-holing firewall."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._held: list[socket.socket] = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-hub", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._held.append(connection)

    def close(self) -> None:
        self._closing.set()
        self._thread.join()
        for connection in self._held:
            connection.close()
        self._listener.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def refused_endpoint() -> str:
    """An endpoint on a port nobody listens on (it was free a moment ago): connections are refused at once."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _serve(hub: FakeHub, name: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(hub, name))
    # A short poll interval makes shutdown() quick.
    threading.Thread(target=server.serve_forever, args=(0.05,), name=f"fake-{name}", daemon=True).start()
    return server


def _handler_class(hub: FakeHub, name: str) -> type[BaseHTTPRequestHandler]:
    route: Callable[[BaseHTTPRequestHandler, bool], None] = (
        (lambda handler, send_body: hub._resolve(handler))
        if name == "hub"
        else hub._serve_blob
    )

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_HEAD(self) -> None:
            hub._record(Request(name, "HEAD", self.path, self.headers.get("Range")))
            route(self, False)

        def do_GET(self) -> None:
            hub._record(Request(name, "GET", self.path, self.headers.get("Range")))
            route(self, True)

        def log_message(self, format: str, *args) -> None:
            pass  # keep test output clean

    return Handler


def _send_empty(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str]) -> None:
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", "0")
    handler.send_header("Connection", "close")
    handler.end_headers()


def _origin(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"
