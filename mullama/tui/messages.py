"""Messages named for what happened; screens and the app handle them with ``@on``."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from ..engine.api import Engine


@dataclass
class EngineConnected(Message):
    engine: Engine
    mode: str  # "local" | "remote"


@dataclass
class EngineFailed(Message):
    error: str


class DaemonLost(Message):
    """The attached daemon stopped answering."""


class DaemonReconnected(Message):
    """The daemon answers again after being lost."""


@dataclass
class ModelsChanged(Message):
    """A model was pulled, created, copied or deleted."""

    what: str
    name: str


@dataclass
class DefaultModelChanged(Message):
    name: str


@dataclass
class ChatRequested(Message):
    """Someone asked to chat with a model (Models or Dashboard quick action)."""

    model: str
