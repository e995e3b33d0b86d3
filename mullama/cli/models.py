"""`list`, `show`, `rm`, `cp`, `create`: the local model store, through the daemon."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mullama.config import Settings
from mullama.engine.api import EngineError, ModelDetails

from .daemonctl import connect
from .output import CliError, ago, error, human_size, plain, print_json, print_table


def _short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


async def cmd_list(args, settings: Settings) -> int:
    engine = await connect(settings)
    try:
        models = await engine.list_models()
    finally:
        await engine.close()
    if args.json:
        print_json({"models": [plain(m) for m in models]})
        return 0
    headers = ["NAME", "ID", "SIZE", "MODIFIED"]
    rows = [[m.name, _short_id(m.digest), human_size(m.size), ago(m.modified_at)] for m in models]
    if args.verbose:
        headers += ["KIND", "FAMILY", "PARAMS", "QUANT", "SOURCE"]
        for row, m in zip(rows, models):
            row += [
                m.kind,
                m.family or "-",
                m.parameter_size or "-",
                m.quantization or "-",
                m.source or "-",
            ]
    print_table(headers, rows)
    return 0


def _format_value(value) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def print_details(d: ModelDetails) -> None:
    info, meta = d.info, d.metadata
    print("  Model")
    facts = [
        ("name", info.name),
        ("kind", info.kind),
        ("architecture", info.family),
        ("parameters", info.parameter_size),
        ("quantization", info.quantization),
        ("context length", meta.get("context_length") or meta.get(f"{info.family}.context_length")),
        ("embedding length", meta.get(f"{info.family}.embedding_length")),
        ("size", human_size(info.size) if info.size else ""),
        ("digest", info.digest),
        ("source", info.source),
    ]
    for key, value in facts:
        if value not in (None, ""):
            print(f"    {key:<18}{value}")
    caps = [name for name, on in sorted(info.capabilities.items()) if on]
    if caps:
        print("\n  Capabilities")
        for cap in caps:
            print(f"    {cap}")
    if d.parameters:
        print("\n  Parameters")
        for key, value in d.parameters.items():
            for item in value if isinstance(value, list) else [value]:
                print(f"    {key:<18}{_format_value(item)}")
    if d.system:
        print("\n  System")
        for line in d.system.splitlines():
            print(f"    {line}")
    if d.license:
        print("\n  License")
        for line in d.license.strip().splitlines()[:2]:
            print(f"    {line}")


async def cmd_show(args, settings: Settings) -> int:
    engine = await connect(settings)
    try:
        details = await engine.show_model(args.model)
    finally:
        await engine.close()
    if args.json:
        print_json(plain(details))
    elif args.modelfile:
        print(details.modelfile.rstrip("\n"))
    elif args.parameters:
        for key, value in details.parameters.items():
            for item in value if isinstance(value, list) else [value]:
                print(f"{key:<18}{_format_value(item)}")
    elif args.template:
        print(details.template.rstrip("\n"))
    elif args.system:
        print(details.system.rstrip("\n"))
    else:
        print_details(details)
    return 0


async def cmd_rm(args, settings: Settings) -> int:
    engine = await connect(settings)
    failed = 0
    try:
        for name in args.models:
            try:
                await engine.delete_model(name)
            except EngineError as exc:
                if exc.code == "unavailable":
                    raise
                error(exc.message)
                failed += 1
            else:
                print(f"deleted '{name}'")
    finally:
        await engine.close()
    return 1 if failed else 0


async def cmd_cp(args, settings: Settings) -> int:
    engine = await connect(settings)
    try:
        info = await engine.copy_model(args.source, args.destination, overwrite=args.force)
    finally:
        await engine.close()
    print(f"copied '{args.source}' to '{info.name}'")
    return 0


async def cmd_create(args, settings: Settings) -> int:
    path = Path(args.file).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(
            f"no such file: {path}", "Give the Modelfile with `-f FILE` (default: ./Modelfile)."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    engine = await connect(settings)
    try:
        info = await engine.create_model(args.name, text, os.path.abspath(path.parent))
    except EngineError as exc:
        if exc.details.get("line") is not None and exc.message.startswith("Modelfile line"):
            exc.message = f"{path}{exc.message[len('Modelfile') :]}"  # name the file the user gave
        raise
    finally:
        await engine.close()
    print(f"created '{info.name}'" + (f" ({_short_id(info.digest)})" if info.digest else ""))
    return 0
