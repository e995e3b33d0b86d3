"""Tokenizer for the Go text/template subset: text runs and the tokens inside {{ }} actions."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

SPACE_CHARS = " \t\r\n"
KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}
)


class TemplateError(Exception):
    """A template failed to parse or execute; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"template line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Token:
    """One lexical item. `kind` is TEXT, OPEN, CLOSE or an action token kind."""

    kind: str
    value: object
    line: int
    space_before: bool = False

    @property
    def text(self) -> str:
        """The value of a token that carries a name or text (TEXT, FIELD, VAR, IDENT, KEYWORD)."""
        assert isinstance(self.value, str), f"{self.kind} token has no text"
        return self.value


_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)(?![\w.])"
)
_CHAR = re.compile(r"'(\\[^']*|[^\\'\n])'")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GO_ESCAPE = re.compile(
    r"\\(?:(?P<simple>[abfnrtv\\'\"])|x(?P<x>[0-9a-fA-F]{2})|u(?P<u>[0-9a-fA-F]{4})"
    r"|U(?P<U>[0-9a-fA-F]{8})|(?P<octal>[0-7]{3})|(?P<bad>.?))",
    re.S,
)
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}
_PUNCTUATION = {"|": "PIPE", ",": "COMMA", "(": "LPAREN", ")": "RPAREN", "=": "ASSIGN"}


def tokenize(source: str) -> list[Token]:
    """Split a template into tokens, applying {{- and -}} whitespace trimming."""
    return _Lexer(source).run()


def unquote_go_string(body: str, line: int) -> str:
    """Decode the escapes of a Go interpreted string literal (without its quotes)."""

    def replace(match: re.Match[str]) -> str:
        if match["simple"]:
            return _SIMPLE_ESCAPES[match["simple"]]
        if match["bad"] is not None:
            raise TemplateError(line, f"unknown escape sequence \\{match['bad']} in string literal")
        digits = match["x"] or match["u"] or match["U"]
        return chr(int(digits, 16) if digits else int(match["octal"], 8))

    return _GO_ESCAPE.sub(replace, body)


