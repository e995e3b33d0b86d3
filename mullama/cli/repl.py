"""The interactive session of `mullama run MODEL`: multi-turn chat with slash commands."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time

from mullama.config import Settings
from mullama.engine.api import (
    ChatRequest,
    Engine,
    EngineError,
    Message,
    ModelDetails,
    SamplingOptions,
)

from .formats import parse_format
from .models import print_details
from .output import CliError, error
from .reply import Renderer, parse_think, print_stats, stream_reply
from .resolve import ensure_local, model_ref

HELP = """Available commands:
  /set parameter KEY VALUE   set a sampling parameter (temperature, num_predict, top_k, top_p,
                             min_p, seed, stop, repeat_penalty, ...)
  /set system TEXT           set the system message
  /set think | nothink       turn thinking on or off
  /set verbose | quiet       show or hide timings after each reply
  /set format json           reply in JSON (or: /set format SCHEMA-FILE | {...schema...})
  /set noformat              reply in free text again
  /show info                 what the model is (architecture, size, capabilities...)
  /show license              the model's license
  /show modelfile            the model's Modelfile
  /show parameters           the model's parameters and this session's
  /show system               the system message
  /show template             the prompt template
  /load MODEL                switch to another model (a new conversation)
  /save NAME                 save this session as a new model (its system message,
                             parameters and conversation)
  /clear                     forget the conversation
  /bye                       exit
  /? or /help                this help

Start a message with \"\"\" to write several lines; end it with \"\"\"."""

# Ollama parameter names -> SamplingOptions fields
PARAMETERS = {
    "num_predict": "max_tokens",
    "temperature": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
    "min_p": "min_p",
    "typical_p": "typical_p",
    "repeat_penalty": "repeat_penalty",
    "repeat_last_n": "repeat_last_n",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "stop": "stop",
    "mirostat": "mirostat",
    "mirostat_tau": "mirostat_tau",
    "mirostat_eta": "mirostat_eta",
}
_FLOATS = {
    "temperature",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "mirostat_tau",
    "mirostat_eta",
}


