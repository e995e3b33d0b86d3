"""What a web page must not do to the daemon: the Host and Origin checks, as Ollama makes them.

* **Host** (every request): a page on ``evil.example`` whose name is re-bound to 127.0.0.1
  (DNS rebinding) reaches the daemon with ``Host: evil.example`` and may read the answers. Only
  names no outsider controls are served: ``localhost`` and ``*.localhost``, IP addresses (a
  browser connects to exactly the address it shows, so an IP cannot be re-bound), this machine's
  host name, ``http_addr`` when it is a name, and the names in ``allowed_hosts`` (``*`` = any,
  ``*.example.com`` = its subdomains).
* **Origin** (POST, PUT, PATCH, DELETE): a browser names the page that sent a request in
  ``Origin``, and a page cannot hide or forge it. A request that changes something is refused
  when it comes from a page that is not this daemon (same origin), not on a loopback address and
  not in ``cors_origins`` (``*`` = any).
* **Content type** (the same methods, from browsers): without a CORS preflight a page can send
  only ``text/plain``, form or untyped bodies; JSON routes refuse those, so even a page on
  another loopback port cannot post a JSON body as text. Requests that did not come from a page
  (no ``Origin``, no ``Sec-Fetch-Site``: curl, SDKs) are not checked, because ``curl -d`` sends
  its JSON as a form and Ollama's own examples rely on it.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

from sanic import Request

from ..config import Settings

log = logging.getLogger("mullama.http")

CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPES = ("application/json",)
WILDCARD_ADDRS = {"", "0.0.0.0", "::", "[::]", "*"}


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def host_name(authority: str) -> str:
    """The name or address in a ``Host`` value (``[::1]:8080`` -> ``::1``), lower case."""
    value = authority.strip().lower().rstrip(".")
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback_name(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback_addr(addr: str) -> bool:
    """``http_addr`` binds loopback only (a wildcard or another address exposes the daemon)."""
    name = host_name(addr) if addr.startswith("[") else addr.strip().lower()
    return name not in WILDCARD_ADDRS and is_loopback_name(name)


class Guard:
    """The Host, Origin and content-type rules for one app's settings."""

    def __init__(self, settings: Settings) -> None:
        hosts = [h.lower() for h in comma_list(settings.allowed_hosts)]
        self.any_host = "*" in hosts
        self.suffixes = tuple(h[1:] for h in hosts if h.startswith("*."))
        self.names = {host_name(h) for h in hosts if not h.startswith("*")}
        self.names.add(socket.gethostname().lower())
        addr = settings.http_addr.strip().lower()
        if addr not in WILDCARD_ADDRS:
            self.names.add(host_name(addr))
        self.cors = set(comma_list(settings.cors_origins))

    # ------------------------------------------------------------ Host

    def host_allowed(self, authority: str | None) -> bool:
        if self.any_host or not authority:  # HTTP/1.0 sends no Host
            return True
        name = host_name(authority)
        return (
            name in self.names
            or is_loopback_name(name)
            or is_ip(name)
            or any(name.endswith(suffix) for suffix in self.suffixes)
        )

    def host_refusal(self, request: Request) -> str | None:
        host = request.headers.get("host")
        if self.host_allowed(host):
            return None
        return (
            f"the Host {host!r} is not served here (a guard against DNS rebinding): Mullama "
            "answers localhost, IP addresses and this machine's name; add other names to the "
            "allowed_hosts setting (MULLAMA_ALLOWED_HOSTS, comma separated)"
        )

    # ------------------------------------------------------------ Origin

    def cors_allows(self, origin: str) -> bool:
        return "*" in self.cors or origin in self.cors

    def same_origin(self, request: Request, origin: str) -> bool:
        parts = urlsplit(origin)
        host = request.headers.get("host", "")
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()

    def origin_refusal(self, request: Request) -> str | None:
        """Why a state-changing request from a page is refused, or None."""
        origin = request.headers.get("origin")
        if origin is None:
            # every browser sends Origin with a POST; Sec-Fetch-Site is the fallback
            if request.headers.get("sec-fetch-site", "").lower() != "cross-site":
                return None
            origin = "(another site)"
        elif (
            self.cors_allows(origin)
            or self.same_origin(request, origin)
            or (
                urlsplit(origin).scheme in ("http", "https")
                and is_loopback_name(host_name(urlsplit(origin).netloc))
            )
        ):
            return None
        return (
            f"requests from the web page at {origin} may not change anything here (a guard "
            "against cross-site requests): add that origin to the cors_origins setting "
            "(MULLAMA_CORS_ORIGINS) to allow it"
        )

    def websocket_allowed(self, request: Request) -> bool:
        """``/ui/ws`` from the daemon's own page or an origin in ``cors_origins``. No loopback
        exception: a websocket has no CORS, so another local page would get the whole TUI."""
        origin = request.headers.get("origin")
        return origin is None or self.cors_allows(origin) or self.same_origin(request, origin)

    # ------------------------------------------------------------ content type

    @staticmethod
    def content_type_refusal(request: Request) -> str | None:
        """Why a browser's body on a JSON route is refused (415), or None."""
        headers = request.headers
        if "origin" not in headers and "sec-fetch-site" not in headers:
            return None  # not a web page: curl -d sends JSON as a form, as Ollama allows
        ctype = headers.get("content-type", "").partition(";")[0].strip().lower()
        if ctype in JSON_TYPES or ctype.endswith("+json"):
            return None
        if not ctype and not request.body:
            return None
        return (
            f"{request.method} {request.path} takes a JSON body: send it with "
            f"Content-Type: application/json (got {ctype or 'no content type'})"
        )


def warn_if_exposed(settings: Settings) -> None:
    """A loud line when the HTTP API listens beyond loopback with no key."""
    if is_loopback_addr(settings.http_addr) or settings.api_key:
        return
    log.warning(
        "HTTP is listening on %s with no API key: anyone who can reach this address can run "
        "models and change or delete them. Set api_key (MULLAMA_API_KEY) or bind 127.0.0.1.",
        settings.http_addr,
    )
