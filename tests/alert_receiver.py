"""A small webhook receiver for the alert tests: http.server in a thread on 127.0.0.1,
recording every JSON body it is sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.url = ""

    def wait_for(
        self, predicate: Callable[[list[Any]], bool], timeout: float = 120, what: str = ""
    ) -> None:
        deadline = time.time() + timeout
        while not predicate(self.bodies):
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; received {self.bodies}")
            time.sleep(0.3)


@contextmanager
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                got.bodies.append(json.loads(raw))
            except ValueError:
                got.bodies.append(raw.decode(errors="replace"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hook/s3cr3t-token"
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
