"""IPC over nng: the wire protocol, the daemon's server and the RemoteEngine client."""

from .client import RemoteEngine

__all__ = ["RemoteEngine"]
