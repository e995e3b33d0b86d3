"""A deterministic Engine for SVG snapshots only (fixed models, counters and replies).

Every behaviour it stands in for is tested end to end against the real engine and a real
daemon beside the snapshot tests; this exists so pictures do not change from run to run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from mullama.engine.api import (
    AliasInfo,
    ChatRequest,
    Done,
    EmbedResult,
    Engine,
    EngineStatus,
    HubModel,
    Liveness,
    LoadedModel,
    ModelDetails,
    ModelInfo,
    PruneResult,
    PullProgress,
    QuantFile,
    RerankResult,
    TextDelta,
    ThinkingDelta,
    Timings,
    Usage,
)

MODELS = [
    ModelInfo(
        "gemma3:270m",
        253_000_000,
        "sha256:8a6f0c2e",
        "2026-11-20T09:14:00Z",
        "pulled",
        "gemma3",
        ["gemma3"],
        "270M",
        "Q4_K_M",
        source="hf:unsloth/gemma-3-270m-it-GGUF",
    ),
    ModelInfo(
        "llama3.2:1b",
        807_000_000,
        "sha256:1f3e55aa",
        "2026-11-18T17:02:00Z",
        "pulled",
        "llama",
        ["llama"],
        "1.2B",
        "Q4_K_M",
        source="hf:bartowski/Llama-3.2-1B-Instruct-GGUF",
    ),
    ModelInfo(
        "pirate",
        807_000_000,
        "sha256:77c1d0e9",
        "2026-11-21T08:30:00Z",
        "created",
        "llama",
        ["llama"],
        "1.2B",
        "Q4_K_M",
        source="llama3.2:1b",
    ),
]

LOADED = [
    LoadedModel(
        "gemma3:270m",
        471_000_000,
        2048,
        num_parallel=4,
        busy_slots=1,
        requests_total=12,
        tokens_generated=1834,
        expires_at="",
    )
]

ALIASES = [
    AliasInfo(
        "gemma3:270m",
        "unsloth/gemma-3-270m-it-GGUF",
        "Google Gemma 3 270M (Q4_K_M): the tiny model Mullama's tests use",
        "gemma3",
        ["chat", "small"],
        "Q4_K_M",
        size=253_000_000,
    ),
    AliasInfo(
        "llama3.2:1b",
        "meta-llama/Llama-3.2-1B-Instruct-GGUF",
        "Meta Llama 3.2 1B Instruct: small, fast multilingual chat",
        "llama",
        ["chat", "tools", "small"],
        "Q4_K_M",
        size=808_000_000,
    ),
    AliasInfo(
        "qwen2.5:7b-instruct",
        "Qwen/Qwen2.5-7B-Instruct-GGUF",
        "Qwen2.5 7B Instruct: strong general chat, tools and JSON",
        "qwen2",
        ["chat", "tools"],
        "Q4_K_M",
    ),
    AliasInfo(
        "nomic-embed-text:v1.5",
        "nomic-ai/nomic-embed-text-v1.5-GGUF",
        "Nomic Embed Text v1.5: 768-dimension text embeddings, 8K context",
        "nomic-bert",
        ["embedding"],
        "F16",
        size=274_000_000,
    ),
]

HUB_MODELS = [
    HubModel("bartowski/Qwen2.5-7B-Instruct-GGUF", 912_000, 310, "2024-09-19T00:00:00+00:00",
             "text-generation"),
    HubModel("Qwen/Qwen2.5-7B-Instruct-GGUF", 405_000, 150, "2024-09-17T00:00:00+00:00",
             "text-generation"),
    HubModel("unsloth/Qwen2.5-7B-Instruct-GGUF", 38_200, 12, "2024-09-23T00:00:00+00:00",
             "text-generation"),
]  # fmt: skip

QUANTS = [
    QuantFile("Q2_K", "hf:bartowski/Qwen2.5-7B-Instruct-GGUF:Q2_K",
              ["Qwen2.5-7B-Instruct-Q2_K.gguf"], 3_020_000_000),
    QuantFile("Q4_K_M", "hf:bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M",
              ["Qwen2.5-7B-Instruct-Q4_K_M.gguf"], 4_680_000_000, preferred=True),
    QuantFile("Q8_0", "hf:bartowski/Qwen2.5-7B-Instruct-GGUF:Q8_0",
              ["Qwen2.5-7B-Instruct-Q8_0.gguf"], 8_100_000_000),
    QuantFile("F16", "hf:bartowski/Qwen2.5-7B-Instruct-GGUF:F16",
              ["Qwen2.5-7B-Instruct-f16-00001-of-00002.gguf",
               "Qwen2.5-7B-Instruct-f16-00002-of-00002.gguf"], 15_240_000_000),
]  # fmt: skip

REPLY = (
    "The sky looks blue because air molecules scatter **short** wavelengths of sunlight "
    "more than long ones:\n\n- blue light is scattered in every direction\n"
    "- so blue reaches your eyes from all over the sky\n\n```python\nprint('Rayleigh')\n```\n"
)


class FakeEngine(Engine):
    def __init__(self, thinking: str = "") -> None:
        self.models = list(MODELS)
        self.thinking = thinking

    async def list_models(self) -> list[ModelInfo]:
        return list(self.models)

    async def show_model(self, name: str) -> ModelDetails:
        info = next(m for m in self.models if m.name == name)
        return ModelDetails(
            info,
            modelfile=f"FROM {info.source}\nPARAMETER temperature 0.7\n",
            parameters={"temperature": 0.7, "stop": ["<end_of_turn>"]},
            metadata={"general.architecture": info.family, "general.file_type": 15},
        )

    async def pull_model(self, ref: str) -> AsyncIterator[PullProgress]:
        yield PullProgress(
            "downloading",
            "model.Q4_K_M.gguf",
            completed=120_000_000,
            total=253_000_000,
            rate=31_500_000,
        )
        await asyncio.Event().wait()  # stays half-way: the snapshot shows progress

    async def list_aliases(self) -> list[AliasInfo]:
        return list(ALIASES)

    async def search_models(self, query: str, limit: int = 20) -> list[HubModel]:
        return [m for m in HUB_MODELS if query.lower() in m.repo.lower()][:limit]

    async def list_quants(self, repo: str) -> list[QuantFile]:
        return list(QUANTS)

    async def create_model(self, name, modelfile, base_dir=None) -> ModelInfo:
        self.models.append(ModelInfo(name, kind="created"))
        return self.models[-1]

    async def copy_model(self, source, destination, overwrite=False) -> ModelInfo:
        return await self.create_model(destination, "")

    async def delete_model(self, name: str) -> None:
        self.models = [m for m in self.models if m.name != name]

    async def load_model(self, name, keep_alive=None) -> LoadedModel:
        return LOADED[0]

    async def unload_model(self, name: str) -> None:
        return None

    async def running_models(self) -> list[LoadedModel]:
        return list(LOADED)

    async def chat(self, request: ChatRequest) -> AsyncIterator:
        if self.thinking:
            yield ThinkingDelta(self.thinking)
        for word in REPLY.split(" "):
            yield TextDelta(word + " ")
        yield Done("stop", Usage(18, 52), Timings(eval_ns=1_300_000_000), model=request.model)

    async def complete(self, request) -> AsyncIterator:
        yield Done("stop")

    async def embed(self, request) -> EmbedResult:
        return EmbedResult(request.model, [[0.0]], 1)

    async def rerank(self, request) -> RerankResult:
        return RerankResult(request.model, [], 0)

    async def tokenize(self, model, text, add_special=True, parse_special=True) -> list[int]:
        return []

    async def detokenize(self, model, tokens) -> str:
        return ""

    async def token_pieces(self, model, tokens) -> list[bytes]:
        return []

    async def count_chat_tokens(self, request) -> int:
        return 0

    async def status(self) -> EngineStatus:
        return EngineStatus(
            "0.1.0",
            3600.0,
            "local",
            list(LOADED),
            requests_total=12,
            requests_active=1,
            tokens_generated=1834,
            prompt_tokens=5120,
            endpoints={},
            default_model="gemma3:270m",
        )

    async def set_default_model(self, name: str) -> None:
        return None

    async def default_model(self) -> str:
        return "gemma3:270m"

    async def ping(self, timeout: float | None = None) -> Liveness:
        return Liveness("0.1.0", 1, "fake", 0.0)

    async def blob_path(self, digest: str) -> str | None:
        return None

    async def add_blob(self, digest: str, chunks) -> str:
        return digest

    async def prune_store(self) -> PruneResult:
        return PruneResult()

    @property
    def mode(self) -> str:
        return "local"

    async def metrics_snapshot(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        return None
