"""`pull`: download a model with a progress bar (size, rate, ETA) per file."""

from __future__ import annotations

import sys

from mullama.config import Settings
from mullama.engine.api import Engine

from .daemonctl import connect
from .output import console, human_size, is_tty


async def pull_with_progress(engine: Engine, ref: str) -> None:
    """Pull ``ref``, drawing progress on stderr (a bar on a terminal, status lines otherwise)."""
    if is_tty(sys.stderr):
        await _pull_bars(engine, ref)
    else:
        await _pull_lines(engine, ref)


async def _pull_bars(engine: Engine, ref: str) -> None:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    ]
    status_line = None
    with Progress(*columns, console=console(stderr=True), transient=False) as progress:
        tasks: dict[str, TaskID] = {}
        async for p in engine.pull_model(ref):
            if p.status == "downloading" and p.total:
                name = p.file or p.digest or ref
                if name not in tasks:
                    tasks[name] = progress.add_task(f"pulling {_short(name)}", total=p.total)
                progress.update(tasks[name], completed=p.completed, total=p.total)
                continue
            for task_id in tasks.values():  # downloads are over: show their bars full
                progress.update(task_id, completed=progress.tasks[task_id].total)
            if p.status != status_line and p.status != "success":
                status_line = p.status
                progress.console.print(_describe(p))


async def _pull_lines(engine: Engine, ref: str) -> None:
    last = None
    async for p in engine.pull_model(ref):
        key = (p.status, p.file)
        if key != last and p.status != "success":
            last = key
            print(_describe(p), file=sys.stderr, flush=True)


def _describe(p) -> str:
    what = f" {_short(p.file)}" if p.file else ""
    size = f" ({human_size(p.total)})" if p.total else ""
    return f"{p.status}{what}{size}"


def _short(name: str) -> str:
    name = name.rsplit("/", 1)[-1]
    return name if len(name) <= 40 else name[:18] + "…" + name[-20:]


async def cmd_pull(args, settings: Settings) -> int:
    engine = await connect(settings)
    try:
        await pull_with_progress(engine, args.model)
    finally:
        await engine.close()
    print("success")
    return 0
