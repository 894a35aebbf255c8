"""The live view: an MJPEG page on a local port (stdlib ``http.server`` in a thread).

``http://127.0.0.1:PORT/`` is a page with one ``<img>`` of ``/stream.mjpg`` (a
``multipart/x-mixed-replace`` stream of JPEGs, what browsers, VLC and ``ffplay`` show as video);
``/frame.jpg`` is the newest frame alone. Only the newest JPEG is kept, and frames are encoded
only while someone is watching, so an unwatched view costs nothing.

Example:
    >>> server = MjpegServer(port=8765).start()         # doctest: +SKIP
    >>> server.publish(jpeg_bytes)                       # doctest: +SKIP
    >>> server.url                                       # doctest: +SKIP
    'http://127.0.0.1:8765/'
    >>> server.close()                                   # doctest: +SKIP
"""

from __future__ import annotations

import html
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..errors import OutputError

BOUNDARY = "promptrackframe"
_SNAPSHOT_INTEREST = 5.0  # seconds a /frame.jpg request keeps frames coming without a stream client


class MjpegServer:
    """Serves the newest published JPEG as a page, a multipart stream and a snapshot."""

    def __init__(self, port: int, host: str = "127.0.0.1", title: str = "promptrack live") -> None:
        self.host, self.port, self.title = host, port, title
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._clients = 0
        self._snapshot_at = 0.0
        self._closed = False
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def wanted(self) -> bool:
        """Is anyone watching (a stream client, or a snapshot asked for a moment ago)?"""
        return self._clients > 0 or time.monotonic() - self._snapshot_at < _SNAPSHOT_INTEREST

    def start(self) -> "MjpegServer":
        try:
            self._httpd = ThreadingHTTPServer((self.host, self.port), _handler(self))
        except OSError as exc:
            raise OutputError(f"live view: cannot listen on {self.host}:{self.port} ({exc.strerror}): choose "
                              f"another port with --set live.view_port=N, or 0 to turn the view off") from None
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]  # the real one when port 0 was asked for
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="promptrack-view", daemon=True)
        self._thread.start()
        return self

    def publish(self, jpeg: bytes) -> None:
        with self._cond:
            self._jpeg, self._seq = jpeg, self._seq + 1
            self._cond.notify_all()

    def next_jpeg(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """The first JPEG newer than number `after` (waits up to `timeout` s); (after, None) if none."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or (self._seq > after and self._jpeg is not None), timeout)
            if self._closed or self._seq <= after:
                return after, None
            return self._seq, self._jpeg

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # -- bookkeeping for the handler -------------------------------------------------------
    def _watch(self, delta: int) -> None:
        with self._cond:
            self._clients += delta

    def _asked_snapshot(self) -> None:
        self._snapshot_at = time.monotonic()


def _handler(server: MjpegServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one response per connection: the stream ends when the client goes

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._page()
            elif path == "/stream.mjpg":
                self._stream()
            elif path == "/frame.jpg":
                self._snapshot()
            else:
                self.send_error(404, "not here: try / , /stream.mjpg or /frame.jpg")

        def _page(self) -> None:
            title = html.escape(server.title)
            body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
                    f"<body style='margin:0;background:#111;color:#ddd;font-family:sans-serif'>"
                    f"<div style='padding:4px 8px'>{title}</div>"
                    f"<img src='/stream.mjpg' alt='live view' style='max-width:100%;display:block'>"
                    f"</body></html>").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _snapshot(self) -> None:
            server._asked_snapshot()
            _, jpeg = server.next_jpeg(-1, timeout=3.0)
            if jpeg is None:
                self.send_error(503, "no frame yet: the stream has not produced one")
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(jpeg)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(jpeg)

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            server._watch(+1)
            seq = 0
            try:
                while not server._closed:
                    seq, jpeg = server.next_jpeg(seq, timeout=1.0)
                    if jpeg is None:
                        continue
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                     f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the viewer closed the page
            finally:
                server._watch(-1)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet: the stats line says enough
            pass

    return Handler
