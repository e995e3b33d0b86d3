"""Paths and settings: the one place that knows where things live.

Every setting has an environment override named ``MULLAMA_<FIELD>`` (upper case),
read when :func:`load_settings` runs; explicit keyword overrides win over the
environment. Nothing here imports anything heavy, so the CLI stays quick.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class Settings:
    cache_dir: Path = field(default_factory=default_cache_dir)
    config_dir: Path = field(default_factory=default_config_dir)
    data_dir: Path = field(default_factory=default_data_dir)
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


def _convert(kind: type, raw: str, name: str):
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"MULLAMA_{name.upper()} must be true or false, got {raw!r}")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"MULLAMA_{name.upper()} must be an integer, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"MULLAMA_{name.upper()} must be a number, got {raw!r}") from None
    if kind is Path:
        return Path(os.path.expanduser(raw))
    return raw


_FIELD_TYPES = {
    "Path": Path,
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
}


def load_settings(env: dict[str, str] | None = None, **overrides) -> Settings:
    """Defaults, then ``MULLAMA_*`` environment variables, then ``overrides``."""
    env = os.environ if env is None else env
    values = {}
    for f in dataclasses.fields(Settings):
        raw = env.get(f"MULLAMA_{f.name.upper()}")
        if raw is not None:
            values[f.name] = _convert(_FIELD_TYPES[str(f.type)], raw, f.name)
    if "hf_token" not in values and env.get("HF_TOKEN"):
        values["hf_token"] = env["HF_TOKEN"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
