"""The generation values that apply when a form's field is left blank, said as placeholders.

The engine merges a request's options over the model's Modelfile PARAMETERs over its own
defaults (``engine.options.DEFAULTS``); a TUI request also carries the Settings' defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..engine.api import EngineError
from ..engine.options import DEFAULTS, from_parameters

if TYPE_CHECKING:
    from ..engine.api import Engine
    from .preferences import Preferences

FIELDS = ("temperature", "top_p", "top_k", "max_tokens")


def said(name: str, value: Any) -> str:
    if name == "max_tokens" and value < 0:
        return "no limit" if value == -1 else "fill the context"
    return f"{value:g}" if isinstance(value, float) else str(value)


def placeholders(
    parameters: dict, prefs: Preferences | None = None, cap: int = 0
) -> dict[str, str]:
    """Field -> what applies when it is blank: ``0.3 (from Settings)``, ``0 (model default)``
    (the model's PARAMETER) or ``0.8 (engine default)``; ``cap``: the server's max tokens cap."""
    model = from_parameters(parameters)
    shown: dict[str, str] = {}
    for name in FIELDS:
        layers = (
            (getattr(prefs, name) if prefs is not None else None, "from Settings"),
            (getattr(model, name), "model default"),
            (getattr(DEFAULTS, name), "engine default"),
        )
        value, source = next((v, s) for v, s in layers if v is not None)
        if name == "max_tokens" and cap > 0 and (value < 0 or value > cap):
            value, source = cap, "server cap"
        shown[name] = f"{said(name, value)} ({source})"
    return shown


async def model_parameters(engine: Engine, model: str) -> dict:
    """The model's Modelfile PARAMETERs, or none when it has no name or cannot be shown."""
    if not model:
        return {}
    try:
        return (await engine.show_model(model)).parameters
    except EngineError:
        return {}
