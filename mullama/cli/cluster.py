"""``mullama cluster config``: a LiteLLM proxy ``config.yaml`` for several Mullama daemons.

Each backend's ``/v1/models`` says what it serves; every (model, backend) pair becomes one
deployment of the model's group, so LiteLLM routes a model only to the daemons that have it.
A model missing on some backends is kept (on those that have it) with a warning on stderr,
or left out with ``--common``. The router settings are LiteLLM's: least-busy routing, retries
on another deployment, a cooldown for a failing one, background health checks that take an
unhealthy deployment out of the pool.

The YAML is written here (PyYAML is no dependency of Mullama): every string is a JSON string,
which YAML reads as the same double-quoted scalar, so no name can change the document's shape.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mullama.config import Settings

from .output import CliError, info

TIMEOUT = 10.0
# LiteLLM's router: retries go to another deployment; a deployment failing more than
# allowed_fails times a minute cools down for cooldown_time seconds; background health checks
# every health_check_interval seconds take a failing one out of the pool before a request
# finds it (the cooldown outlasts the interval, as LiteLLM advises)
ROUTER_SETTINGS = {
    "routing_strategy": "least-busy",
    "num_retries": 3,
    "allowed_fails": 1,
    "cooldown_time": 60,
    "enable_health_check_routing": True,
    # a conversation that sends a session id (x-litellm-session-id, or an agent's own session
    # header) stays on the daemon holding its prompt cache; a Responses API request with
    # previous_response_id goes to the daemon that stored that response
    "optional_pre_call_checks": ["session_affinity", "responses_api_deployment_check"],
}
# the proxy refuses to start without a master key (the key its clients send): from its
# environment, never written here
GENERAL_SETTINGS = {
    "master_key": "os.environ/LITELLM_MASTER_KEY",
    "background_health_checks": True,
    "health_check_interval": 30,
}
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# plain words YAML 1.1 (PyYAML's) reads as booleans or null
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def add_parser(sub: Any) -> None:
    """``cluster config``'s arguments (called by cli/main.py's parser)."""
    p = sub.add_parser("cluster", help="put a router in front of several daemons")
    csub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = csub.add_parser(
        "config",
        help="print a LiteLLM proxy config.yaml for the models these daemons serve",
        description="Ask each daemon for its models (/v1/models) and print a LiteLLM proxy "
        "config.yaml: one deployment per model and daemon, least-busy routing, retries, "
        "cooldowns and background health checks. Run it with `litellm --config FILE`.",
    )
    c.add_argument(
        "--backend",
        "-b",
        action="append",
        required=True,
        metavar="URL",
        help="a daemon's HTTP address, e.g. http://node1:8080 (repeat for each)",
    )
    c.add_argument("--format", choices=["litellm"], default="litellm", help="(default litellm)")
    key = c.add_mutually_exclusive_group()
    key.add_argument("--api-key", metavar="KEY", help="the daemons' API key (written as is)")
    key.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="read the daemons' API key from $VAR; the config says os.environ/VAR",
    )
    c.add_argument(
        "--common",
        action="store_true",
        help="only the models every backend serves (default: each model on the backends "
        "that have it, with a warning for the others)",
    )


@dataclass
class Backend:
    url: str  # scheme://host:port, no trailing slash
    models: dict[str, dict[str, bool]] = field(default_factory=dict)  # id -> capabilities


def backend_url(raw: str) -> str:
    """``http://node1:8080`` from ``node1:8080``, ``http://node1:8080/`` or ``…/v1``."""
    text = raw.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(
            f"{raw!r} is not a daemon's HTTP address",
            "Give it as http://HOST:PORT (https:// behind a TLS proxy).",
            code=2,
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return f"{parts.scheme}://{parts.netloc}{path}"


def fetch_models(url: str, api_key: str, client: Any) -> dict[str, dict[str, bool]]:
    """{model id: capabilities} from the daemon at ``url``; a CliError naming it otherwise."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        r = client.get(f"{url}/v1/models", headers=headers)
    except httpx.HTTPError as exc:
        raise CliError(
            f"backend {url} does not answer: {exc or type(exc).__name__}",
            "Check the address, and that its daemon listens beyond loopback "
            "(`mullama serve --http-addr 0.0.0.0`).",
        ) from None
    if r.status_code == 401:
        raise CliError(
            f"backend {url} refused the API key (401)",
            "Give the daemons' key with --api-key or --api-key-env.",
        )
    try:
        r.raise_for_status()
        cards = r.json()["data"]
        return {str(card["id"]): dict(card.get("capabilities") or {}) for card in cards}
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise CliError(
            f"backend {url} gave no model list at /v1/models: "
            f"HTTP {r.status_code}, {str(exc) or type(exc).__name__}",
            "Is it a Mullama daemon?",
        ) from None


def _model_info(capabilities: dict[str, bool]) -> dict[str, Any]:
    """LiteLLM's model_info: the mode picks the request its health check sends; a chat
    check asks for one token (LiteLLM's default, 16, is a real generation on a CPU node)."""
    if capabilities.get("embedding"):
        return {"mode": "embedding"}
    return {"mode": "chat", "health_check_max_tokens": 1}


def litellm_config(backends: Sequence[Backend], api_key: str, common: bool) -> dict[str, Any]:
    """The config as plain data; warnings for models not on every backend go to stderr."""
    names: list[str] = []
    for backend in backends:
        names += [name for name in backend.models if name not in names]
    on_all = [n for n in names if all(n in b.models for b in backends)]
    partial = [n for n in names if n not in on_all]
    if common:
        names = on_all
    for name in partial:
        where = ", ".join(b.url for b in backends if name in b.models)
        fate = "left out (--common)" if common else f"routed only to {where}"
        info(f"Warning: {name} is not on every backend: {fate}")
    if not names:
        raise CliError(
            "the backends serve no model in common" if partial else "the backends serve no models",
            "Create or pull the same models on every node (`mullama pull NAME`).",
        )
    model_list = []
    for name in names:
        for backend in backends:
            if name not in backend.models:
                continue
            model_list.append(
                {
                    "model_name": name,
                    "litellm_params": {
                        # LiteLLM's OpenAI-compatible provider; it needs some key, and a
                        # daemon without one ignores it
                        "model": f"openai/{name}",
                        "api_base": f"{backend.url}/v1",
                        "api_key": api_key or "none",
                    },
                    "model_info": _model_info(backend.models[name]),
                }
            )
    config: dict[str, Any] = {"model_list": model_list, "router_settings": dict(ROUTER_SETTINGS)}
    # `gemma` reaches the group `gemma:latest`, as it reaches the model on a daemon
    aliases = {
        n.removesuffix(":latest"): n for n in names if n.endswith(":latest") and n[:-7] not in names
    }
    if aliases:
        config["router_settings"]["model_group_alias"] = aliases
    config["general_settings"] = dict(GENERAL_SETTINGS)
    return config


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block YAML for dicts, lists and scalars; strings as JSON strings (see the module doc)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = ""
        for key, item in value.items():
            name = str(key)
            plain = _PLAIN_KEY.fullmatch(name) and name.lower() not in _YAML_WORDS
            head = f"{pad}{name if plain else json.dumps(name)}:"
            if isinstance(item, (dict, list)) and item:
                out += head + "\n" + to_yaml(item, indent + 2)
            else:
                out += head + " " + to_yaml(item).lstrip()
        return out
    if isinstance(value, list):
        if not value:
            return pad + "[]\n"
        out = ""
        for item in value:
            body = to_yaml(item, indent + 2)
            out += pad + "- " + body[indent + 2 :]
        return out
    if value is None:
        return pad + "null\n"
    return pad + json.dumps(value) + "\n"


def cmd_cluster(args: argparse.Namespace, settings: Settings) -> int:
    import os

    import httpx

    api_key = args.api_key or ""
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env, "")
        if not api_key:
            raise CliError(f"${args.api_key_env} is not set", code=2)
    urls: list[str] = []
    for raw in args.backend:
        url = backend_url(raw)
        if url in urls:
            raise CliError(f"backend {url} is given twice", code=2)
        urls.append(url)
    with httpx.Client(timeout=TIMEOUT) as client:
        backends = [Backend(url, fetch_models(url, api_key, client)) for url in urls]
    written_key = f"os.environ/{args.api_key_env}" if args.api_key_env else api_key
    config = litellm_config(backends, written_key, args.common)
    header = (
        "# LiteLLM proxy config for "
        + ", ".join(urls)
        + "\n# made by `mullama cluster config`; run it with"
        + "\n#   LITELLM_MASTER_KEY=sk-... litellm --config config.yaml"
        + "\n# (its clients send that key)\n"
    )
    print(header + to_yaml(config), end="")
    return 0
