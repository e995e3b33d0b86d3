"""A deterministic Engine for SVG snapshots only (fixed models, counters and replies).

Every behaviour it stands in for is tested end to end against the real engine and a real
daemon beside the snapshot tests; this exists so pictures do not change from run to run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from mullama.engine.api import (
    ChatRequest,
    Done,
    EmbedResult,
    Engine,
    EngineStatus,
    Liveness,
    LoadedModel,
    ModelDetails,
    ModelInfo,
    PruneResult,
    PullProgress,
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
