"""Model references (FROM) and content digests (DIGEST)."""

from __future__ import annotations

import re
from typing import Literal

_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_PATH_PREFIXES = ("/", "./", "../", "~")


def from_ref_kind(ref: str) -> Literal["hf", "path", "name"]:
    """Classify a FROM reference: `hf:owner/repo...`, a filesystem path, or a model name/alias."""
    if ref.startswith("hf:"):
        return "hf"
    if ref.startswith(_PATH_PREFIXES) or ref.lower().endswith(".gguf"):
        return "path"
    return "name"


def normalise_digest(text: str) -> str:
    """Return `sha256:<64 lowercase hex>` for `sha256:<hex>` or bare hex; ValueError otherwise."""
    hex_part = text[len("sha256:") :] if text.lower().startswith("sha256:") else text
    if not _HEX64.match(hex_part):
        raise ValueError(f'expects sha256:<64 hex digits>, got "{text}"')
    return "sha256:" + hex_part.lower()
