"""A real HTTP receiver of webhooks for the tests: `http.server` in a thread on
127.0.0.1, which records every request (headers, body) and answers as the test says:
fail the first attempts of each message, or hang on the first one until released."""

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float
    # The sender's port: which process sent it (tests/cluster/test_workers.py).
    peer_port: int = 0

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def verify(self, secret: str) -> dict:
        """The body, once its Standard Webhooks signature is checked with `secret`
        (raises `WebhookVerificationError` otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """`url` receives webhooks. `fail_first`: the first N requests of each webhook-id are
    answered `fail_status` (only those of `fail_types`, if given); `hang_first`: the first request of each webhook-id waits
    (without answering) until `release()`, and `hanging` is set meanwhile; `status`:
    what every other request gets."""

    def __init__(
        self,
        *,
        fail_first: int = 0,
        fail_types: set[str] | None = None,
        fail_status: int = 500,
        status: int = 204,
    ):
        self.fail_first = fail_first
        self.fail_types = fail_types
        self.fail_status = fail_status
        self.status = status
        self.hang_first = False
        self.hanging = threading.Event()
        self.released = threading.Event()
        self.received: list[Received] = []
        self.seen = defaultdict(int)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver.lock:
                    received = Received(
                        self.path, headers, body, time.time(), self.client_address[1]
                    )
                    receiver.received.append(received)
                    receiver.seen[received.webhook_id] += 1
                    count = receiver.seen[received.webhook_id]
                if receiver.hang_first and count == 1:
                    receiver.hanging.set()
                    receiver.released.wait(60)
                    return  # no answer: the connection is closed
                failing = count <= receiver.fail_first and (
                    receiver.fail_types is None or received.json["type"] in receiver.fail_types
                )
                status = receiver.fail_status if failing else receiver.status
                payload = b'{"error": "on purpose"}' if status >= 300 else b""
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.url + "/moved")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        """Wait until `predicate(received)` holds; whether it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                snapshot = list(self.received)
            if predicate(snapshot):
                return True
            time.sleep(0.05)
        return False

    def types(self) -> list[str]:
        """The `type` of each request received, in order."""
        return [received.json["type"] for received in self.received]
