"""Character-level reading of Modelfile text: words, quoted values and positions."""

from __future__ import annotations

import bisect

from .spec import ModelfileError

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_INLINE_SPACE = " \t"


class Scanner:
    """A cursor over Modelfile text that reports errors with line and column."""

    def __init__(self, text: str) -> None:
        self.text = text.replace("\r\n", "\n")
        self.pos = 0
        self._line_starts = [0] + [i + 1 for i, c in enumerate(self.text) if c == "\n"]

    def line_of(self, offset: int) -> int:
        """1-based line number of `offset`."""
        return bisect.bisect_right(self._line_starts, offset)

    def error(self, offset: int, message: str) -> ModelfileError:
        """A ModelfileError located at `offset`."""
        line = self.line_of(offset)
        column = offset - self._line_starts[line - 1] + 1
        return ModelfileError(line, column, message)

    def next_statement(self) -> bool:
        """Skip blank lines and `#` comments; True if a directive follows."""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "#":
                self._skip_to_line_end()
            elif char.isspace():
                self.pos += 1
            else:
                return True
        return False

    def read_word(self) -> tuple[str, int]:
        """Read a run of non-space characters; returns (word, offset)."""
        start = self.pos
        while self.pos < len(self.text) and not self.text[self.pos].isspace():
            self.pos += 1
        return self.text[start : self.pos], start

    def read_argument(self, what: str, expected: str) -> tuple[str, int]:
        """Read the bare word after a directive (a parameter name, role, key...)."""
        self._skip_inline_space()
        if self._at_line_end():
            raise self.error(self.pos, f"{what} expects {expected}")
        return self.read_word()

    def read_value(self, what: str) -> tuple[str, int]:
        """Read the value that ends a directive: \"\"\"…\"\"\", "…" or the rest of the line."""
        self._skip_inline_space()
        start = self.pos
        if self._at_line_end():
            raise self.error(start, f"{what} expects a value")
        if self.text.startswith('"""', start):
            value = self._read_triple_quoted(what)
        elif self.text[start] == '"':
            value = self._read_double_quoted(what)
        else:
            self._skip_to_line_end()
            value = self.text[start : self.pos].strip()
            if not value:
                raise self.error(start, f"{what} expects a value")
            return value, start
        self._expect_line_end(what)
        return value, start

    def _read_triple_quoted(self, what: str) -> str:
        start = self.pos
        end = self.text.find('"""', start + 3)
        if end < 0:
            raise self.error(start, f'{what}: unterminated """ (no closing """ before end of file)')
        self.pos = end + 3
        return self.text[start + 3 : end]

    def _read_double_quoted(self, what: str) -> str:
        start, text, chars = self.pos, self.text, []
        index = start + 1
        while index < len(text) and text[index] not in '"\n':
            if text[index] == "\\":
                escaped = _ESCAPES.get(text[index + 1 : index + 2])
                if escaped is None:
                    bad = text[index : index + 2].rstrip("\n")
                    raise self.error(
                        index,
                        f'{what}: unknown escape "{bad}" in quoted value '
                        '(use \\" \\\\ \\n \\t or \\r)',
                    )
                chars.append(escaped)
                index += 2
            else:
                chars.append(text[index])
                index += 1
        if index >= len(text) or text[index] != '"':
            raise self.error(start, f'{what}: unterminated quoted value (missing closing ")')
        self.pos = index + 1
        return "".join(chars)

    def _expect_line_end(self, what: str) -> None:
        self._skip_inline_space()
        if not self._at_line_end():
            raise self.error(self.pos, f"{what}: unexpected text after the closing quote")

    def _skip_inline_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _INLINE_SPACE:
            self.pos += 1

    def _skip_to_line_end(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end

    def _at_line_end(self) -> bool:
        return self.pos >= len(self.text) or self.text[self.pos] == "\n"
