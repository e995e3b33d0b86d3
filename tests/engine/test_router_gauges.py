"""The per-model gauges a router scrapes (requests running and waiting, KV cache usage), on the
real model, and their vLLM-named aliases for the Gateway API Inference Extension.

The runner is held still between two decode steps (a call it runs on its own thread waits on
an event), so what the gauges read is the one state asserted, not a moment raced for."""

from __future__ import annotations

import asyncio
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mullama.config import load_settings
from mullama.engine.api import CompletionRequest, SamplingOptions, TextDelta
from mullama.engine.local import LocalEngine

pytestmark = pytest.mark.slow

CONTEXT = 512


async def make_engine(root, test_model_path, **settings) -> LocalEngine:
    engine = LocalEngine(
        load_settings(
            env={},
            cache_dir=root / "c",
            config_dir=root / "g",
            data_dir=root / "d",
            num_parallel=1,
            context_size=CONTEXT,
            **settings,
        )
    )
    await engine.load_model(str(test_model_path))
    return engine


async def gauges(engine: LocalEngine) -> dict[str, dict[str, float]]:
    """{metric name: {model label: value}} of the gauges with a model label."""
    text = (await engine.metrics_snapshot())["exposition"]
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = sample.labels.get("model", sample.labels.get("model_name"))
            if label is not None and family.type == "gauge":
                found.setdefault(sample.name, {})[label] = sample.value
    return found


def request(path: str, max_tokens: int) -> CompletionRequest:
    return CompletionRequest(
        path, "Count: 1, 2, 3,", SamplingOptions(temperature=0, max_tokens=max_tokens)
    )


async def first_text(stream) -> None:
    async for event in stream:
        if isinstance(event, TextDelta):
            return


async def drain(stream) -> None:
    async for _ in stream:
        pass


@pytest.mark.parametrize("aliases", ["", "inference-extension"])
async def test_running_waiting_and_kv_usage(tmp_path, test_model_path, aliases):
    engine = await make_engine(tmp_path, test_model_path, metrics_aliases=aliases)
    name = str(test_model_path)
    try:
        runner = engine.manager.loaded[name].runner
        idle = await gauges(engine)
        assert idle["mullama_model_busy_slots"][name] == 0
        assert idle["mullama_model_queue_depth"][name] == 0
        assert idle["mullama_model_kv_cache_usage_ratio"][name] == 0

        first = engine.complete(request(name, 400))
        await first_text(first)  # it is generating
        hold = threading.Event()
        held = runner.call(hold.wait)  # the runner stops between two steps
        second = engine.complete(request(name, 3))
        waiting = asyncio.ensure_future(first_text(second))
        for _ in range(200):  # until the second request is in the runner's queue
            if runner.queued:
                break
            await asyncio.sleep(0.01)
        try:
            state = await gauges(engine)
            job = runner.slots[0].job
            assert job is not None
            assert state["mullama_model_busy_slots"][name] == 1
            assert state["mullama_model_queue_depth"][name] == 1
            # the cells the running request holds: its prompt and the tokens generated so far
            usage = (len(job.prompt) + job.generated) / CONTEXT
            assert 0 < usage < 1
            assert state["mullama_model_kv_cache_usage_ratio"][name] == pytest.approx(usage)
            aliased = {
                "vllm:num_requests_running": 1,
                "vllm:num_requests_waiting": 1,
                "vllm:kv_cache_usage_perc": pytest.approx(usage),
                "vllm:gpu_cache_usage_perc": pytest.approx(usage),
            }
            for alias, value in aliased.items():
                if aliases:
                    assert state[alias] == {name: value}, alias
                else:
                    assert alias not in state
        finally:
            hold.set()
        await asyncio.wrap_future(held)
        await first.aclose()  # cancels the long one
        await waiting
        await drain(second)
        for _ in range(200):
            if not runner.busy_slots:
                break
            await asyncio.sleep(0.01)
        after = await gauges(engine)
        assert after["mullama_model_busy_slots"][name] == 0
        assert after["mullama_model_queue_depth"][name] == 0
        # an idle slot's cached prefix is no usage: the next request overwrites it
        assert runner.slots[0].tokens
        assert after["mullama_model_kv_cache_usage_ratio"][name] == 0
    finally:
        await engine.close()


async def test_an_embedding_model_has_gauges_and_no_kv_usage(tmp_path):
    from tests.gguf_fixtures import build_bert

    path = str(build_bert(tmp_path / "bert.gguf"))
    engine = LocalEngine(
        load_settings(
            env={},
            cache_dir=tmp_path / "c",
            config_dir=tmp_path / "g",
            data_dir=tmp_path / "d",
            metrics_aliases="inference-extension",
        )
    )
    try:
        await engine.load_model(path)
        state = await gauges(engine)
        assert state["mullama_model_kv_cache_usage_ratio"][path] == 0
        assert state["vllm:num_requests_waiting"][path] == 0
    finally:
        await engine.close()
