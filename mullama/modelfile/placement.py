"""Where a model's layers go: the RPC workers (``HOST:PORT`` list) and the tensor split.

Shared by the Modelfile's ``RPC`` and ``TENSOR_SPLIT`` directives, the ``rpc_servers`` and
``tensor_split`` settings and ``mullama worker --listen``, so all of them accept and refuse
the same text with the same words.
"""

from __future__ import annotations

import math

# ``RPC none`` in a Modelfile: this model stays local even when the daemon has rpc_servers
LOCAL_WORDS = ("none", "local", "off")


def describe(text: str) -> str:
    return f'"{text}"'


def parse_endpoint(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as (host, port), or ValueError saying what is wrong."""
    value = text.strip()
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port:
        raise ValueError(
            f"expects HOST:PORT (for example 192.168.1.20:50052), got {describe(text)}"
        )
    if host.startswith("[") or ":" in host:
        raise ValueError(f"expects an IPv4 address or a host name before the port, got {host!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expects a port between 1 and 65535, got {port!r}")
    if any(c.isspace() for c in host):
        raise ValueError(f"expects a host name without spaces, got {host!r}")
    return host, int(port)


def parse_endpoints(text: str) -> list[str]:
    """A comma-separated list of ``HOST:PORT`` workers (each checked, duplicates refused);
    ``none``/``local``/``off`` or an empty text is the empty list (no workers)."""
    value = text.strip()
    if value.lower() in LOCAL_WORDS or not value:
        return []
    out: list[str] = []
    for part in value.split(","):
        host, port = parse_endpoint(part)
        endpoint = f"{host}:{port}"
        if endpoint in out:
            raise ValueError(f"names the worker {endpoint} twice")
        out.append(endpoint)
    return out


def parse_split(text: str) -> list[float]:
    """Comma-separated non-negative proportions, one per device (``3,1``: three quarters of the
    layers on the first); empty text is no split (llama.cpp splits by free memory)."""
    value = text.strip()
    if not value:
        return []
    out: list[float] = []
    for part in value.split(","):
        try:
            number = float(part)
        except ValueError:
            raise ValueError(f"expects numbers separated by commas, got {describe(text)}") from None
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"expects proportions of zero or more, got {part.strip()!r}")
        out.append(number)
    if not any(out):
        raise ValueError(f"expects at least one proportion above zero, got {describe(text)}")
    return out
