"""Speculative decoding over HTTP on the real daemon: the request options in each dialect,
their checks, and the counts /metrics and ps report."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.slow

CODE = "\n".join(f"    value_{i} = compute(value_{i - 1}, {i})" for i in range(1, 12))
COPY = f"def run():\n{CODE}\n\n# the same function, copied:\ndef run():\n"


def draft_totals(url: str) -> tuple[float, float]:
    text = httpx.get(f"{url}/metrics").text

    def total(name: str) -> float:
        found = re.findall(rf'^{name}_total{{model="gemma:latest"}} (\S+)$', text, re.M)
        return float(found[0]) if found else 0.0

    return total("mullama_draft_tokens"), total("mullama_draft_accepted_tokens")


def complete(url: str, **fields) -> dict:
    body = {"model": "gemma", "prompt": COPY, "max_tokens": 40, "temperature": 0, **fields}
    r = httpx.post(f"{url}/v1/completions", json=body, timeout=300)
    assert r.status_code == 200, r.text
    return r.json()


def test_openai_fields_turn_drafting_on_and_off(api):
    complete(api.url, draft_max=0)  # loads the model
    before = draft_totals(api.url)
    complete(api.url, draft_max=0)
    assert draft_totals(api.url) == before
    forced = complete(api.url, draft_max=4, draft_min=4)
    drafted, kept = draft_totals(api.url)
    assert drafted > before[0] and kept >= before[1]
    # llama-server's names for the same
    complete(api.url, **{"speculative.n_max": 3, "speculative.n_min": 3})
    assert draft_totals(api.url)[0] > drafted
    assert forced["choices"][0]["text"]
    ratio = re.findall(
        r'^mullama_draft_acceptance_ratio{model="gemma:latest"} (\S+)$',
        httpx.get(f"{api.url}/metrics").text,
        re.M,
    )
    assert ratio and 0.0 <= float(ratio[0]) <= 1.0


def test_ollama_options_and_ps(api):
    before = draft_totals(api.url)
    r = httpx.post(
        f"{api.url}/api/generate",
        json={
            "model": "gemma",
            "prompt": COPY,
            "raw": True,
            "stream": False,
            "options": {"temperature": 0, "num_predict": 30, "draft_max": 5, "draft_min": 5},
        },
        timeout=300,
    )
    assert r.status_code == 200, r.text
    assert draft_totals(api.url)[0] > before[0]
    r = httpx.get(f"{api.url}/api/system/status")
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("fields", "named"),
    [({"draft_max": -1}, "draft_max"), ({"draft_min": 65}, "draft_min"), ({"draft_max": "8"}, "")],
)
def test_bad_draft_options_are_400s_naming_the_field(api, fields, named):
    r = httpx.post(
        f"{api.url}/v1/completions",
        json={"model": "gemma", "prompt": "hi", "max_tokens": 2, **fields},
        timeout=60,
    )
    assert r.status_code == 400, r.text
    assert "draft_m" in r.text and named in r.text


def test_ollama_bad_draft_option(api):
    r = httpx.post(
        f"{api.url}/api/generate",
        json={"model": "gemma", "prompt": "hi", "stream": False, "options": {"draft_max": 999}},
        timeout=60,
    )
    assert r.status_code == 400, r.text
    assert "draft_max" in r.json()["error"]
