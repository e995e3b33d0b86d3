"""Model references and store names.

A reference is what a user types to name a model:

* an alias or created model, ``llama3.2:1b`` (``name`` alone means ``name:latest``);
* a Hugging Face repository, ``hf:owner/repo``, optionally with a quantization
  (``hf:owner/repo:Q4_K_M``, case-insensitive) or an exact file
  (``hf:owner/repo:file.gguf``), and a revision on any form (``…@abc123``);
  Ollama's ``hf.co/owner/repo:QUANT`` spelling is accepted too;
* a path to a ``.gguf`` file.

Store names (what ``create``/``cp`` accept) can never escape the store: they are
checked by :func:`validate_name` and turned into file names by :func:`name_to_filename`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mullama.engine.api import InvalidRequest

DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 250

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_REPO_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_REVISION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}$")
_QUANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HF_PREFIXES = ("hf:", "hf.co/", "huggingface.co/", "https://huggingface.co/", "https://hf.co/")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference. ``key`` is the store name the model is kept under."""

    kind: str  # "name" (alias or created model) | "hf" | "path"
    raw: str
    key: str = ""  # canonical store name ("" for paths)
    repo: str = ""
    quant: str = ""  # upper case
    file: str = ""
    revision: str = ""
    path: Path | None = None

    @property
    def is_hf(self) -> bool:
        return self.kind == "hf"

    def with_revision(self, revision: str) -> ModelRef:
        return hf_ref(self.repo, quant=self.quant, file=self.file, revision=revision)


def _bad(ref: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"invalid model reference {ref!r}: {why}", param="model")


def _check_common(text: str, what: str) -> None:
    if not text or not text.strip():
        raise InvalidRequest(f"{what} must not be empty", param="model")
    if len(text) > MAX_NAME_LENGTH * 4:
        raise _bad(text[:40] + "…", "too long")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise _bad(text, "control characters (including NUL) are not allowed")


def is_path_like(ref: str) -> bool:
    """True when ``ref`` names a file rather than a model."""
    if ref.startswith(_HF_PREFIXES):
        return False
    if ref.startswith(("/", "./", "../", "~", ".\\", "..\\")) or ref in (".", ".."):
        return True
    if re.match(r"^[A-Za-z]:[\\/]", ref):  # a Windows drive
        return True
    return ref.lower().endswith(".gguf")


def parse_ref(ref: str, *, base_dir: str | Path | None = None) -> ModelRef:
    """Parse any model reference; raises InvalidRequest when it is malformed."""
    if not isinstance(ref, str):
        raise InvalidRequest("model reference must be a string", param="model")
    _check_common(ref, "model reference")
    ref = ref.strip()
    if is_path_like(ref):
        path = Path(ref).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        return ModelRef(kind="path", raw=ref, path=path)
    for prefix in _HF_PREFIXES:
        if ref.startswith(prefix):
            return _parse_hf(ref, ref[len(prefix) :], ollama_style=prefix != "hf:")
    key = normalize_name(ref)
    return ModelRef(kind="name", raw=ref, key=key)


def _parse_hf(raw: str, body: str, *, ollama_style: bool) -> ModelRef:
    revision = ""
    if "@" in body:
        body, revision = body.rsplit("@", 1)
        if not _REVISION.match(revision) or ".." in revision.split("/"):
            raise _bad(raw, f"bad revision {revision!r}")
    selector = ""
    if ":" in body:
        body, selector = body.split(":", 1)
    parts = body.split("/")
    if len(parts) != 2 or not all(_REPO_PART.match(p) for p in parts) or ".." in parts:
        raise _bad(raw, "expected owner/repo")
    repo = "/".join(parts)
    quant = file = ""
    if selector:
        if selector.lower().endswith(".gguf"):
            segs = selector.split("/")
            if any(s in ("", ".", "..") for s in segs) or "\\" in selector:
                raise _bad(raw, f"bad file name {selector!r}")
            file = selector
        elif ollama_style and selector.lower() == DEFAULT_TAG:
            quant = ""
        elif _QUANT.match(selector):
            quant = selector.upper()
        else:
            raise _bad(raw, f"bad quantization {selector!r}")
    return hf_ref(repo, quant=quant, file=file, revision=revision, raw=raw)


def hf_ref(
    repo: str, *, quant: str = "", file: str = "", revision: str = "", raw: str = ""
) -> ModelRef:
    """Build the canonical reference for a Hugging Face repository."""
    key = f"hf:{repo}"
    if file:
        key += f":{file}"
    elif quant:
        key += f":{quant.upper()}"
    if revision:
        key += f"@{revision}"
    return ModelRef(
        kind="hf",
        raw=raw or key,
        key=key,
        repo=repo,
        quant=quant.upper(),
        file=file,
        revision=revision,
    )


def split_name(name: str) -> tuple[str, str]:
    """``'llama3.2:1b'`` -> ``('llama3.2', '1b')``; the tag defaults to ``latest``."""
    model, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        return name, DEFAULT_TAG
    return model, tag


def validate_name(name: str) -> str:
    """Check a store name (``[namespace/]model[:tag]``) and return its canonical form.

    Names may not be absolute, contain ``..`` segments, backslashes, NUL or other
    control characters, or anything besides letters, digits, ``._-`` in each segment.
    """
    if not isinstance(name, str):
        raise InvalidRequest("model name must be a string", param="model")
    _check_common(name, "model name")
    if name != name.strip():
        raise InvalidRequest(f"invalid model name {name!r}: surrounding whitespace", param="model")
    if "\\" in name:
        raise InvalidRequest(
            f"invalid model name {name!r}: backslashes are not allowed", param="model"
        )
    if name.startswith("/") or (re.match(r"^[A-Za-z]:", name) and "/" in name[:3]):
        raise InvalidRequest(
            f"invalid model name {name!r}: absolute paths are not allowed", param="model"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidRequest(
            f"invalid model name: longer than {MAX_NAME_LENGTH} characters", param="model"
        )
    model, tag = split_name(name)
    segments = model.split("/")
    if len(segments) > 3:
        raise InvalidRequest(f"invalid model name {name!r}: too many '/' segments", param="model")
    for seg in segments:
        if seg in ("", ".", ".."):
            raise InvalidRequest(
                f"invalid model name {name!r}: empty, '.' or '..' segment", param="model"
            )
        if not _SEGMENT.match(seg):
            raise InvalidRequest(
                f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' "
                "(each part starting with a letter, digit or '_')",
                param="model",
            )
    if not _TAG.match(tag) or tag in (".", ".."):
        raise InvalidRequest(f"invalid model name {name!r}: bad tag {tag!r}", param="model")
    return f"{model}:{tag}"


def normalize_name(name: str) -> str:
    """Canonical form of a model name or hf reference (``name`` -> ``name:latest``)."""
    name = name.strip()
    if name.startswith(_HF_PREFIXES):
        return parse_ref(name).key
    return validate_name(name)


def same_name(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def name_to_filename(key: str) -> str:
    """A store name as one safe file name: lower case, everything but ``[a-z0-9._-]``
    percent-encoded, so it can never contain a path separator or be ``.``/``..``."""
    out = []
    for ch in key.lower():
        if ch.isascii() and (ch.isalnum() or ch in "._-"):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    encoded = "".join(out)
    if encoded in ("", ".", "..") or encoded.startswith("."):
        encoded = "%2E" + encoded[1:] if encoded.startswith(".") else "%00empty"
    return encoded


def filename_to_name(filename: str) -> str:
    """Inverse of :func:`name_to_filename` (up to case)."""
    from urllib.parse import unquote

    return unquote(filename)