class _Lexer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.tokens: list[Token] = []
        self._line_starts = [0] + [i + 1 for i, c in enumerate(source) if c == "\n"]

    def line_at(self, offset: int) -> int:
        return bisect.bisect_right(self._line_starts, offset)

    def error(self, offset: int, message: str) -> TemplateError:
        return TemplateError(self.line_at(offset), message)

    def run(self) -> list[Token]:
        trim_leading = False
        while True:
            start = self.source.find("{{", self.pos)
            end = len(self.source) if start < 0 else start
            trim_trailing = start >= 0 and self._has_left_trim(start)
            self._emit_text(self.pos, end, trim_leading, trim_trailing)
            if start < 0:
                self.tokens.append(Token("EOF", None, self.line_at(len(self.source))))
                return self.tokens
            self.pos = start + (4 if trim_trailing else 2)
            trim_leading = self._lex_action(start)

    def _has_left_trim(self, start: int) -> bool:
        return self.source[start + 2 : start + 3] == "-" and self.source[
            start + 3 : start + 4
        ] in tuple(SPACE_CHARS)

    def _emit_text(self, start: int, end: int, trim_leading: bool, trim_trailing: bool) -> None:
        text = self.source[start:end]
        if trim_leading:
            text = text.lstrip(SPACE_CHARS)
        if trim_trailing:
            text = text.rstrip(SPACE_CHARS)
        if text:
            self.tokens.append(Token("TEXT", text, self.line_at(start)))

    def _at_right_delim(self) -> tuple[bool, bool]:
        """(at a closing delimiter, whether it carries a -}} trim marker)."""
        rest = self.source[self.pos : self.pos + 4]
        if len(rest) == 4 and rest[0] in SPACE_CHARS and rest[1:] == "-}}":
            return True, True
        return rest.startswith("}}"), False

    def _lex_action(self, open_offset: int) -> bool:
        """Lex one action; returns True if it ends with a -}} trim marker."""
        line = self.line_at(open_offset)
        if self.source.startswith("/*", self.pos):
            return self._lex_comment(open_offset)
        self.tokens.append(Token("OPEN", None, line))
        depth, space_before = 0, True
        while True:
            at_delim, trim = self._at_right_delim()
            if at_delim:
                if depth:
                    raise self.error(self.pos, "unclosed left paren")
                self.pos += 4 if trim else 2
                self.tokens.append(Token("CLOSE", None, self.line_at(self.pos)))
                return trim
            if self.pos >= len(self.source):
                raise self.error(open_offset, "unclosed action")
            if self.source[self.pos] in SPACE_CHARS:
                self.pos += 1
                space_before = True
                continue
            depth = self._lex_action_token(space_before, depth)
            space_before = False

    def _lex_comment(self, open_offset: int) -> bool:
        end = self.source.find("*/", self.pos + 2)
        if end < 0:
            raise self.error(open_offset, "unclosed comment")
        self.pos = end + 2
        at_delim, trim = self._at_right_delim()
        if not at_delim:
            raise self.error(self.pos, "comment ends before closing delimiter")
        self.pos += 4 if trim else 2
        return trim

    def _lex_action_token(self, space_before: bool, depth: int) -> int:
        source, start = self.source, self.pos
        char = source[start]
        line = self.line_at(start)

        def emit(kind: str, value: object, length: int) -> None:
            self.tokens.append(Token(kind, value, line, space_before))
            self.pos = start + length

        if source.startswith(":=", start):
            emit("DECLARE", None, 2)
        elif char in _PUNCTUATION:
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth < 0:
                raise self.error(start, "unexpected right paren")
            emit(_PUNCTUATION[char], char, 1)
        elif char == '"':
            self._lex_quoted(emit, start, line)
        elif char == "`":
            end = source.find("`", start + 1)
            if end < 0:
                raise self.error(start, "unterminated raw quoted string")
            emit("STRING", source[start + 1 : end], end + 1 - start)
        elif char == "'":
            self._lex_char(emit, start)
        elif char == "$":
            word = _WORD.match(source, start + 1)
            name = "$" + (word.group() if word else "")
            emit("VAR", name, len(name))
        elif number := _NUMBER.match(source, start):
            emit("NUMBER", self._number_value(number.group(), start), number.end() - start)
        elif char == ".":
            word = _WORD.match(source, start + 1)
            if word:
                emit("FIELD", word.group(), 1 + len(word.group()))
            else:
                emit("DOT", None, 1)
        elif word := _WORD.match(source, start):
            emit(*self._word_token(word.group()), len(word.group()))
        else:
            raise self.error(start, f"unrecognized character in action: {char!r}")
        return depth

    def _lex_quoted(self, emit: Callable[[str, object, int], None], start: int, line: int) -> None:
        index = start + 1
        while index < len(self.source) and self.source[index] not in '"\n':
            index += 2 if self.source[index] == "\\" else 1
        if index >= len(self.source) or self.source[index] != '"':
            raise self.error(start, "unterminated quoted string")
        emit("STRING", unquote_go_string(self.source[start + 1 : index], line), index + 1 - start)

    def _lex_char(self, emit: Callable[[str, object, int], None], start: int) -> None:
        match = _CHAR.match(self.source, start)
        if not match:
            raise self.error(start, "malformed character constant")
        text = unquote_go_string(match.group(1), self.line_at(start))
        if len(text) != 1:
            raise self.error(start, f"malformed character constant: {match.group()}")
        emit("NUMBER", ord(text), match.end() - start)

    def _number_value(self, text: str, offset: int) -> int | float:
        digits = text.replace("_", "")
        try:
            return int(digits, 8 if re.fullmatch(r"[+-]?0\d+", digits) else 0)
        except ValueError:
            pass
        if re.fullmatch(r"[+-]?\d+", digits) or digits.lstrip("+-")[:2].lower() in (
            "0x",
            "0o",
            "0b",
        ):
            raise self.error(offset, f"bad number syntax: {text!r}")
        return float(digits)

    @staticmethod
    def _word_token(word: str) -> tuple[str, object]:
        if word in ("true", "false"):
            return "BOOL", word == "true"
        if word == "nil":
            return "NIL", None
        if word in KEYWORDS:
            return "KEYWORD", word
        return "IDENT", word
