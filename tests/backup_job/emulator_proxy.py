"""An HTTP proxy in front of the storage emulator, through which a test damages, holds back or loses the answers
the job gets. It listens on 127.0.0.1 and stops when the test's `with` block ends.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import urllib.parse
from collections.abc import Callable, Iterator

from tests.services import serving

Answer = tuple[int, dict[str, str], bytes]
"""An answer as the proxy passes it on: (status, headers, body)."""


@contextlib.contextmanager
def proxy(upstream: str, on_answer: Callable[[str, str, Answer], Answer | None]) -> Iterator[str]:
    """An HTTP proxy on 127.0.0.1 in front of the emulator at `upstream`; yields its base URL (for
    STORAGE_EMULATOR_HOST). Every request is forwarded whole; `on_answer(method, path, answer)` returns the
    answer to send back, or None to close the connection without one (an answer lost on the way). Links the
    emulator puts in its answers (upload sessions, media links) are rewritten to come back through the proxy."""
    target = urllib.parse.urlsplit(upstream)

    class Forward(http.server.BaseHTTPRequestHandler):
        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            return b"".join(parts)

        def _forward(self) -> None:
            body = self._body()
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("transfer-encoding", "content-length", "host", "connection")}
            connection = http.client.HTTPConnection(target.netloc, timeout=60)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            finally:
                connection.close()
            assert isinstance(self.server, http.server.HTTPServer)
            here = f"http://127.0.0.1:{self.server.server_port}"
            answer = on_answer(self.command, self.path, (
                response.status, {k: v.replace(upstream, here) for k, v in response.getheaders()},
                data.replace(upstream.encode(), here.encode())))
            if answer is None:
                self.close_connection = True
                return
            status, answer_headers, data = answer
            self.send_response(status)
            for key, value in answer_headers.items():
                if key.lower() not in ("transfer-encoding", "content-length", "connection", "date", "server"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):  # a client stopped meanwhile
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        def log_message(self, *args) -> None:
            pass

    with serving(Forward) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"
