"""Parse Modelfile / Mullamafile text into a ModelfileSpec."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from .parameters import (
    PARAMETER_TYPES,
    convert_parameter,
    parse_bool,
    parse_int,
    unknown_parameter,
)
from .placement import parse_endpoints, parse_split
from .refs import normalise_digest
from .scanner import Scanner
from .spec import (
    CAPABILITY_NAMES,
    MESSAGE_ROLES,
    THINKING_KEYS,
    TOOLFORMAT_KEYS,
    TOOLFORMAT_STYLES,
    ModelfileError,
    ModelfileSpec,
)

_T = TypeVar("_T")


def parse_modelfile(text: str) -> ModelfileSpec:
    """Parse a Modelfile; raises ModelfileError with line and column on any mistake."""
    scanner = Scanner(text)
    builder = _SpecBuilder(scanner)
    while scanner.next_statement():
        word, offset = scanner.read_word()
        handler = _DIRECTIVES.get(word.upper())
        if handler is None:
            raise scanner.error(
                offset, f'unknown directive "{word}"; expected one of {", ".join(_DIRECTIVES)}'
            )
        handler(builder, word.upper(), offset)
    return builder.finish()


class _SpecBuilder:
    """Applies directives one by one to a spec under construction."""

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.spec = ModelfileSpec(from_ref="")
        self.from_line: int | None = None

    def finish(self) -> ModelfileSpec:
        if self.from_line is None:
            raise ModelfileError(
                1, 1, "missing FROM: a Modelfile needs exactly one FROM naming the base model"
            )
        return self.spec

    def value(self, what: str) -> str:
        return self.scanner.read_value(what)[0]

    def converted(self, what: str, convert: Callable[[str], _T]) -> _T:
        """Read a value and convert it, reporting failures at the value's position."""
        text, offset = self.scanner.read_value(what)
        try:
            return convert(text)
        except ValueError as exc:
            raise self.scanner.error(offset, f"{what} {exc}") from None

    def keyed(self, directive: str, keys: tuple[str, ...]) -> str:
        """Read and check the key word of THINKING / TOOLFORMAT / CAPABILITY."""
        expected = "one of " + ", ".join(keys)
        word, offset = self.scanner.read_argument(directive, expected)
        if word.lower() not in keys:
            raise self.scanner.error(offset, f'{directive} expects {expected}, got "{word}"')
        return word.lower()

    def from_(self, directive: str, offset: int) -> None:
        line = self.scanner.line_of(offset)
        if self.from_line is not None:
            raise self.scanner.error(
                offset,
                f"FROM given twice (first on line {self.from_line}); a Modelfile has exactly one FROM",
            )
        reference, value_offset = self.scanner.read_value(directive)
        if not reference:
            raise self.scanner.error(
                value_offset, "FROM expects a model reference, got an empty string"
            )
        self.from_line = line
        self.spec.from_ref = reference

    def parameter(self, directive: str, offset: int) -> None:
        name, name_offset = self.scanner.read_argument(directive, "a parameter name and a value")
        if name not in PARAMETER_TYPES:
            raise self.scanner.error(name_offset, f"PARAMETER {unknown_parameter(name)}")
        value = self.converted(f"PARAMETER {name}", lambda text: convert_parameter(name, text))
        if name == "stop":
            stops = self.spec.parameters.setdefault("stop", [])
            assert isinstance(stops, list) and isinstance(value, list)  # stop is a list[str]
            stops.extend(value)
        else:
            self.spec.parameters[name] = value

    def message(self, directive: str, offset: int) -> None:
        expected = "a role (" + ", ".join(MESSAGE_ROLES) + ") and content"
        role, role_offset = self.scanner.read_argument(directive, expected)
        if role.lower() not in MESSAGE_ROLES:
            raise self.scanner.error(
                role_offset, f'MESSAGE role must be one of {", ".join(MESSAGE_ROLES)}, got "{role}"'
            )
        role = role.lower()
        self.spec.messages.append((role, self.value(f"MESSAGE {role}")))

    def license(self, directive: str, offset: int) -> None:
        text = self.value(directive)
        previous = self.spec.license
        self.spec.license = text if previous is None else f"{previous}\n\n{text}"

    def thinking(self, directive: str, offset: int) -> None:
        key = self.keyed(directive, THINKING_KEYS)
        convert = parse_bool if key == "enabled" else str
        self.spec.thinking[key] = self.converted(f"THINKING {key}", convert)

    def toolformat(self, directive: str, offset: int) -> None:
        key = self.keyed(directive, TOOLFORMAT_KEYS)
        convert = _tool_style if key == "style" else str
        self.spec.toolformat[key] = self.converted(f"TOOLFORMAT {key}", convert)

    def capability(self, directive: str, offset: int) -> None:
        name = self.keyed(directive, CAPABILITY_NAMES)
        self.spec.capabilities[name] = self.converted(f"CAPABILITY {name}", parse_bool)


def _tool_style(text: str) -> str:
    if text.lower() not in TOOLFORMAT_STYLES:
        raise ValueError(f'expects one of {", ".join(TOOLFORMAT_STYLES)}, got "{text}"')
    return text.lower()


def _setter(
    attribute: str, convert: Callable[[str], object] = str
) -> Callable[[_SpecBuilder, str, int], None]:
    """A handler storing one converted value; a repeated directive overrides (as in Ollama)."""

    def handle(builder: _SpecBuilder, directive: str, offset: int) -> None:
        setattr(builder.spec, attribute, builder.converted(directive, convert))

    return handle


def _append_adapter(builder: _SpecBuilder, directive: str, offset: int) -> None:
    builder.spec.adapters.append(builder.value(directive))


_DIRECTIVES: dict[str, Callable[[_SpecBuilder, str, int], None]] = {
    "FROM": _SpecBuilder.from_,
    "PARAMETER": _SpecBuilder.parameter,
    "SYSTEM": _setter("system"),
    "TEMPLATE": _setter("template"),
    "MESSAGE": _SpecBuilder.message,
    "ADAPTER": _append_adapter,
    "GPU_LAYERS": _setter("gpu_layers", parse_int),
    "FLASH_ATTENTION": _setter("flash_attention", parse_bool),
    "RPC": _setter("rpc", parse_endpoints),
    "TENSOR_SPLIT": _setter("tensor_split", parse_split),
    "VISION_PROJECTOR": _setter("vision_projector"),
    "LICENSE": _SpecBuilder.license,
    "AUTHOR": _setter("author"),
    "DIGEST": _setter("digest", normalise_digest),
    "THINKING": _SpecBuilder.thinking,
    "TOOLFORMAT": _SpecBuilder.toolformat,
    "CAPABILITY": _SpecBuilder.capability,
}
