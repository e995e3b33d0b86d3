"""Management API bodies (``/api/models/*``): a model, by ``name`` or ``model``."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from .common import Body, fail


class ModelAction(Body):
    name: str | None = None
    model: str | None = None
    stream: bool = True
    keep_alive: Any = None

    @model_validator(mode="after")
    def _named(self) -> ModelAction:
        self.name = self.name or self.model
        if not self.name:
            raise fail(("model",), "is required")
        return self

    @property
    def target(self) -> str:
        return self.name or ""
