"""What the store tells about a model: ModelInfo, capabilities, its ModelfileSpec."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from mullama.engine.api import ModelInfo
from mullama.engine.gguf_info import GGUFError, GGUFHeader, read_header

from .manifest import Manifest

if TYPE_CHECKING:
    from mullama.modelfile import ModelfileSpec


def gguf_summary(header: GGUFHeader) -> dict[str, Any]:
    s = header.summary()
    tmpl = header.chat_template
    s["template_tools"] = "tools" in tmpl
    s["template_thinking"] = "<think>" in tmpl or "enable_thinking" in tmpl or "reasoning" in tmpl
    return s


def summary_of(path: Path) -> dict[str, Any]:
    """gguf_summary of the file at ``path``; empty when it cannot be read."""
    try:
        return gguf_summary(read_header(path))
    except (GGUFError, OSError):
        return {}


def capabilities_of(
    summary: dict[str, Any],
    spec_caps: dict[str, Any] | None,
    registry_caps: dict[str, bool],
    has_projector: bool,
    thinking: dict[str, Any] | None = None,
) -> dict[str, bool]:
    """What a model can do: from its GGUF (template), its alias, then its Modelfile (the
    THINKING directive, then CAPABILITY, which has the last word)."""
    kind = summary.get("model_kind") or ("embedding" if summary.get("is_embedding") else "")
    embedding = kind == "embedding"
    rerank = kind == "rerank"
    caps = {
        "completion": not (embedding or rerank),
        "embedding": embedding,
        "rerank": rerank,
        "vision": has_projector,
        "tools": bool(summary.get("template_tools")),
        "thinking": bool(summary.get("template_thinking")),
        "json": not (embedding or rerank),
    }
    caps.update({k: bool(v) for k, v in registry_caps.items()})
    declared = thinking or {}
    if "enabled" in declared:  # as the engine decides whether the model thinks
        caps["thinking"] = bool(declared["enabled"])
    elif declared.get("start"):
        caps["thinking"] = True
    caps.update({k: bool(v) for k, v in (spec_caps or {}).items()})
    # images need a projector: a tag or CAPABILITY line without one does not make vision (a
    # CAPABILITY vision false still hides one)
    caps["vision"] = has_projector and caps["vision"]
    return caps


def info_of(m: Manifest) -> ModelInfo:
    summary = m.gguf
    reg = m.registry
    modelfile = m.modelfile or {}
    family = reg.family or summary.get("architecture", "")
    arch = summary.get("architecture", "")
    families = [f for f in dict.fromkeys([family, arch]) if f]
    return ModelInfo(
        name=m.name,
        size=m.size,
        digest=m.digest,
        modified_at=m.modified_at,
        kind=m.kind,
        family=family,
        families=families,
        parameter_size=summary.get("parameter_size", ""),
        quantization=summary.get("quantization") or (m.hub.quant if m.hub else ""),
        source=m.source,
        capabilities=capabilities_of(
            summary,
            modelfile.get("capabilities") or {},
            reg.capabilities or {},
            m.projector is not None,
            modelfile.get("thinking") or {},
        ),
    )


def spec_of(manifest: Manifest) -> ModelfileSpec | None:
    """The ModelfileSpec a created model was made with, or what its alias gives a pulled one."""
    from mullama.modelfile import ModelfileSpec

    if manifest.modelfile:
        return ModelfileSpec.from_dict(manifest.modelfile)
    defaults = manifest.defaults
    if defaults is UNSET or not defaults.given():
        return None
    return ModelfileSpec(
        from_ref=manifest.source or manifest.name,
        parameters=copy.deepcopy(defaults.parameters or {}),
        system=defaults.system or None,
        template=defaults.template or None,
        license=defaults.license or None,
        capabilities=dict(defaults.capabilities or {}),
    )
