"""Paths and settings: the one place that knows where things live.

:class:`Settings` is a typed msgspec Struct. :func:`load_settings` merges, lowest first: the
defaults, the top-level keys of ``settings.toml`` in the config folder (its tables, such as
``[tui]``, belong to their owners), the environment overrides ``MULLAMA_<FIELD>`` (upper case;
``HF_TOKEN`` too), then explicit keyword overrides; ``msgspec.convert`` checks the merged values
against the field types. A wrong value is a ValueError naming the setting where it came from
(``MULLAMA_HTTP_PORT must be an integer, got 'x'``). Nothing here imports anything heavy, so
the CLI stays quick.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

APP = "mullama"


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def default_cache_dir() -> Path:
    """Model cache, per the guide's table of platform locations."""
    if sys.platform == "darwin":
        return _home() / "Library" / "Caches" / APP / "models"
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(_home() / "AppData" / "Local")
        return Path(base) / APP / "models"
    base = os.environ.get("XDG_CACHE_HOME") or str(_home() / ".cache")
    return Path(base) / APP / "models"


def default_config_dir() -> Path:
    if sys.platform == "darwin":
        return _home() / "Library" / "Application Support" / APP
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or _home() / "AppData" / "Roaming") / APP
    return Path(os.environ.get("XDG_CONFIG_HOME") or _home() / ".config") / APP


def default_data_dir() -> Path:
    if sys.platform == "darwin":
        return _home() / "Library" / "Application Support" / APP / "data"
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(_home() / "AppData" / "Local")
        return Path(base) / APP / "data"
    return Path(os.environ.get("XDG_DATA_HOME") or _home() / ".local" / "share") / APP


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    cache_dir: Path = msgspec.field(default_factory=default_cache_dir)
    config_dir: Path = msgspec.field(default_factory=default_config_dir)
    data_dir: Path = msgspec.field(default_factory=default_data_dir)
    bin: str = ""  # MULLAMA_BIN: the mullama executable auto-spawn starts
    hf_token: str = ""  # falls back to HF_TOKEN
    socket: str = "ipc:///tmp/mullama.sock"
    log_file: Path = Path("/tmp/mullamad.log")
    pid_file: Path = Path("/tmp/mullamad.pid")
    http_addr: str = "127.0.0.1"
    http_port: int = 8080
    api_key: str = ""
    cors_origins: str = ""  # comma separated; empty = no CORS headers
    default_model: str = ""
    keep_alive: str = "5m"
    max_loaded_models: int = 3
    num_parallel: int = 0  # 0 = automatic
    context_size: int = 0  # 0 = model default capped at 4096
    gpu_layers: int = 0
    threads: int = 0  # 0 = automatic
    flash_attention: bool = False
    memory_headroom_mb: int = 512
    max_queue: int = 64  # queued requests per model before 503
    max_body_mb: int = 32
    noprune: bool = False  # keep blobs no model references (the daemon removes them at start)
    max_tokens_cap: int = 0  # 0 = no cap beyond the context
    quant_preference: str = "Q4_K_M,Q4_K_S,Q5_K_M,Q4_0,Q5_K_S,Q6_K,Q8_0,Q3_K_M,Q2_K,F16,BF16,F32"
    spawn_timeout: float = 60.0
    # --- security: IPC auth and runtime files ---
    # --- security: HTTP host/origin guard ---
    # --- security: engine limits ---
    # --- security: store paths ---
    # directories (comma or ':' separated) besides the store whose GGUF files HTTP clients may
    # name (as a model, or in a Modelfile's FROM/ADAPTER/VISION_PROJECTOR); the CLI and TUI
    # may name any file of their user's
    allowed_model_dirs: str = ""
    # --- embeddings and rerank ---
    # dedicated embedding and reranking models (BERT family, rank pooling): the most tokens of
    # one input (0 = 2048, at most the model's trained context; a Modelfile's num_ctx wins) and
    # the sequences one decode evaluates together (num_parallel wins)
    embed_model_ctx: int = 0
    embed_model_sequences: int = 16

    @property
    def registry_file(self) -> Path:
        """The user's alias registry, merged over the shipped configs/models.toml."""
        return self.config_dir / "models.toml"

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.toml"

    @property
    def conversations_dir(self) -> Path:
        return self.data_dir / "conversations"

    @property
    def http_endpoint(self) -> str:
        return f"http://{self.http_addr}:{self.http_port}"

    def quant_order(self) -> list[str]:
        return [q.strip().upper() for q in self.quant_preference.split(",") if q.strip()]

    def __post_init__(self) -> None:
        # a bare path is an IPC socket path (pynng would wait forever on an address without
        # a scheme); other schemes nng knows are kept
        if "://" not in self.socket:
            self.socket = "ipc://" + os.path.abspath(os.path.expanduser(self.socket))
        elif not self.socket.startswith(("ipc://", "tcp://", "tcp4://", "tcp6://", "ws://")):
            raise ValueError(
                f"the IPC socket must be ipc://PATH, a path or tcp://HOST:PORT, got {self.socket!r}"
            )


