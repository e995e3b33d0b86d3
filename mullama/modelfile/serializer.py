"""Render a ModelfileSpec back to canonical Modelfile text that parses to an equal spec."""

from __future__ import annotations

from collections.abc import Mapping

from .parameters import PARAMETER_TYPES
from .spec import CAPABILITY_NAMES, THINKING_KEYS, TOOLFORMAT_KEYS, ModelfileSpec

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def to_modelfile(spec: ModelfileSpec) -> str:
    """Canonical Modelfile text for `spec`; `parse_modelfile(to_modelfile(s)) == s`."""
    sections = [
        [f"FROM {quote_value(spec.from_ref)}"],
        [f"ADAPTER {quote_value(path)}" for path in spec.adapters],
        _parameter_lines(spec.parameters),
        _optional("TEMPLATE", spec.template),
        _optional("SYSTEM", spec.system),
        [f"MESSAGE {role} {quote_value(content)}" for role, content in spec.messages],
        _runtime_lines(spec),
        _keyed_lines("THINKING", spec.thinking, THINKING_KEYS),
        _keyed_lines("TOOLFORMAT", spec.toolformat, TOOLFORMAT_KEYS),
        _keyed_lines("CAPABILITY", spec.capabilities, CAPABILITY_NAMES),
        _optional("LICENSE", spec.license)
        + _optional("AUTHOR", spec.author)
        + _optional("DIGEST", spec.digest),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


def quote_value(value: str) -> str:
    """The shortest form of `value` that the parser reads back verbatim."""
    if value and not value.startswith('"') and not any(char.isspace() for char in value):
        return value
    if "\n" in value and '"""' not in value and not value.endswith('"') and "\r" not in value:
        return f'"""{value}"""'
    return '"' + "".join(_ESCAPES.get(char, char) for char in value) + '"'


def _format_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return quote_value(str(value))


def _optional(directive: str, value: str | None) -> list[str]:
    return [] if value is None else [f"{directive} {quote_value(value)}"]


def _parameter_lines(parameters: dict[str, object]) -> list[str]:
    unknown = sorted(set(parameters) - set(PARAMETER_TYPES))
    if unknown:
        raise ValueError(f"cannot serialize unknown parameter(s): {', '.join(unknown)}")
    lines: list[str] = []
    for name in PARAMETER_TYPES:
        if name not in parameters:
            continue
        value = parameters[name]
        values = value if name == "stop" and isinstance(value, (list, tuple)) else [value]
        lines.extend(f"PARAMETER {name} {_format_scalar(value)}" for value in values)
    return lines


def _runtime_lines(spec: ModelfileSpec) -> list[str]:
    lines = []
    if spec.gpu_layers is not None:
        lines.append(f"GPU_LAYERS {spec.gpu_layers}")
    if spec.flash_attention is not None:
        lines.append(f"FLASH_ATTENTION {_format_scalar(spec.flash_attention)}")
    if spec.rpc is not None:
        lines.append(f"RPC {','.join(spec.rpc) or 'none'}")
    if spec.tensor_split:
        lines.append(f"TENSOR_SPLIT {','.join(_format_scalar(x) for x in spec.tensor_split)}")
    if spec.vision_projector is not None:
        lines.append(f"VISION_PROJECTOR {quote_value(spec.vision_projector)}")
    return lines


def _keyed_lines(directive: str, values: Mapping[str, object], keys: tuple[str, ...]) -> list[str]:
    return [f"{directive} {key} {_format_scalar(values[key])}" for key in keys if key in values]
