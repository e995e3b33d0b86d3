"""`mullama serve` on a terminal: the Dashboard shows the daemon's log lines as they happen.

A real ``mullama serve --verbose`` runs on a pseudo-terminal of 80x24 or 120x40; what it draws is
read back, so a request to the real daemon must appear in the log pane on the screen.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
import time

import httpx
import pytest

from tests.conftest import gemma_modelfile
from tests.helpers import settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ESCAPES = re.compile(
    r"\x1b(\[[0-9;?<>=$]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|.)"
)


class Terminal:
    """A process on a pseudo-terminal of ``size``; everything it draws is kept, escapes out."""

    def __init__(self, argv: list[str], env: dict[str, str], size: tuple[int, int]):
        self.master, slave = pty.openpty()
        columns, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.proc = subprocess.Popen(
            argv, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True
        )
        os.close(slave)
        self.raw = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:  # drained all along, or the app would block on a full pty
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.raw += data

    @property
    def text(self) -> str:
        return ESCAPES.sub("", self.raw.decode(errors="replace"))

    def wait_for(self, words: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while words not in self.text:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{words!r} never drawn; the screen had:\n{self.text[-4000:]}")
            time.sleep(0.1)

    def press(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> int | None:
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            os.close(self.master)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_serve_on_a_terminal_shows_its_log_live(tmp_path, test_model_path, size):
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore

    env = settings_env(tmp_path)
    settings = load_settings(env=env)
    ModelStore(settings).create("gemma", gemma_modelfile(test_model_path), None)
    url = settings.http_endpoint
    term = Terminal(
        [sys.executable, "-m", "mullama", "serve", "--verbose"],
        {**os.environ, **env, "TERM": "xterm-256color"},
        size,
    )
    try:
        term.wait_for("Daemon log")  # the pane is there from the first frame
        term.wait_for("serving HTTP on")  # logged once the daemon is up, after the mount
        with httpx.Client(timeout=120) as http:
            assert http.get(f"{url}/api/tags?from=the-terminal").status_code == 200
            term.wait_for("mullama.access: GET /api/tags?from=the-terminal")
            assert http.post(f"{url}/api/generate", json={"model": "gemma"}).status_code == 200
            term.wait_for("loaded gemma")  # a line from the engine, logged in a worker thread
        assert "Unloads" in term.text and "L Log" in term.text  # the table's last column, the key
        term.press(b"\x11")  # ctrl+q: quit, which stops the daemon
        assert term.close() == 0
        assert not settings.pid_file.exists()
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
