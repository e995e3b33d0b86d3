"""The next step to suggest for an engine error."""

from __future__ import annotations

from mullama.config import Settings
from mullama.engine.api import (
    ContextOverflow,
    EngineError,
    InsufficientMemory,
    ModelLoadError,
    ModelNotFound,
    QueueFull,
    Unavailable,
)


def hint_for(exc: EngineError, settings: Settings, command: str = "") -> str:
    """``command``: the CLI command that failed (a hint must not send the user back to it)."""
    if isinstance(exc, ModelNotFound):
        suggestions = exc.details.get("suggestions") or []
        if suggestions and "did you mean" not in exc.message.lower():
            return "Did you mean: " + ", ".join(suggestions) + "?"
        if exc.details.get("pullable"):
            return ""
        if command == "pull":
            return (
                "Pull an alias of the registry (README: Models) or a Hugging Face repository "
                "as hf:owner/repo (hf:owner/repo:Q4_K_M for one quantization)."
            )
        return "See `mullama list` for local models, or `mullama pull MODEL` to download one."
    if isinstance(exc, Unavailable) and exc.details.get("hub"):
        return (
            f"Check the network connection to {exc.details['hub']} (HF_ENDPOINT sets another "
            "hub); models already pulled work offline (`mullama list`)."
        )
    if isinstance(exc, Unavailable):
        return (
            "Check `mullama daemon status`; the daemon log is "
            f"{settings.log_file} (`mullama daemon logs`)."
        )
    if isinstance(exc, ContextOverflow):
        return "Shorten the prompt, or give the model a larger context (PARAMETER num_ctx)."
    if isinstance(exc, InsufficientMemory):
        return "Unload a model (see `mullama ps`) or choose a smaller quantization."
    if isinstance(exc, ModelLoadError):
        return f"The daemon log may say more: {settings.log_file}."
    if isinstance(exc, QueueFull):
        return "The model is busy; try again shortly."
    return ""
