"""`ps` and `stop`: the models loaded in the daemon."""

from __future__ import annotations

import difflib

from mullama.config import Settings
from mullama.engine.api import ModelNotFound

from .daemonctl import connect
from .output import CliError, human_size, plain, print_json, print_table, until
from .resolve import model_ref


def _processor(gpu_layers: int) -> str:
    return f"GPU ({gpu_layers} layers)" if gpu_layers else "100% CPU"


def _drafts(verified: int, kept: int) -> str:
    """Speculative decoding's record: the share of draft tokens kept, of how many."""
    return f"{kept / verified:.0%} of {verified:,}" if verified else "-"


async def cmd_ps(args, settings: Settings) -> int:
    engine = await connect(settings)
    try:
        models = await engine.running_models()
    finally:
        await engine.close()
    if args.json:
        print_json({"models": [plain(m) for m in models]})
        return 0
    rows = [
        [
            m.name,
            m.digest.split(":", 1)[-1][:12],
            human_size(m.size),
            _processor(m.gpu_layers),
            str(m.context_length),
            f"{m.busy_slots}/{m.num_parallel}",
            str(m.queued),
            _drafts(m.draft_tokens, m.draft_accepted),
            until(m.expires_at),
        ]
        for m in models
    ]
    print_table(
        ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "BUSY", "QUEUED", "DRAFTS KEPT", "UNTIL"],
        rows,
    )
    return 0


def not_loaded(name: str, loaded: list[str], why: str = "") -> CliError:
    """``name`` is not loaded: suggest only models that are (never ``name`` itself)."""
    query = name.strip().lower()
    pool = [n for n in loaded if n.lower() not in (query, f"{query}:latest")]
    close = difflib.get_close_matches(query, [n.lower() for n in pool], n=5, cutoff=0.6)
    bases = difflib.get_close_matches(query, sorted({n.lower().split(":")[0] for n in pool}))
    suggestions = [n for n in pool if n.lower() in close or n.lower().split(":")[0] in bases][:5]
    message = f"model {name!r} is not loaded" + (f" ({why})" if why else "")
    if suggestions:
        message += "; did you mean " + ", ".join(repr(s) for s in suggestions) + "?"
    elif not loaded and not why:
        message += " (no model is loaded)"
    return CliError(message, "" if suggestions else "`mullama ps` lists the loaded models.")


async def cmd_stop(args, settings: Settings) -> int:
    """Unload ``args.model`` now (as Ollama's `stop`); never starts a daemon to do it."""
    try:
        engine = await connect(settings, spawn_daemon=False)
    except CliError:
        raise not_loaded(args.model, [], "the Mullama daemon is not running") from None
    try:
        loaded = [m.name for m in await engine.running_models()]
        try:  # the name as the daemon resolves it: an alias, a missing :latest, a path
            name = (await engine.show_model(model_ref(args.model))).info.name
        except ModelNotFound:
            name = args.model
        if name not in loaded:
            raise not_loaded(args.model, loaded)
        await engine.unload_model(name)
    finally:
        await engine.close()
    print(f"stopped '{name}'")
    return 0
