"""`mullama`: the command line.

The parser is built here; each command lives in its own module, imported only
when that command runs, so `mullama list` never loads llama.cpp, Textual or Sanic.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys

from mullama import __version__
from mullama.startup import defer_gc, resume_gc

# command -> "module:function" under mullama.cli; the function takes (args, settings)
COMMANDS = {
    "list": "models:cmd_list",
    "show": "models:cmd_show",
    "rm": "models:cmd_rm",
    "cp": "models:cmd_cp",
    "create": "models:cmd_create",
    "pull": "pull:cmd_pull",
    "ps": "ps:cmd_ps",
    "stop": "ps:cmd_stop",
    "run": "run:cmd_run",
    "chat": "tui:cmd_chat",
    "serve": "serve:cmd_serve",
    "daemon": "lifecycle:cmd_daemon",
    "worker": "worker:cmd_worker",
    "cluster": "cluster:cmd_cluster",
    "": "tui:cmd_dashboard",
}
# the terminal UI resumes garbage collection itself, once its first frame is painted
RESUMES_GC = {"chat", ""}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mullama",
        description="A local LLM server and terminal app on llama.cpp. "
        "With no command, opens the terminal UI.",
    )
    parser.add_argument("--version", action="version", version=f"mullama {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", aliases=["ls"], help="list local models")
    p.add_argument("--verbose", "-v", action="store_true", help="show family, quantization, source")
    p.add_argument("--json", action="store_true", help="output JSON")

    p = sub.add_parser("pull", help="download a model")
    p.add_argument("model", help="alias (llama3.2:1b) or hf:owner/repo[:QUANT]")

    p = sub.add_parser("rm", help="remove models")
    p.add_argument("models", nargs="+", metavar="MODEL")

    p = sub.add_parser("cp", help="copy a model (the manifest, never the weights)")
    p.add_argument("source")
    p.add_argument("destination")
    p.add_argument("--force", "-f", action="store_true", help="replace an existing destination")

    p = sub.add_parser("show", help="show a model's details")
    p.add_argument("model")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--modelfile", action="store_true", help="print the Modelfile")
    group.add_argument("--parameters", action="store_true", help="print the parameters")
    group.add_argument("--template", action="store_true", help="print the template")
    group.add_argument("--system", action="store_true", help="print the system prompt")
    group.add_argument("--json", action="store_true", help="output JSON")

    p = sub.add_parser("create", help="create a model from a Modelfile or Mullamafile")
    p.add_argument("name")
    p.add_argument("-f", "--file", default="Modelfile", help="the Modelfile (default ./Modelfile)")

    p = sub.add_parser("ps", help="list running (loaded) models")
    p.add_argument("--json", action="store_true", help="output JSON")

    p = sub.add_parser("stop", help="unload a running model now")
    p.add_argument("model")

    p = sub.add_parser("run", help="run a model: one prompt, or an interactive session")
    p.add_argument("model")
    p.add_argument(
        "prompt", nargs="*", help="the prompt (default: stdin when piped, else interactive)"
    )
    p.add_argument("-n", "--num-predict", type=int, metavar="N", help="at most N tokens")
    p.add_argument("-t", "--temperature", type=float, metavar="TEMP", help="sampling temperature")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--system", help="system prompt")
    p.add_argument(
        "--think",
        choices=["true", "false", "low", "medium", "high"],
        help="enable or disable thinking (model default otherwise)",
    )
    p.add_argument("--hidethinking", action="store_true", help="do not print thinking text")
    p.add_argument(
        "--format",
        metavar="FORMAT",
        help="constrain the reply: json, a JSON schema file, or an inline schema '{...}'",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object with the result")
    p.add_argument("--verbose", action="store_true", help="print timings and token rates")
    p.add_argument("--keepalive", help="how long the model stays loaded (e.g. 5m, 0, -1)")
    p.add_argument(
        "--image",
        action="append",
        dest="images",
        metavar="FILE",
        help="an image for a vision model (PNG, JPEG, WebP, GIF); repeat for more",
    )

    p = sub.add_parser("chat", help="open the terminal UI's Chat screen")
    p.add_argument("--model", "-m", help="the model to chat with")

    from mullama.daemon import add_serve_arguments

    add_serve_arguments(sub.add_parser("serve", help="run the daemon in the foreground"))

    from mullama.cli.worker import add_worker_arguments

    add_worker_arguments(
        sub.add_parser("worker", help="lend this machine to another's models (llama.cpp RPC)")
    )

    p = sub.add_parser("daemon", help="start, stop, inspect the background daemon")
    dsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_serve_arguments(
        dsub.add_parser(
            "start", help="start the daemon in the background (takes the options of serve)"
        ),
        background=True,
    )
    dsub.add_parser("stop", help="stop the daemon")
    add_serve_arguments(
        dsub.add_parser("restart", help="stop, then start the daemon (takes the options of serve)"),
        background=True,
    )
    d = dsub.add_parser("status", help="version, uptime, endpoints, loaded models")
    d.add_argument("--json", action="store_true", help="output JSON")
    d = dsub.add_parser("logs", help="print the daemon's log")
    d.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    d.add_argument("-n", "--lines", type=int, metavar="N", help="only the last N lines")

    from mullama.cli import cluster

    cluster.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    defer_gc()
    try:
        return _main(argv)
    finally:
        resume_gc()


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; `run MODEL -n 64 "a prompt"` takes the words after its options
    as the prompt too (argparse alone stops the prompt at the first option)."""
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "run" and not any(word.startswith("-") for word in extra):
        args.prompt = [*args.prompt, *extra]
    elif extra:
        parser.error("unrecognized arguments: " + " ".join(extra))
    return args


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    command = {"ls": "list"}.get(args.command, args.command) or ""
    module, function = COMMANDS[command].split(":")
    from mullama.config import load_settings
    from mullama.engine.api import EngineError

    from .output import CliError, error

    try:
        settings = load_settings()
    except ValueError as exc:  # a malformed MULLAMA_* variable or settings.toml value
        error(str(exc), "Fix the setting and try again.")
        return 2
    try:
        handler = getattr(importlib.import_module(f"mullama.cli.{module}"), function)
        if command not in RESUMES_GC:
            resume_gc()
        result = handler(args, settings)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except CliError as exc:
        error(exc.message, exc.hint)
        return exc.code
    except EngineError as exc:
        from .errors import hint_for

        error(exc.message, hint_for(exc, settings, command))
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
