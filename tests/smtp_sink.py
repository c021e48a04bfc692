"""A real SMTP server on loopback for the live email tests (aiosmtpd), run as a process
of its own:

    python tests/smtp_sink.py PORT DIRECTORY [REFUSE]

Each message it accepts is written to DIRECTORY as `NNN.eml` (the bytes received, the
headers it adds first); the first REFUSE messages are refused with a temporary failure
(451), each leaving a `refused-N` file, as a mail server that is overloaded does. It
writes `ready` once it listens, and serves until it is terminated."""

import signal
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory: Path, refuse: int):
        self.directory = directory
        self.refuse = refuse
        self.refused = 0
        self.accepted = 0

    async def handle_DATA(self, server, session, envelope):
        if self.refused < self.refuse:
            self.refused += 1
            (self.directory / f"refused-{self.refused}").write_text(envelope.mail_from)
            return "451 4.3.0 Try again later"
        self.accepted += 1
        path = self.directory / f"{self.accepted:03d}.eml"
        partial = path.with_suffix(".partial")
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(path)  # whole files only, for the test that polls
        return "250 Message accepted for delivery"


def main() -> None:
    port, directory = int(sys.argv[1]), Path(sys.argv[2])
    refuse = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    controller = Controller(Sink(directory, refuse), hostname="127.0.0.1", port=port)
    controller.start()
    (directory / "ready").write_text(str(port))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
