"""The parsed form of a Modelfile / Mullamafile."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any

MESSAGE_ROLES = ("system", "user", "assistant", "tool")
THINKING_KEYS = ("start", "end", "enabled")
TOOLFORMAT_KEYS = ("style", "call_start", "call_end", "result_start", "result_end")
TOOLFORMAT_STYLES = ("qwen", "hermes", "llama3", "mistral", "custom")
CAPABILITY_NAMES = ("json", "tools", "thinking", "vision")


class ModelfileError(Exception):
    """A Modelfile could not be parsed; `line` and `column` are 1-based."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"Modelfile line {line}, column {column}: {message}")
        self.line = line
        self.column = column
        self.message = message


@dataclass
class ModelfileSpec:
    """Everything a Modelfile says about a model; compares by value."""

    from_ref: str
    parameters: dict[str, object] = field(default_factory=dict)
    system: str | None = None
    template: str | None = None
    messages: list[tuple[str, str]] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)
    gpu_layers: int | None = None
    flash_attention: bool | None = None
    # RPC workers (HOST:PORT) that hold the layers; [] = local even when the daemon has some
    rpc: list[str] | None = None
    tensor_split: list[float] | None = None  # proportions per device (RPC workers first)
    vision_projector: str | None = None
    license: str | None = None
    author: str | None = None
    digest: str | None = None
    thinking: dict[str, object] = field(default_factory=dict)
    toolformat: dict[str, str] = field(default_factory=dict)
    capabilities: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready copy (messages become two-item lists)."""
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}
        data["messages"] = [[role, content] for role, content in self.messages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ModelfileSpec:
        """Inverse of `to_dict`; missing keys take their defaults, unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ModelfileSpec field(s): {', '.join(unknown)}")
        values: dict[str, Any] = copy.deepcopy(dict(data))  # checked by the constructor's types
        values["messages"] = [(role, content) for role, content in values.get("messages", [])]
        return cls(**values)
