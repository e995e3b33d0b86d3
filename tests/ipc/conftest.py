"""IPC test helpers: raw nng requests, for messages RemoteEngine would never send."""

from __future__ import annotations

import json

import pynng
import pytest


class RawClient:
    """One client connection sending hand-made messages (closing it is a disconnect)."""

    def __init__(self, address: str, timeout_ms: int = 30000):
        self.sock = pynng.Req0(dial=address, recv_timeout=timeout_ms, send_timeout=timeout_ms)

    def request(self, payload: bytes | dict) -> dict:
        if isinstance(payload, dict):
            payload = json.dumps(payload).encode()
        self.sock.send(payload)
        return json.loads(self.sock.recv())

    def close(self) -> None:
        self.sock.close()


def raw_request(address: str, payload: bytes | dict) -> dict:
    """Send one raw message on a fresh connection and return the decoded reply."""
    client = RawClient(address)
    try:
        return client.request(payload)
    finally:
        client.close()


@pytest.fixture
async def remote(daemon):
    """A RemoteEngine on the session daemon."""
    from mullama.ipc import RemoteEngine

    engine = RemoteEngine(daemon.socket)
    yield engine
    await engine.close()
