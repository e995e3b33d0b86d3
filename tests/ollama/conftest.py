"""Fixtures for the Ollama API tests: the official client and raw HTTP on the session daemon."""

from __future__ import annotations

import httpx
import ollama
import pytest


@pytest.fixture
def client(daemon) -> ollama.Client:
    with ollama.Client(host=daemon.url, timeout=300) as c:
        yield c


@pytest.fixture
def http(daemon) -> httpx.Client:
    with httpx.Client(base_url=daemon.url, timeout=300) as c:
        yield c