class Repl:
    def __init__(
        self,
        engine: Engine,
        model: str,
        options: SamplingOptions,
        args,
        details: ModelDetails | None,
        settings: Settings,
        reply_format: str | dict | None = None,
    ):
        self.engine = engine
        self.model = model
        self.options = options
        self.details = details
        self.settings = settings
        self.hide_thinking = args.hidethinking
        self.think = parse_think(args.think)
        self.verbose = args.verbose
        self.keep_alive = args.keepalive
        self.system = args.system
        self.format = reply_format
        self.messages: list[Message] = []

    async def run(self) -> int:
        self._load_history()
        print("Send a message (/? for help)")
        while True:
            try:
                line = self._read()
            except EOFError:
                print()
                break
            except KeyboardInterrupt:
                print("\nUse Ctrl + d or /bye to exit.")
                continue
            if not line.strip():
                continue
            if line.startswith("/"):
                if await self._command(line.strip()) == "bye":
                    break
                continue
            await self._turn(line)
        self._save_history()
        return 0

    def _read(self) -> str:
        line = input(">>> ")
        if not line.lstrip().startswith('"""'):
            return line
        parts = [line.lstrip()[3:]]
        while not parts[-1].rstrip().endswith('"""'):
            parts.append(input("... "))
        parts[-1] = parts[-1].rstrip()[:-3]
        return "\n".join(parts).strip("\n")

    async def _turn(self, text: str) -> None:
        self.messages.append(Message("user", text))
        system = [Message("system", self.system)] if self.system else []
        request = ChatRequest(
            self.model,
            system + self.messages,
            dataclasses.replace(self.options),
            format=self.format,
            think=self.think,
            keep_alive=self.keep_alive,
        )
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(
            stream_reply(self.engine, request, Renderer(self.hide_thinking))
        )
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        started = time.perf_counter()
        try:
            result = await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            print()
            self.messages.pop()
            return
        except EngineError as exc:
            if exc.code == "unavailable":
                raise
            error(exc.message)
            self.messages.pop()
            return
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        self.messages.append(Message("assistant", result["response"]))
        if self.verbose:
            print_stats(result, time.perf_counter() - started)

    async def _command(self, line: str) -> str:
        words = line.split(maxsplit=2)
        head = words[0].lower()
        if head in ("/bye", "/exit"):
            return "bye"
        if head in ("/?", "/help"):
            print(HELP)
        elif head == "/clear":
            self.messages.clear()
            print("Cleared session context")
        elif head == "/set" and len(words) > 1:
            self._set(words[1].lower(), words[2] if len(words) > 2 else "")
        elif head == "/show":
            self._show(words[1].lower() if len(words) > 1 else "")
        elif head == "/load":
            await self._load(line.split(maxsplit=1)[1:])
        elif head == "/save":
            await self._save(line.split(maxsplit=1)[1:])
        else:
            print(f"Unknown command '{line}'. Type /? for help")
        return ""

    def _set(self, what: str, rest: str) -> None:
        if what == "parameter":
            key, _, value = rest.partition(" ")
            self._set_parameter(key.strip(), value.strip())
        elif what == "system":
            self.system = rest.strip().strip('"') or None
            print("Set system message.")
        elif what in ("think", "nothink"):
            self.think = what == "think"
            print(f"Set 'think' mode to {self.think}.")
        elif what in ("verbose", "quiet"):
            self.verbose = what == "verbose"
            print(f"Set '{what}' mode.")
        elif what == "format" and rest.strip():
            try:
                self.format = parse_format(rest, "/set format")
            except CliError as exc:
                print(f"{exc.message}\n{exc.hint}")
                return
            print(
                "Set format to 'json' mode."
                if self.format == "json"
                else "Set format to the JSON schema."
            )
        elif what == "noformat":
            self.format = None
            print("Disabled format.")
        else:
            print(f"Unknown /set option '{what}'. Type /? for help")

    def _set_parameter(self, key: str, value: str) -> None:
        field = PARAMETERS.get(key)
        if field is None or not value:
            print(f"Usage: /set parameter KEY VALUE, KEY one of: {', '.join(PARAMETERS)}")
            return
        parsed: list[str] | float  # the stop list, or a number (an int for integer parameters)
        try:
            if field == "stop":
                parsed = (self.options.stop or []) + [value.strip('"')]
            else:
                parsed = float(value) if key in _FLOATS else int(value)
        except ValueError:
            print(f"Couldn't set parameter: {key} needs a number, got {value!r}")
            return
        setattr(self.options, field, parsed)
        print(f"Set parameter '{key}' to '{value}'")

    def _show(self, what: str) -> None:
        details = self.details
        if what == "modelfile":
            print(details.modelfile.rstrip() if details else f"FROM {self.model}")
        elif what == "parameters":
            for key, value in details.parameters.items() if details else []:
                print(f"{key:<18}{value}")
            for key, field in PARAMETERS.items():
                value = getattr(self.options, field)
                if value is not None:
                    print(f"{key:<18}{value}  (this session)")
        elif what == "system":
            print(
                self.system
                or (details.system if details else "")
                or "No system message was specified."
            )
        elif what == "info":
            if details:
                print_details(details)
            else:
                print(f"  Model\n    file              {self.model}")
        elif what == "license":
            print((details.license.strip() if details else "") or "No license was specified.")
        elif what == "template":
            print((details.template.strip() if details else "") or "No template was specified.")
        else:
            if what:
                print(f"Unknown /show option '{what}'.")
            print("Usage: /show info | license | modelfile | parameters | system | template")

    async def _load(self, words: list[str]) -> None:
        """Switch to another model, loaded now; nothing of this conversation carries over."""
        if len(words) != 1 or len(words[0].split()) != 1:
            print("Usage: /load MODEL")
            return
        model = model_ref(words[0])
        print(f"Loading model '{words[0]}'")
        try:
            details = await ensure_local(self.engine, model)
            await self.engine.load_model(model, self.keep_alive)
        except EngineError as exc:
            if exc.code == "unavailable":
                raise
            error(exc.message)
            return
        self.model, self.details = model, details
        self.messages.clear()
        self.system = None

    async def _save(self, words: list[str]) -> None:
        """Save the session as a new model (the engine's create), as Ollama's /save does."""
        if len(words) != 1 or len(words[0].split()) != 1:
            print("Usage: /save NAME")
            return
        from .save import session_modelfile

        parameters = {
            key: getattr(self.options, field)
            for key, field in PARAMETERS.items()
            if getattr(self.options, field) is not None
        }
        modelfile = session_modelfile(
            self.details.modelfile if self.details else f"FROM {self.model}",
            self.system,
            parameters,
            self.messages,
        )
        try:
            created = await self.engine.create_model(words[0], modelfile)
        except EngineError as exc:
            if exc.code == "unavailable":
                raise
            error(exc.message)
            return
        print(f"Created new model '{created.name}'")

    def _history_path(self):
        return self.settings.data_dir / "history"

    def _load_history(self) -> None:
        with contextlib.suppress(ImportError, OSError):
            import readline

            readline.read_history_file(self._history_path())

    def _save_history(self) -> None:
        with contextlib.suppress(ImportError, OSError):
            import readline

            self._history_path().parent.mkdir(parents=True, exist_ok=True)
            readline.set_history_length(1000)
            readline.write_history_file(self._history_path())
