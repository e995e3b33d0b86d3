"""Recursive-descent parser building the template tree from tokens, Go text/template style."""

from __future__ import annotations

from collections.abc import Container

from .template_lexer import TemplateError, Token, tokenize
from .template_nodes import (
    ActionNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    LiteralNode,
    NilNode,
    PipeNode,
    TextNode,
    VariableNode,
)

_OPERAND_END = ("PIPE", "CLOSE", "RPAREN")


def parse_template(source: str, functions: Container[str]) -> ListNode:
    """Parse `source`; `functions` are the names callable in the template."""
    return _Parser(tokenize(source), functions).parse()


class _Parser:
    def __init__(self, tokens: list[Token], functions: Container[str]) -> None:
        self.tokens = tokens
        self.index = 0
        self.functions = functions
        self.variables = ["$"]
        self.range_depth = 0

    # -- token helpers -------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def expect(self, kind: str, context: str) -> Token:
        token = self.next()
        if token.kind != kind:
            raise TemplateError(token.line, f"unexpected {_describe(token)} in {context}")
        return token

    # -- lists and control structures ----------------------------------
    def parse(self) -> ListNode:
        body, terminator = self.parse_list()
        if terminator is not None:
            raise TemplateError(terminator.line, f"unexpected {{{{{terminator.value}}}}}")
        return body

    def parse_list(self) -> tuple[ListNode, Token | None]:
        """Nodes up to EOF or an {{end}}/{{else}} (returned as the terminator)."""
        nodes: list[object] = []
        while True:
            token = self.next()
            if token.kind == "EOF":
                return ListNode(nodes), None
            if token.kind == "TEXT":
                nodes.append(TextNode(token.text))
                continue
            keyword = self.peek()
            if keyword.kind == "KEYWORD" and keyword.value in ("end", "else"):
                self.next()
                if keyword.value == "end":
                    self.expect("CLOSE", "end")
                return ListNode(nodes), keyword
            nodes.append(self.parse_action())

    def parse_action(self) -> object:
        token = self.peek()
        if token.kind != "KEYWORD":
            pipe = self.pipeline("command")
            self.expect("CLOSE", "command")
            return ActionNode(token.line, pipe)
        self.next()
        if token.value in ("if", "with", "range"):
            return self.parse_control(token.value, token.line)
        if token.value in ("break", "continue"):
            if not self.range_depth:
                raise TemplateError(token.line, f"{{{{{token.value}}}}} outside {{{{range}}}}")
            self.expect("CLOSE", token.value)
            return BreakNode(token.line) if token.value == "break" else ContinueNode(token.line)
        raise TemplateError(token.line, f"{{{{{token.value}}}}} is not supported")

    def parse_control(self, kind: str, line: int) -> BranchNode:
        saved_variables = len(self.variables)
        pipe = self.pipeline(kind)
        self.expect("CLOSE", kind)
        self.range_depth += kind == "range"
        body, terminator = self.parse_list()
        self.range_depth -= kind == "range"
        else_body = None
        if terminator is not None and terminator.value == "else":
            else_body = self.parse_else(kind)
        elif terminator is None:
            raise TemplateError(line, f"unexpected EOF: {{{{{kind}}}}} has no matching {{{{end}}}}")
        del self.variables[saved_variables:]
        return BranchNode(kind, line, pipe, body, else_body)

    def parse_else(self, kind: str) -> ListNode:
        """After {{else: either `else if`/`else with` chaining, or a plain else list up to {{end}}."""
        chained = self.peek()
        if chained.kind == "KEYWORD" and chained.value == kind and kind in ("if", "with"):
            self.next()
            return ListNode([self.parse_control(kind, chained.line)])
        self.expect("CLOSE", "else")
        else_body, terminator = self.parse_list()
        if terminator is None or terminator.value != "end":
            line = terminator.line if terminator else self.peek().line
            raise TemplateError(
                line, f"expected {{{{end}}}} to close {{{{{kind}}}}} after {{{{else}}}}"
            )
        return else_body

    # -- pipelines -------------------------------------------------------
    def pipeline(self, context: str) -> PipeNode:
        line = self.peek().line
        decl, is_assign = self.declarations(context)
        commands = [self.command()]
        while self.peek().kind == "PIPE":
            self.next()
            commands.append(self.command())
        if not commands[0].args:
            raise TemplateError(line, f"missing value for {context}")
        for command in commands[1:]:
            if not command.args:
                raise TemplateError(line, "missing command after |")
        return PipeNode(line, decl, is_assign, commands)

    def declarations(self, context: str) -> tuple[list[str], bool]:
        """Leading `$x :=`, `$x =` or (in range) `$i, $e :=`."""
        names: list[str] = []
        while self.peek().kind == "VAR":
            follower = self.peek(1).kind
            if follower in ("DECLARE", "ASSIGN"):
                names.append(self.next().text)
                is_assign = self.next().kind == "ASSIGN"
                self.register(names, is_assign)
                return names, is_assign
            if follower != "COMMA" or context != "range" or names:
                break
            names.append(self.next().text)
            self.next()
        if names:
            raise TemplateError(
                self.peek().line,
                f"range can only initialize variables with := or = after {names[0]},",
            )
        return [], False

    def register(self, names: list[str], is_assign: bool) -> None:
        for name in names:
            if is_assign and name not in self.variables:
                raise TemplateError(self.peek().line, f"undefined variable: {name}")
            self.variables.append(name)

    def command(self) -> CommandNode:
        args: list[object] = []
        while self.peek().kind not in _OPERAND_END and self.peek().kind != "EOF":
            token = self.peek()
            if args and not token.space_before:
                raise TemplateError(token.line, f"unexpected {_describe(token)} in operand")
            args.append(self.operand())
        return CommandNode(args)

    def operand(self) -> object:
        token = self.next()
        if token.kind == "FIELD":
            return FieldNode((token.text, *self.field_chain()))
        if token.kind == "VAR":
            if token.value not in self.variables:
                raise TemplateError(token.line, f"undefined variable: {token.value}")
            return VariableNode(token.text, self.field_chain())
        if token.kind == "LPAREN":
            pipe = self.pipeline("parenthesized pipeline")
            self.expect("RPAREN", "parenthesized pipeline")
            chain = self.field_chain()
            return ChainNode(pipe, chain) if chain else pipe
        node = self.simple_term(token)
        if self.peek().kind == "FIELD" and not self.peek().space_before:
            raise TemplateError(token.line, f"unexpected . after term {_describe(token)}")
        return node

    def simple_term(self, token: Token) -> object:
        if token.kind == "IDENT":
            if token.value not in self.functions:
                raise TemplateError(token.line, f'function "{token.value}" not defined')
            return IdentifierNode(token.text)
        if token.kind in ("STRING", "NUMBER", "BOOL"):
            return LiteralNode(token.value)
        if token.kind == "DOT":
            return DotNode()
        if token.kind == "NIL":
            return NilNode()
        raise TemplateError(token.line, f"unexpected {_describe(token)} in operand")

    def field_chain(self) -> tuple[str, ...]:
        idents: list[str] = []
        while self.peek().kind == "FIELD" and not self.peek().space_before:
            idents.append(self.next().text)
        return tuple(idents)


def _describe(token: Token) -> str:
    if token.kind == "CLOSE":
        return "}}"
    if token.kind == "EOF":
        return "EOF"
    if token.kind == "KEYWORD":
        return f"keyword {token.value!r}"
    if token.kind == "FIELD":
        return f"field .{token.value}"
    return (
        f"{token.kind.lower()} {token.value!r}" if token.value is not None else token.kind.lower()
    )
