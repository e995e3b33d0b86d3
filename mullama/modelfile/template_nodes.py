"""Parse-tree nodes of the Go text/template subset."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ListNode:
    nodes: list[object] = field(default_factory=list)


@dataclass
class TextNode:
    text: str


@dataclass
class FieldNode:
    """`.A.B`: field chain starting at dot."""

    idents: tuple[str, ...]


@dataclass
class VariableNode:
    """`$x.A.B`: a variable (`$` is the root data) and an optional field chain."""

    name: str
    idents: tuple[str, ...] = ()


@dataclass
class ChainNode:
    """`(pipeline).A.B`: fields applied to a parenthesised pipeline."""

    node: object
    idents: tuple[str, ...]


@dataclass
class IdentifierNode:
    """A function name."""

    name: str


@dataclass
class DotNode:
    pass


@dataclass
class NilNode:
    pass


@dataclass
class LiteralNode:
    """A string, number or bool constant."""

    value: object


@dataclass
class CommandNode:
    args: list[object]


@dataclass
class PipeNode:
    line: int
    decl: list[str]
    is_assign: bool
    cmds: list[CommandNode]


@dataclass
class ActionNode:
    line: int
    pipe: PipeNode


@dataclass
class BranchNode:
    """`if`, `with` or `range` (`kind`), with its body and optional else list."""

    kind: str
    line: int
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass
class BreakNode:
    line: int


@dataclass
class ContinueNode:
    line: int
