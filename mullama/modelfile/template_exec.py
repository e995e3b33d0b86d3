"""Executes a parsed template against Python data (dicts, lists, scalars) with Go semantics."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from .govalues import MISSING, GoStruct, format_value, kind_name, truth
from .template_funcs import LAZY_FUNCTIONS
from .template_lexer import TemplateError
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

_NO_FINAL = object()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def execute(tree: ListNode, data: object, functions: dict[str, Callable[..., object]]) -> str:
    """Render `tree` with `data` as both dot and `$`."""
    state = _State(data, functions)
    state.walk(data, tree)
    return "".join(state.output)


class _State:
    def __init__(self, data: object, functions: dict[str, Callable[..., object]]) -> None:
        self.functions = functions
        self.variables: list[list[object]] = [["$", data]]
        self.output: list[str] = []
        self.line = 1

    # -- variables -------------------------------------------------------
    def variable(self, name: str) -> object:
        for variable_name, value in reversed(self.variables):
            if variable_name == name:
                return value
        raise TemplateError(self.line, f"undefined variable: {name}")

    def assign(self, name: str, value: object) -> None:
        for variable in reversed(self.variables):
            if variable[0] == name:
                variable[1] = value
                return
        raise TemplateError(self.line, f"undefined variable: {name}")

    def pop_to(self, mark: int) -> None:
        del self.variables[mark:]

    # -- statements ------------------------------------------------------
    def walk(self, dot: object, node: object) -> None:
        if isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, TextNode):
            self.output.append(node.text)
        elif isinstance(node, ActionNode):
            self.line = node.line
            value = self.pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.output.append(format_value(value))
        elif isinstance(node, BranchNode):
            self.line = node.line
            self.walk_branch(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue

    def walk_branch(self, dot: object, node: BranchNode) -> None:
        mark = len(self.variables)
        try:
            value = self.pipeline(dot, node.pipe)
            if node.kind == "range":
                self.walk_range(dot, node, value)
            elif truth(value):
                self.walk(value if node.kind == "with" else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop_to(mark)

    def walk_range(self, dot: object, node: BranchNode, value: object) -> None:
        items = self.range_items(value)
        if not items:
            if node.else_body is not None:
                self.walk(dot, node.else_body)
            return
        names = node.pipe.decl
        mark = len(self.variables)
        for index, element in items:
            if names and node.pipe.is_assign:
                self.assign(names[-1], element)
                if len(names) > 1:
                    self.assign(names[0], index)
            elif names:
                self.variables[-1][1] = element
                if len(names) > 1:
                    self.variables[-2][1] = index
            try:
                self.walk(element, node.body)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                self.pop_to(mark)

    def range_items(self, value: object) -> list[tuple[object, object]]:
        if value is None or value is MISSING:
            return []
        if isinstance(value, (list, tuple)):
            return list(enumerate(value))
        if isinstance(value, dict) and not isinstance(value, GoStruct):
            return [(key, value[key]) for key in sorted(value)]
        if isinstance(value, int) and not isinstance(value, bool):
            return [(number, number) for number in range(value)]
        raise TemplateError(self.line, f"range can't iterate over {format_value(value)}")

    # -- expressions -----------------------------------------------------
    def pipeline(self, dot: object, pipe: PipeNode) -> object:
        value: object = _NO_FINAL
        for command in pipe.cmds:
            value = self.command(dot, command, value)
        for name in pipe.decl:
            if pipe.is_assign:
                self.assign(name, value)
            else:
                self.variables.append([name, value])
        return value

    def command(self, dot: object, command: CommandNode, final: object) -> object:
        first, args = command.args[0], command.args[1:]
        if isinstance(first, IdentifierNode):
            return self.call(dot, first.name, args, final)
        if args or final is not _NO_FINAL:
            raise TemplateError(
                self.line, f"can't give argument to non-function {_node_text(first)}"
            )
        if isinstance(first, NilNode):
            raise TemplateError(self.line, "nil is not a command")
        return self.operand(dot, first)

    def operand(self, dot: object, node: object) -> object:
        if isinstance(node, FieldNode):
            return self.fields(dot, node.idents)
        if isinstance(node, VariableNode):
            return self.fields(self.variable(node.name), node.idents)
        if isinstance(node, ChainNode):
            return self.fields(self.operand(dot, node.node), node.idents)
        if isinstance(node, PipeNode):
            mark = len(self.variables)
            try:
                return self.pipeline(dot, node)
            finally:
                self.pop_to(mark)
        if isinstance(node, DotNode):
            return dot
        if isinstance(node, LiteralNode):
            return node.value
        if isinstance(node, NilNode):
            return None
        assert isinstance(node, IdentifierNode)  # the parser makes no other operand
        return self.call(dot, node.name, [], _NO_FINAL)

    def fields(self, receiver: object, idents: tuple[str, ...]) -> object:
        for name in idents:
            if receiver is None or receiver is MISSING:
                return MISSING
            if not isinstance(receiver, dict):
                raise TemplateError(
                    self.line, f"can't evaluate field {name} in type {kind_name(receiver)}"
                )
            if isinstance(receiver, GoStruct) and name not in receiver:
                raise TemplateError(self.line, f"can't evaluate field {name} in type struct")
            receiver = receiver.get(name, MISSING)
        return receiver

    def call(self, dot: object, name: str, arg_nodes: list[object], final: object) -> object:
        if name in LAZY_FUNCTIONS:
            return self.call_lazy(dot, name, arg_nodes, final)
        args = [self.argument(dot, node) for node in arg_nodes]
        if final is not _NO_FINAL:
            args.append(_as_argument(final))
        function = self.functions[name]
        try:
            inspect.signature(function).bind(*args)
        except TypeError:
            raise TemplateError(
                self.line, f"wrong number of args for {name}: got {len(args)}"
            ) from None
        try:
            return function(*args)
        except (ValueError, TypeError) as exc:
            raise TemplateError(self.line, f"error calling {name}: {exc}") from None

    def call_lazy(self, dot: object, name: str, arg_nodes: list[object], final: object) -> object:
        """`and` / `or`: stop at the first falsy / truthy argument and return it."""
        thunks: list[Callable[[], object]] = [
            functools.partial(self.argument, dot, node) for node in arg_nodes
        ]
        if final is not _NO_FINAL:
            thunks.append(functools.partial(_as_argument, final))
        if len(thunks) < 2:
            raise TemplateError(
                self.line, f"wrong number of args for {name}: want at least 2 got {len(thunks)}"
            )
        value: object = None
        for thunk in thunks:
            value = thunk()
            if truth(value) == (name == "or"):
                return value
        return value

    def argument(self, dot: object, node: object) -> object:
        return _as_argument(self.operand(dot, node))


def _as_argument(value: object) -> object:
    """Missing values reach functions as nil, as in Go."""
    return None if value is MISSING else value


def _node_text(node: object) -> str:
    if isinstance(node, LiteralNode):
        return repr(node.value)
    if isinstance(node, FieldNode):
        return "." + ".".join(node.idents)
    if isinstance(node, VariableNode):
        return node.name + "".join("." + ident for ident in node.idents)
    return type(node).__name__.removesuffix("Node").lower()
