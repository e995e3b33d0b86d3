"""Prometheus collectors for one engine (its own registry, so tests can run several)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from .. import __version__
from .runner_state import draft_counts

if TYPE_CHECKING:
    from .api import Done
    from .manager import Loaded, ModelManager
    from .prompt_cache import PromptCache


class _Engine(Protocol):
    """What the scrape-time gauges read: the engine's loaded models."""

    @property
    def manager(self) -> ModelManager: ...


_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class EngineMetrics:
    def __init__(self, engine: _Engine) -> None:
        self.started = time.time()
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests_total = Counter(
            "mullama_requests", "Requests processed", ["model", "kind"], registry=r
        )
        self.requests_active = Gauge("mullama_requests_active", "Requests in progress", registry=r)
        self.tokens_generated = Counter(
            "mullama_tokens_generated", "Tokens generated", ["model"], registry=r
        )
        self.prompt_tokens = Counter(
            "mullama_prompt_tokens", "Prompt tokens evaluated or reused", ["model"], registry=r
        )
        self.cached_tokens = Counter(
            "mullama_prompt_cache_hit_tokens",
            "Prompt tokens reused from the KV cache",
            ["model"],
            registry=r,
        )
        self.errors = Counter(
            "mullama_request_errors", "Requests that failed", ["kind"], registry=r
        )
        self.ttft = Histogram(
            "mullama_time_to_first_token_seconds",
            "Time to the first token",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.token_latency = Histogram(
            "mullama_time_per_output_token_seconds",
            "Mean time per generated token of a request",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        r.register(_StateCollector(engine, self.started))

    def observe_done(self, model: str, kind: str, done: Done) -> None:
        self.requests_total.labels(model, kind).inc()
        self.tokens_generated.labels(model).inc(done.usage.completion_tokens)
        self.prompt_tokens.labels(model).inc(done.usage.prompt_tokens)
        self.cached_tokens.labels(model).inc(done.usage.cached_tokens)
        if done.usage.completion_tokens:
            self.ttft.labels(model).observe(done.timings.prompt_eval_ns / 1e9)
            self.token_latency.labels(model).observe(
                done.timings.eval_ns / 1e9 / done.usage.completion_tokens
            )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector:
    """Gauges read from the engine's state at scrape time."""

    def __init__(self, engine: _Engine, started: float) -> None:
        self.engine = engine
        self.started = started

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("mullama", "Version information")
        info.add_metric([], {"version": __version__})
        yield info
        yield GaugeMetricFamily(
            "mullama_uptime_seconds", "Daemon uptime", value=time.time() - self.started
        )
        loaded = list(self.engine.manager.loaded.values())
        yield GaugeMetricFamily("mullama_models_loaded", "Models loaded", value=len(loaded))
        families: dict[str, tuple[str, Callable[[Loaded], float]]] = {
            "mullama_model_parameters": ("Model parameter count", lambda e: e.model.n_params),
            "mullama_model_context_size": ("Context size per sequence", lambda e: e.runner.n_ctx),
            "mullama_model_gpu_layers": ("Layers offloaded to the GPU", lambda e: e.gpu_layers),
            "mullama_model_memory_bytes": (
                "Estimated memory of weights and KV cache",
                lambda e: e.estimate,
            ),
            "mullama_model_parallel_slots": (
                "Parallel sequences",
                lambda e: e.runner.config.n_parallel,
            ),
            "mullama_model_busy_slots": ("Sequences generating now", lambda e: e.runner.busy_slots),
            "mullama_model_queue_depth": ("Requests waiting for a slot", lambda e: e.runner.queued),
            "mullama_model_last_batch_tokens": (
                "Tokens in the latest decode batch",
                lambda e: e.runner.last_batch_size,
            ),
            "mullama_model_kv_cache_usage_ratio": (
                "Fraction (0-1) of the KV cache's cells the running requests hold",
                lambda e: kv_cache_usage(e.runner),
            ),
        }
        for name, (doc, read) in families.items():
            family = GaugeMetricFamily(name, doc, labels=["model"])
            for entry in loaded:
                family.add_metric([entry.name], read(entry))
            yield family
        yield from _drafting(loaded)
        if self.engine.manager.settings.metrics_aliases == "inference-extension":
            yield from _inference_extension(loaded)
        yield from _prompt_cache(getattr(self.engine.manager, "prompt_cache", None))


def _prompt_cache(cache: PromptCache | None) -> Iterator[Metric]:
    """The host-memory prompt cache of all models (zeros when it is off)."""
    read = (lambda name: getattr(cache, name)) if cache is not None else (lambda name: 0)
    for name, doc, attr in (
        (
            "mullama_prompt_cache_bytes",
            "Bytes of KV states in the host-memory prompt cache",
            "bytes",
        ),
        ("mullama_prompt_cache_limit_bytes", "Size limit of the host-memory prompt cache", "limit"),
        (
            "mullama_prompt_cache_entries",
            "Prompt states in the host-memory prompt cache",
            "entries",
        ),
    ):
        yield GaugeMetricFamily(name, doc, value=read(attr))
    for name, doc, attr in (
        ("mullama_prompt_cache_saves", "Slot states saved to the host-memory cache", "saves"),
        ("mullama_prompt_cache_hits", "Prompts that restored a state from the cache", "hits"),
        (
            "mullama_prompt_cache_restored_tokens",
            "Prompt tokens restored from the host-memory cache instead of evaluated",
            "restored_tokens",
        ),
        (
            "mullama_prompt_cache_evictions",
            "States evicted to keep the cache in its limit",
            "evictions",
        ),
    ):
        yield CounterMetricFamily(name, doc, value=read(attr))
    disk = cache.disk if cache is not None else None
    on_disk = (lambda name: getattr(disk, name)) if disk is not None else (lambda name: 0)
    yield GaugeMetricFamily(
        "mullama_prompt_cache_disk_bytes", "Bytes of prompt states on disk", value=on_disk("bytes")
    )
    yield GaugeMetricFamily(
        "mullama_prompt_cache_disk_entries", "Prompt states on disk", value=on_disk("entries")
    )
    yield CounterMetricFamily(
        "mullama_prompt_cache_disk_writes", "States written to disk", value=on_disk("writes")
    )
    yield CounterMetricFamily(
        "mullama_prompt_cache_disk_hits", "States read back from disk", value=on_disk("hits")
    )


def _drafting(loaded: list[Loaded]) -> Iterator[Metric]:
    """Speculative decoding's counts per loaded model (since it loaded), and their ratio."""
    drafted = CounterMetricFamily(
        "mullama_draft_tokens", "Speculative draft tokens verified", labels=["model"]
    )
    kept = CounterMetricFamily(
        "mullama_draft_accepted_tokens", "Speculative draft tokens kept", labels=["model"]
    )
    rate = GaugeMetricFamily(
        "mullama_draft_acceptance_ratio", "Draft tokens kept / verified (0-1)", labels=["model"]
    )
    for entry in loaded:
        n, k = draft_counts(entry.runner)
        drafted.add_metric([entry.name], n)
        kept.add_metric([entry.name], k)
        rate.add_metric([entry.name], k / n if n else 0.0)
    yield from (drafted, kept, rate)


def kv_cache_usage(runner: object) -> float:
    """A runner's KV cache usage, 0-1 (:attr:`Runner.kv_cache_usage`; a model in a child
    process reports its runner's). An embedding or reranking model keeps nothing between its
    batches: 0."""
    return float(getattr(runner, "kv_cache_usage", 0.0))


# vLLM's names, which the Gateway API Inference Extension's endpoint picker scrapes by default
# (its --total-queued-requests-metric, --total-running-requests-metric and
# --kv-cache-usage-percentage-metric); vLLM renamed gpu_cache_usage_perc to kv_cache_usage_perc,
# so both are given
_INFERENCE_EXTENSION: dict[str, tuple[str, Callable[[Loaded], float]]] = {
    "vllm:num_requests_running": (
        "Requests running (mullama_model_busy_slots)",
        lambda e: e.runner.busy_slots,
    ),
    "vllm:num_requests_waiting": (
        "Requests waiting (mullama_model_queue_depth)",
        lambda e: e.runner.queued,
    ),
    "vllm:kv_cache_usage_perc": (
        "KV cache usage, 0-1 (mullama_model_kv_cache_usage_ratio)",
        lambda e: kv_cache_usage(e.runner),
    ),
    "vllm:gpu_cache_usage_perc": (
        "KV cache usage, 0-1 (mullama_model_kv_cache_usage_ratio)",
        lambda e: kv_cache_usage(e.runner),
    ),
}


def _inference_extension(loaded: list[Loaded]) -> Iterator[Metric]:
    for name, (doc, read) in _INFERENCE_EXTENSION.items():
        family = GaugeMetricFamily(name, doc, labels=["model_name"])
        for entry in loaded:
            family.add_metric([entry.name], read(entry))
        yield family
