"""The model a command names: a path made absolute, a known model pulled first."""

from __future__ import annotations

import os

from mullama.engine.api import Engine, ModelDetails, ModelNotFound

from .output import info


def model_ref(ref: str) -> str:
    """Paths are resolved here: the daemon's working directory is not ours."""
    from mullama.engine.refs import is_path_like

    return os.path.abspath(os.path.expanduser(ref)) if is_path_like(ref) else ref


async def ensure_local(engine: Engine, model: str) -> ModelDetails | None:
    """The model's details, pulling it first when it is known but not local yet."""
    from mullama.engine.refs import is_path_like

    if is_path_like(model):
        return None
    try:
        return await engine.show_model(model)
    except ModelNotFound as exc:
        if not exc.details.get("pullable"):
            raise
    from .pull import pull_with_progress

    info(f"pulling {model}...")
    await pull_with_progress(engine, model)
    return await engine.show_model(model)
