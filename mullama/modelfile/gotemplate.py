"""Go `text/template` subset as Ollama uses it for TEMPLATE: parse once, render many times."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

from .template_exec import execute
from .template_funcs import BUILTINS, LAZY_FUNCTIONS
from .template_lexer import TemplateError
from .template_nodes import (
    ActionNode,
    BranchNode,
    ChainNode,
    CommandNode,
    FieldNode,
    ListNode,
    PipeNode,
    VariableNode,
)
from .template_parser import parse_template

__all__ = ["Template", "TemplateError", "render_template"]

_FUNCTION_NAMES = frozenset(BUILTINS) | frozenset(LAZY_FUNCTIONS)


class Template:
    """A parsed template. Raises TemplateError (with `line`) on syntax errors."""

    def __init__(self, source: str, *, _tree: ListNode | None = None) -> None:
        self.source = source
        self.tree = _tree if _tree is not None else parse_template(source, _FUNCTION_NAMES)

    def render(self, data: object) -> str:
        """Execute with `data` as dot; dict keys are fields (`.Role` reads key "Role")."""
        return execute(self.tree, data, BUILTINS)

    def references_field(self, name: str) -> bool:
        """True if any field chain (`.X`, `$.X`, `$v.X`, `(…).X`) names `name`."""
        return any(name in _idents(node) for node in _iter_nodes(self.tree))

    def truncated_after_field(self, name: str) -> Template:
        """A copy with everything after the first action printing field `name` removed.

        Mirrors Ollama, which renders the last turn with the template cut after `.Response`
        so that generation continues from there.
        """
        tree = copy.deepcopy(self.tree)
        _Truncator(name).list(tree)
        return Template(self.source, _tree=tree)


def render_template(text: str, data: object) -> str:
    """Parse and render `text` with `data` in one step."""
    return Template(text).render(data)


def _idents(node: object) -> tuple[str, ...]:
    return node.idents if isinstance(node, (FieldNode, VariableNode, ChainNode)) else ()


def _iter_nodes(node: object) -> Iterator[object]:
    """Every node of the tree, depth first."""
    yield node
    children: Sequence[object] = []
    if isinstance(node, ListNode):
        children = node.nodes
    elif isinstance(node, ActionNode):
        children = [node.pipe]
    elif isinstance(node, BranchNode):
        children = [node.pipe, node.body] + ([node.else_body] if node.else_body else [])
    elif isinstance(node, PipeNode):
        children = node.cmds
    elif isinstance(node, CommandNode):
        children = node.args
    elif isinstance(node, ChainNode):
        children = [node.node]
    for child in children:
        yield from _iter_nodes(child)


class _Truncator:
    """Ollama's deleteNode walk: keep nodes up to and including the first `.name` field."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cut = False

    def list(self, node: ListNode) -> None:
        kept = []
        for child in node.nodes:
            if self.cut:
                break
            if self.keep(child):
                kept.append(child)
        node.nodes = kept

    def keep(self, node: object) -> bool:
        if isinstance(node, BranchNode):
            self.list(node.body)
            if node.else_body is not None:
                self.list(node.else_body)
        elif isinstance(node, ActionNode):
            return self.pipe(node.pipe)
        return True

    def pipe(self, pipe: PipeNode) -> bool:
        """Drop arguments and commands after the cut; False if nothing is left."""
        commands = []
        for command in pipe.cmds:
            args = []
            for arg in command.args:
                if self.cut:
                    break
                args.append(arg)
                self.cut = isinstance(arg, FieldNode) and self.name in arg.idents
            if args:
                command.args = args
                commands.append(command)
        pipe.cmds = commands
        return bool(commands)
