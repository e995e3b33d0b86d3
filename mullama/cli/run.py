"""`run MODEL [PROMPT]`: stream a reply, or open an interactive session.

The prompt comes from the arguments, from stdin when it is piped (appended to the
arguments, as Ollama does), or, on a terminal with neither, from the REPL.
A model that is known but not pulled yet is pulled first.
"""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path

from mullama.config import Settings
from mullama.engine.api import ChatRequest, Message, SamplingOptions

from .daemonctl import connect
from .formats import parse_format
from .output import CliError, print_json
from .repl import Repl
from .reply import Renderer, parse_think, print_stats, stream_reply
from .resolve import ensure_local, model_ref


def _prompt_from(args) -> tuple[str, bool]:
    """(prompt, interactive)."""
    prompt = " ".join(args.prompt)
    if sys.stdin is not None and not sys.stdin.isatty():
        piped = sys.stdin.read()
        if piped.strip():
            prompt = f"{prompt}\n\n{piped}" if prompt else piped
        if not prompt.strip():
            raise CliError(
                "the prompt is empty (nothing on stdin and no PROMPT argument)",
                'Pass a prompt: mullama run MODEL "your prompt".',
                code=2,
            )
        return prompt, False
    return prompt, not prompt


def read_images(paths: list[str] | None) -> list[str]:
    """The files of ``--image`` as base64 (the daemon checks what they hold)."""
    images = []
    for path in paths or []:
        try:
            data = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read the image {path}: {exc.strerror or exc}", code=2) from None
        images.append(base64.b64encode(data).decode("ascii"))
    return images


async def cmd_run(args, settings: Settings) -> int:
    model = model_ref(args.model)
    images = read_images(getattr(args, "images", None))
    prompt, interactive = _prompt_from(args)
    if images and interactive:
        raise CliError(
            "--image needs a prompt to go with it",
            'Pass one: mullama run MODEL "describe this" --image FILE.',
            code=2,
        )
    if args.num_predict is not None and args.num_predict < -1:
        raise CliError("-n must be -1 (no limit) or more", code=2)
    reply_format = parse_format(args.format) if args.format else None
    options = SamplingOptions(
        max_tokens=args.num_predict, temperature=args.temperature, seed=args.seed
    )
    engine = await connect(settings)
    try:
        details = await ensure_local(engine, model)
        if interactive:
            return await Repl(
                engine, model, options, args, details, settings, reply_format=reply_format
            ).run()
        messages = ([Message("system", args.system)] if args.system else []) + [
            Message("user", prompt, images=images)
        ]
        request = ChatRequest(
            model,
            messages,
            options,
            format=reply_format,
            think=parse_think(args.think),
            keep_alive=args.keepalive,
        )
        started = time.perf_counter()
        result = await stream_reply(
            engine, request, None if args.json else Renderer(args.hidethinking)
        )
        if args.json:
            print_json(result)
        if args.verbose:
            print_stats(result, time.perf_counter() - started)
        return 0
    finally:
        await engine.close()
