"""TUI preferences, stored in the ``[tui]`` table of ``settings.settings_file``.

Read with the standard library's ``tomllib`` (the app's first frame waits for it) and checked
by msgspec against :class:`Preferences`; written with tomlkit, so other tables in that file
(and the top-level settings) are kept as they are, comments included.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from ..config import Settings
from ..engine.api import InvalidRequest, SamplingOptions
from ..engine.options import validate


class Preferences(msgspec.Struct):
    theme: str = "textual-dark"
    default_model: str = ""
    # generation defaults for new requests; None = the model's own default
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    system_prompt: str = ""
    daemon_socket: str = ""  # empty: settings.socket
    daemon_http: str = ""  # empty: settings.http_endpoint

    def options(self, **overrides: Any) -> SamplingOptions:
        """Sampling options from these defaults, with non-None ``overrides`` on top."""
        values: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_tokens": self.max_tokens,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return SamplingOptions(**values)

    def socket(self, settings: Settings) -> str:
        return self.daemon_socket or settings.socket

    def http(self, settings: Settings) -> str:
        return (self.daemon_http or settings.http_endpoint).rstrip("/")


def check_options(options: SamplingOptions) -> None:
    """ValueError, in words for a form, when the engine would refuse these defaults."""
    try:
        validate(options)
    except InvalidRequest as exc:
        raise ValueError(exc.message.replace("_", " ")) from None
    if options.max_tokens is not None and options.max_tokens == 0:
        raise ValueError("max tokens must be at least 1 (or empty for the model's default)")


def load_preferences(path: Path) -> Preferences:
    """The saved preferences; defaults for anything missing or of the wrong type."""
    try:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("tui", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return Preferences()
    if not isinstance(table, dict):
        return Preferences()
    values = {k: v for k, v in table.items() if k in Preferences.__struct_fields__}
    while True:
        try:
            return msgspec.convert(values, Preferences)
        except msgspec.ValidationError as exc:
            # drop the value msgspec names (``... - at `$.top_k```) and keep the rest
            name = str(exc).rpartition("`$.")[2].rstrip("`")
            if name not in values:
                return Preferences()
            del values[name]


def save_preferences(path: Path, prefs: Preferences) -> None:
    import tomlkit

    path = Path(path)
    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        doc = tomlkit.document()
    table = doc.get("tui")
    if table is None:
        table = tomlkit.table()
        doc["tui"] = table
    for name, value in msgspec.structs.asdict(prefs).items():
        if value is None:
            table.pop(name, None)
        else:
            table[name] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomlkit.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)
