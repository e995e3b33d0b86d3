"""`daemon start | stop | restart | status | logs`."""

from __future__ import annotations

import os
import sys
import time
from collections import deque

from mullama import pidfile
from mullama.config import Settings
from mullama.safefiles import open_private

from .daemonctl import connect, ping, runtime_files, start_daemon, stop_daemon
from .output import CliError, human_duration, human_size, info, plain, print_json


async def cmd_daemon(args, settings: Settings) -> int:
    action = {"start": _start, "stop": _stop, "restart": _restart, "status": _status}.get(
        args.action
    )
    if action is None:
        return _logs(args, settings)
    return await action(args, settings)


def _with_serve_options(args, settings: Settings) -> tuple[Settings, list[str]]:
    """The settings as the daemon will see them (so it is pinged where it listens), and the
    options to start it with."""
    from mullama.daemon import serve_argv

    from .serve import serve_settings

    return serve_settings(args), serve_argv(args)


async def _start(args, settings: Settings) -> int:
    settings, options = _with_serve_options(args, settings)
    answer = await ping(settings)
    if answer is not None:
        print(f"Daemon already running (pid {answer.pid}, v{answer.version}) at {settings.socket}")
        return 0
    info("Starting daemon...")
    answer, _ = await start_daemon(settings, announce=False, options=options)
    record = pidfile.read(settings.pid_file)
    http = (record.http if record else "") or settings.http_endpoint
    print(
        f"Daemon started (pid {answer.pid}): IPC {settings.socket}, HTTP {http}; "
        f"log {settings.log_file}"
    )
    return 0


async def _stop(args, settings: Settings) -> int:
    pid = await stop_daemon(settings)
    if pid is None:
        info("Daemon is not running.")
    else:
        print(f"Daemon stopped (pid {pid}).")
    return 0


async def _restart(args, settings: Settings) -> int:
    import msgspec

    # the running daemon, where the new one will listen, asked with the key it has now
    running = msgspec.structs.replace(
        _with_serve_options(args, settings)[0], api_key=settings.api_key
    )
    await _check_models(args.model, running)  # before stopping a daemon that works
    await _stop(args, running)
    return await _start(args, settings)


async def _check_models(names: list[str], settings: Settings) -> None:
    """Every model to preload exists, asked of the running daemon (none running: nothing to
    lose, the new daemon says it itself)."""
    if not names or await ping(settings) is None:
        return
    engine = await connect(settings, spawn_daemon=False)
    try:
        for name in names:
            await engine.show_model(name)  # ModelNotFound, with suggestions
    finally:
        await engine.close()


async def _status(args, settings: Settings) -> int:
    answer = await ping(settings)
    if answer is None:
        if args.json:
            print_json(
                {"running": False, "socket": settings.socket, "log_file": str(settings.log_file)}
            )
        else:
            print(f"Daemon is not running (nothing answers at {settings.socket}).")
        return 1
    engine = await connect(settings, spawn_daemon=False)
    try:
        status = await engine.status()
    finally:
        await engine.close()
    record = pidfile.read(settings.pid_file)
    endpoints = {
        "socket": settings.socket,
        **({"http": record.http} if record and record.http else {}),
        **status.endpoints,
    }
    if args.json:
        data = plain(status)
        data.update(
            running=True,
            pid=answer.pid,
            protocol=answer.protocol,
            endpoints=endpoints,
            log_file=str(settings.log_file),
        )
        print_json(data)
        return 0
    print(
        f"Mullama daemon v{status.version} running (pid {answer.pid}, "
        f"uptime {human_duration(status.uptime_secs)})"
    )
    for name, address in endpoints.items():
        print(f"  {name.upper():<9}{address}")
    print(f"  {'DEFAULT':<9}{status.default_model or '-'}")
    if status.loaded:
        for i, m in enumerate(status.loaded):
            label = "MODELS" if i == 0 else ""
            print(f"  {label:<9}{m.name} ({human_size(m.size)}, context {m.context_length})")
    else:
        print(f"  {'MODELS':<9}none loaded")
    print(
        f"  {'REQUESTS':<9}{status.requests_total} total, {status.requests_active} active, "
        f"{status.tokens_generated} tokens generated"
    )
    print(f"  {'LOG':<9}{settings.log_file}")
    return 0


def _logs(args, settings: Settings) -> int:
    path = settings.log_file
    try:
        with runtime_files(settings):
            fd = open_private(path, os.O_RDONLY, "daemon log")
    except FileNotFoundError:
        raise CliError(
            f"no daemon log at {path}",
            "The log is written by daemons started with `mullama daemon start` or auto-spawn.",
        ) from None
    with open(fd, errors="replace") as handle:
        if args.lines is not None:
            sys.stdout.writelines(deque(handle, maxlen=max(0, args.lines)))
        else:
            sys.stdout.writelines(handle)
        sys.stdout.flush()
        while args.follow:
            line = handle.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
                continue
            if path.exists() and path.stat().st_size < handle.tell():
                handle.seek(0)  # truncated: start over
            time.sleep(0.25)
    return 0
