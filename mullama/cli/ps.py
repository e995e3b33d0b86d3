"""`ps`: the models loaded in the daemon."""

from __future__ import annotations

from mullama.config import Settings

from .daemonctl import connect
from .output import human_size, plain, print_json, print_table, until


def _processor(gpu_layers: int) -> str:
    return f"GPU ({gpu_layers} layers)" if gpu_layers else "100% CPU"


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
            until(m.expires_at),
        ]
        for m in models
    ]
    print_table(["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "BUSY", "QUEUED", "UNTIL"], rows)
    return 0
