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
from typing import Any, Literal, get_args, get_type_hints

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


def default_runtime_dir() -> Path:
    """Where the daemon's socket, PID file, lock and log go: ``$XDG_RUNTIME_DIR/mullama`` (a
    tmpfs only this user can enter, emptied at logout), else ``mullama-UID`` in the temp dir
    (as tmux does; created 0700 and refused when someone else made it first)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if not hasattr(os, "getuid"):
        return Path(xdg or os.environ.get("TEMP") or default_data_dir()) / APP
    if os.path.isabs(xdg):
        try:
            if os.stat(xdg).st_uid == os.getuid():
                return Path(xdg) / APP
        except OSError:
            pass
    return Path(os.environ.get("TMPDIR") or "/tmp") / f"{APP}-{os.getuid()}"


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    cache_dir: Path = msgspec.field(default_factory=default_cache_dir)
    config_dir: Path = msgspec.field(default_factory=default_config_dir)
    data_dir: Path = msgspec.field(default_factory=default_data_dir)
    bin: str = ""  # MULLAMA_BIN: the mullama executable auto-spawn starts
    hf_token: str = ""  # falls back to HF_TOKEN
    socket: str = ""  # empty: ipc://RUNTIME_DIR/mullama.sock
    log_file: Path = Path("")  # empty: RUNTIME_DIR/mullamad.log
    pid_file: Path = Path("")  # empty: RUNTIME_DIR/mullamad.pid
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
    # private (0700) home of the socket, PID file, spawn lock and log unless they are set
    runtime_dir: Path = msgspec.field(default_factory=default_runtime_dir)
    api_key_file: Path = Path("")  # a file (mode 0600) holding api_key; empty: none
    # --- security: HTTP host/origin guard ---
    allowed_hosts: str = (
        ""  # Host names served beyond localhost and IPs; comma separated, "*" = any
    )
    max_json_mb: int = 8  # JSON request bodies (capped by max_body_mb; blob uploads are unlimited)
    ui_max_sessions: int = 4  # concurrent /ui/ browser sessions, each one a TUI process
    # --- security: engine limits ---
    # the longest embedding input in tokens (also capped by the model's training context and
    # by its context, at least 512); a longer one is refused, or cut where truncation is asked
    embed_max_tokens: int = 8192
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
    # --- vision ---
    # each image a request carries (encoded size, and width x height once decoded); images
    # travel inside JSON bodies, so max_json_mb bounds them too
    vision_max_image_bytes: int = 20 * 2**20
    vision_max_image_pixels: int = 40_000_000
    vision_max_images: int = 16  # images in one request, all its messages together
    # fetch http(s) image URLs (OpenAI image_url, Anthropic url sources, Responses input_image):
    # off, since the daemon would then reach any address a client names
    vision_fetch_urls: bool = False
    vision_fetch_timeout: float = 10.0  # seconds for one image download
    # --- rpc ---
    # llama.cpp RPC workers (`mullama worker`), HOST:PORT comma separated: every model's layers
    # go to them unless its Modelfile says otherwise (RPC); such a model runs in a child process
    rpc_servers: str = ""
    tensor_split: str = ""  # proportions of the layers per RPC worker, e.g. "3,1"; empty: by memory
    # --- scale-out ---
    # "inference-extension": /metrics also gives the per-model gauges under vLLM's names, which
    # the Gateway API Inference Extension scrapes (vllm:num_requests_waiting, ...)
    metrics_aliases: Literal["", "inference-extension"] = ""
    # --- prompt cache ---
    # MiB of host memory for KV states of past prompts (all models together): a slot's state
    # is saved there before another request takes the slot, and a later prompt that starts
    # the same way restores it instead of evaluating it again. -1 = automatic (8192, at most
    # a tenth of the machine's memory), 0 = off
    prompt_cache_ram_mb: int = -1
    # MiB of disk for the states the memory tier evicts (0 = none): they are written to files
    # in prompt_cache_dir (empty: CACHE_DIR/prompt-cache, private to the user) and found
    # again, even after a restart; needs the memory tier
    prompt_cache_disk_mb: int = 0
    prompt_cache_dir: Path = Path("")

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
        if self.runtime_dir == Path(""):
            self.runtime_dir = default_runtime_dir()
        if not self.socket:
            self.socket = f"ipc://{self.runtime_dir / 'mullama.sock'}"
        if self.log_file == Path(""):
            self.log_file = self.runtime_dir / "mullamad.log"
        if self.pid_file == Path(""):
            self.pid_file = self.runtime_dir / "mullamad.pid"
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
        settings = msgspec.convert(values, Settings, strict=False, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        raise ValueError(_setting_error(exc, values, where)) from None
    if settings.api_key_file != Path(""):
        key = read_key_file(settings.api_key_file, where.get("api_key_file", "api_key_file"))
        if settings.api_key and settings.api_key != key:
            raise ValueError(
                f"{where.get('api_key', 'api_key')} and {where.get('api_key_file', 'api_key_file')} "
                "give different API keys: set one of them"
            )
        settings.api_key = key
    _check_placement(settings, where)
    return settings


def _check_placement(settings: Settings, where: dict[str, str]) -> None:
    """rpc_servers and tensor_split must parse (as a Modelfile's RPC and TENSOR_SPLIT do)."""
    if not (settings.rpc_servers or settings.tensor_split):
        return
    from mullama.modelfile.placement import parse_endpoints, parse_split

    for name, parse in (("rpc_servers", parse_endpoints), ("tensor_split", parse_split)):
        try:
            parse(getattr(settings, name))
        except ValueError as exc:
            raise ValueError(f"{where.get(name, name)} {exc}") from None


def read_key_file(path: Path, where: str = "api_key_file") -> str:
    """The API key in ``path``, refused (as ssh refuses a private key) when other users may
    read the file."""
    try:
        st = os.stat(path)
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: cannot read the API key file {path} ({exc})") from None
    if hasattr(os, "getuid") and st.st_mode & 0o077:
        raise ValueError(
            f"{where}: the API key file {path} is readable by other users "
            f"(mode {st.st_mode & 0o777:04o}); run `chmod 600 {path}`"
        )
    if hasattr(os, "getuid") and st.st_uid not in (os.getuid(), 0):
        raise ValueError(f"{where}: the API key file {path} belongs to another user")
    if not text:
        raise ValueError(f"{where}: the API key file {path} is empty")
    return text


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
    if message.startswith("Invalid enum value"):  # a Literal setting
        choices = get_args(get_type_hints(Settings)[name])
        what = "must be one of " + ", ".join(repr(c) for c in choices)
    return f"{where.get(name, name)} {what}, got {values[name]!r}"
