"""`mullama serve --verbose`: one access-log line a request, with what happened."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from mullama.http.access import chunked_body_bytes, count_sent
from tests.conftest import gemma_modelfile
from tests.helpers import run_daemon, settings_env

LINE = re.compile(
    r"mullama\.access: (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) (?P<bytes>\d+)B "
    r"(?P<ms>\d+\.\d)ms 127\.0\.0\.1:(?P<port>\d+)$"
)


def access_lines(daemon, path: str, wait: float = 10) -> list[re.Match]:
    deadline = time.monotonic() + wait
    while True:
        found = [m for line in daemon.log().splitlines() if (m := LINE.search(line))]
        found = [m for m in found if m["path"] == path]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_chunked_bytes_are_the_payload_not_the_framing():
    assert chunked_body_bytes(b"5\r\nhello\r\n") == 5
    assert chunked_body_bytes(b"3\r\nabc\r\n10\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n") == 19
    ctx = type("Ctx", (), {"access_sent": None})()
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    count_sent(ctx, head + b"2\r\nhi\r\n")
    count_sent(ctx, b"4\r\nyou!\r\n")
    count_sent(ctx, b"0\r\n\r\n")
    assert ctx.access_sent == 6


@pytest.mark.slow
@pytest.mark.e2e
def test_verbose_access_lines_show_method_path_status_bytes_duration_client(
    tmp_path, test_model_path
):
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore

    env = settings_env(tmp_path)
    ModelStore(load_settings(env=env)).create("gemma", gemma_modelfile(test_model_path), None)
    with run_daemon(tmp_path, "--verbose", env=env) as daemon, httpx.Client() as http:
        tags = http.get(f"{daemon.url}/api/tags?x=1")
        (line,) = access_lines(daemon, "/api/tags?x=1")
        assert (line["method"], line["status"]) == ("GET", "200")
        assert int(line["bytes"]) == len(tags.content)
        assert 0 <= float(line["ms"]) < 10_000
        client_port = tags.extensions["network_stream"].get_extra_info("client_addr")[1]
        assert int(line["port"]) == client_port

        missing = http.post(f"{daemon.url}/api/show", json={"model": "nope"})
        (line,) = access_lines(daemon, "/api/show")
        assert (line["method"], line["status"]) == ("POST", "404")
        assert int(line["bytes"]) == len(missing.content)

        body = {"model": "gemma", "prompt": "Hi", "options": {"num_predict": 8}}
        with http.stream("POST", f"{daemon.url}/api/generate", json=body, timeout=120) as r:
            streamed = r.read()
        (line,) = access_lines(daemon, "/api/generate")
        assert line["status"] == "200" and int(line["bytes"]) == len(streamed)
        assert float(line["ms"]) > 0