SETTINGS_FILE = "settings.toml"

_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True}
_BOOL_WORDS.update({"0": False, "false": False, "no": False, "off": False, "": False})
_KIND_WORDS = {int: "an integer", float: "a number", bool: "true or false", Path: "a path"}


def _decode_path(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, (str, Path)):
        return Path(os.path.expanduser(value))
    raise TypeError(f"Expected a path, got {type(value).__name__}")


def _file_values(config_dir: Path) -> dict[str, Any]:
    """The top-level (non-table) keys of ``settings.toml``; none when there is no file."""
    path = Path(config_dir) / SETTINGS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    import tomllib

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"cannot parse {path}: {exc}") from None
    values = {k: v for k, v in doc.items() if not isinstance(v, dict)}
    unknown = sorted(set(values) - set(Settings.__struct_fields__))
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    return values


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults, then ``settings.toml``, then ``MULLAMA_*`` variables, then ``overrides``."""
    env_vars: Mapping[str, str] = os.environ if env is None else env
    kinds = {name: Settings.__annotations__[name] for name in Settings.__struct_fields__}
    given = {k: v for k, v in overrides.items() if v is not None}
    from_env: dict[str, Any] = {}
    for name, kind in kinds.items():
        raw = env_vars.get(f"MULLAMA_{name.upper()}")
        if raw is not None:
            from_env[name] = _BOOL_WORDS.get(raw.strip().lower(), raw) if kind == "bool" else raw
    if "hf_token" not in from_env and env_vars.get("HF_TOKEN"):
        from_env["hf_token"] = env_vars["HF_TOKEN"]
    where = {name: f"MULLAMA_{name.upper()}" for name in from_env}
    where.update({name: name for name in given})
    config_dir = given.get("config_dir") or from_env.get("config_dir") or default_config_dir()
    config_dir = Path(os.path.expanduser(config_dir))
    from_file = _file_values(config_dir)
    for name in from_file:
        where.setdefault(name, f"{name} in {config_dir / SETTINGS_FILE}")
    values = {**from_file, **from_env, **given}
    try:
        return msgspec.convert(values, Settings, strict=False, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        raise ValueError(_setting_error(exc, values, where)) from None


def _setting_error(
    exc: msgspec.ValidationError, values: dict[str, Any], where: dict[str, str]
) -> str:
    """``MULLAMA_HTTP_PORT must be an integer, got 'x'`` from msgspec's ``... - at `$.http_port```."""
    message, _, path = str(exc).rpartition(" - at `$.")
    name = path.rstrip("`")
    if name not in values:
        return str(exc)
    kind = {"int": int, "float": float, "bool": bool, "Path": Path}.get(
        Settings.__annotations__[name]
    )
    wanted = _KIND_WORDS.get(kind, "") if kind else ""
    what = f"must be {wanted}" if wanted else message.lower()
    return f"{where.get(name, name)} {what}, got {values[name]!r}"
