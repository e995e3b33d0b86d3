"""/ui/ in a real browser (Debian's chromium via Playwright) against a real daemon."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import run_daemon, settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def replies(data_dir: Path) -> list[dict]:
    out = []
    for file in (data_dir / "conversations").glob("*.json"):
        try:
            out += [t for t in json.loads(file.read_text())["turns"] if t["role"] == "assistant"]
        except (ValueError, KeyError):
            continue  # being written
    return out


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
async def test_browser_chat_streams_a_reply(daemon, tmp_path):
    from playwright.async_api import async_playwright

    config = Path(daemon.env["MULLAMA_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "settings.toml").write_text('[tui]\nmax_tokens = 16\ndefault_model = "gemma"\n')
    data_dir = Path(daemon.env["MULLAMA_DATA_DIR"])
    before = len(replies(data_dir))
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(f"{daemon.url}/ui/")
            await page.wait_for_function(
                "document.body.classList.contains('-first-byte')", timeout=120_000
            )
            await page.wait_for_timeout(1500)
            # no click first: the page gives the terminal the focus itself
            await page.keyboard.press("F3")
            await page.wait_for_timeout(2500)
            await page.keyboard.type("Hello from the browser")
            await page.keyboard.press("Enter")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                done = [t for t in replies(data_dir)[before:] if t["stats"]]
                if done:
                    break
                await page.wait_for_timeout(250)
            await page.screenshot(path=str(tmp_path / "ui-chat.png"))
            assert done, f"no reply reached the conversation file (screenshot: {tmp_path})"
            assert done[0]["content"].strip() and "tok/s" in done[0]["stats"]
        finally:
            await browser.close()


def test_ui_page_and_assets_are_served(daemon):
    page = httpx.get(f"{daemon.url}/ui/")
    assert page.status_code == 200 and "textual.js" in page.text
    assert f"ws://127.0.0.1:{daemon.port}/ui/ws" in page.text
    script = httpx.get(f"{daemon.url}/ui/static/js/textual.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_ui_requires_the_api_key(tmp_path):
    env = settings_env(tmp_path)
    with run_daemon(tmp_path, "--api-key", "s3cret", env=env) as d:
        assert httpx.get(f"{d.url}/ui/").status_code == 401
        assert (
            httpx.get(f"{d.url}/ui/", headers={"Authorization": "Bearer nope"}).status_code == 401
        )
        ok = httpx.get(f"{d.url}/ui/", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and "textual.js" in ok.text


def test_ui_login_in_a_browser_sets_a_cookie(tmp_path):
    env = settings_env(tmp_path)
    with run_daemon(tmp_path, "--api-key", "s3cret", env=env) as d:
        login = httpx.get(f"{d.url}/ui/")
        assert login.status_code == 401 and "API key" in login.text and "<form" in login.text
        with httpx.Client(base_url=d.url) as client:
            assert client.post("/ui/login", data={"key": "wrong"}).status_code == 401
            response = client.post("/ui/login", data={"key": "s3cret"})
            assert response.status_code == 303
            token = client.cookies["mullama_ui_session"]  # a session token, never the key
            assert token and "s3cret" not in token and "s3cret" not in str(response.headers)
            assert client.get("/ui/").status_code == 200
