"""llama.cpp's RPC backend through ctypes: a worker's server, and a model's remote devices.

llama-cpp-python built with ``CMAKE_ARGS=-DGGML_RPC=ON`` carries ``libggml-rpc``; its functions
are reached through the backend registry of ``libggml.so.0``, the very copy ``libllama`` links
(the wheel also holds a ``libggml.so``, a second copy: devices registered in *its* registry are
never seen by llama.cpp, which then silently keeps every layer local).

Everything here blocks. A worker that cannot be reached, or that goes away while a model uses
it, makes llama.cpp abort the whole process: models on RPC workers therefore run in a child
process (:mod:`.remote_runner`), and :func:`probe` checks a worker before llama.cpp sees it.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import llama_cpp

from ..modelfile.placement import parse_endpoints, parse_split
from .api import ModelLoadError

if TYPE_CHECKING:
    from ..modelfile.spec import ModelfileSpec

# ggml-backend.h: enum ggml_backend_dev_type
DEVICE_CPU, DEVICE_GPU, DEVICE_IGPU = 0, 1, 2
# ggml-rpc.cpp: RPC_CMD_HELLO, the 24 bytes of connection capabilities, the reply's size
_HELLO, _CAPS = 14, 24
_HELLO_REPLY = 4 + _CAPS
PROTOCOL_MAJOR = 7  # ggml-rpc.h RPC_PROTO_MAJOR_VERSION of the llama.cpp this release pins

NO_RPC = (
    "this llama-cpp-python was built without llama.cpp's RPC backend; reinstall it with "
    'CMAKE_ARGS="-DGGML_RPC=ON" pip install --force-reinstall --no-cache-dir --no-deps '
    "llama-cpp-python=={version} (scripts/setup.sh does this)"
)


class RpcError(RuntimeError):
    """A worker cannot serve (unreachable, busy, another protocol) or RPC is not built in."""


@dataclass(frozen=True)
class Placement:
    """A model's layers on these workers (all layers offloaded), split by ``tensor_split``."""

    servers: tuple[str, ...]
    tensor_split: tuple[float, ...] = field(default=())


def placement_for(spec: ModelfileSpec | None, servers: str, tensor_split: str) -> Placement | None:
    """Where a model goes: its Modelfile's RPC and TENSOR_SPLIT, else the daemon's settings
    (``rpc_servers``, ``tensor_split``); None when it stays in the daemon's process."""
    chosen = spec.rpc if spec is not None and spec.rpc is not None else parse_endpoints(servers)
    if not chosen:
        return None
    split = spec.tensor_split if spec is not None and spec.tensor_split else None
    return Placement(
        tuple(chosen), tuple(split if split is not None else parse_split(tensor_split))
    )


_ggml: ctypes.CDLL | None = None


def _library_file() -> Path:
    lib = Path(llama_cpp.__file__).parent / "lib"
    names = {"darwin": ("libggml.0.dylib", "libggml.dylib"), "win32": ("ggml.dll",)}
    for name in names.get(sys.platform, ("libggml.so.0",)):
        if (lib / name).exists():
            return lib / name
    raise RpcError(f"no libggml in {lib}: an unusual llama-cpp-python build")


def ggml() -> ctypes.CDLL:
    """``libggml`` as libllama links it, with the registry functions typed."""
    global _ggml
    if _ggml is None:
        lib = ctypes.CDLL(str(_library_file()))
        vp, cp = ctypes.c_void_p, ctypes.c_char_p
        signatures: dict[str, tuple[type | None, list[type]]] = {
            "ggml_backend_reg_by_name": (vp, [cp]),
            "ggml_backend_reg_get_proc_address": (vp, [vp, cp]),
            "ggml_backend_register": (None, [vp]),
            "ggml_backend_dev_count": (ctypes.c_size_t, []),
            "ggml_backend_dev_get": (vp, [ctypes.c_size_t]),
            "ggml_backend_dev_type": (ctypes.c_int, [vp]),
            "ggml_backend_dev_name": (cp, [vp]),
            "ggml_backend_dev_description": (cp, [vp]),
            "ggml_backend_dev_backend_reg": (vp, [vp]),
            "ggml_backend_reg_name": (cp, [vp]),
        }
        for name, (result, args) in signatures.items():
            function = getattr(lib, name)
            function.restype, function.argtypes = result, args
        _ggml = lib
    return _ggml


def missing() -> str | None:
    """Why this llama.cpp cannot use RPC, or None when it can."""
    try:
        lib = ggml()
    except (OSError, RpcError) as exc:
        return f"cannot load llama.cpp's libggml: {exc}"
    if lib.ggml_backend_reg_by_name(b"RPC"):
        return None
    return NO_RPC.format(version=getattr(llama_cpp, "__version__", "VERSION"))


def _rpc_function(name: str, prototype: type) -> Any:
    reason = missing()
    if reason:
        raise RpcError(reason)
    lib = ggml()
    address = lib.ggml_backend_reg_get_proc_address(
        lib.ggml_backend_reg_by_name(b"RPC"), name.encode()
    )
    if not address:
        raise RpcError(f"llama.cpp's RPC backend has no {name}")
    return prototype(address)


# ------------------------------------------------------------------ the client side


def probe(endpoint: str, timeout: float = 10.0) -> None:
    """Say hello to the worker at ``endpoint`` as llama.cpp will, so that what would make it
    abort (nobody listening, a worker busy with another client, another protocol version)
    becomes an :class:`RpcError` saying so."""
    host, _, port = endpoint.rpartition(":")
    try:
        conn = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as exc:
        raise RpcError(
            f"cannot reach the RPC worker at {endpoint} ({exc.strerror or exc}); "
            "is `mullama worker` running there?"
        ) from None
    with conn:
        try:
            conn.sendall(bytes([_HELLO]) + struct.pack("<Q", _CAPS) + bytes(_CAPS))
            reply = _receive(conn, 8 + _HELLO_REPLY)
        except TimeoutError:
            raise RpcError(
                f"the RPC worker at {endpoint} accepted the connection but did not answer in "
                f"{timeout:g}s: a worker serves one model of one daemon at a time, and this one "
                "is busy (or it is not a llama.cpp RPC worker)"
            ) from None
        except OSError as exc:
            raise RpcError(f"the RPC worker at {endpoint} hung up ({exc})") from None
    (size,) = struct.unpack("<Q", reply[:8])
    major, minor, patch = reply[8:11]
    if size != _HELLO_REPLY or major != PROTOCOL_MAJOR:
        raise RpcError(
            f"the worker at {endpoint} speaks RPC protocol {major}.{minor}.{patch}, this "
            f"llama.cpp {PROTOCOL_MAJOR}.x: run the same Mullama and llama-cpp-python on both"
        )


def _receive(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the connection closed before the hello reply")
        data += chunk
    return data


def add_servers(servers: tuple[str, ...] | list[str]) -> list[str]:
    """Register each worker's devices with llama.cpp (probe first: llama.cpp aborts on one it
    cannot reach); returns the names of the devices now available, RPC ones first."""
    add = _rpc_function(
        "ggml_backend_rpc_add_server", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)
    )
    lib = ggml()
    for endpoint in servers:
        probe(endpoint)
        reg = add(endpoint.encode())
        if not reg:
            raise RpcError(f"the RPC worker at {endpoint} has no devices")
        lib.ggml_backend_register(reg)
    return [name for name, _ in devices()]


def devices() -> list[tuple[str, str]]:
    """(name, description) of every device llama.cpp has registered."""
    lib = ggml()
    out = []
    for i in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(i)
        out.append(
            (
                (lib.ggml_backend_dev_name(dev) or b"").decode(),
                (lib.ggml_backend_dev_description(dev) or b"").decode(),
            )
        )
    return out


def can_offload() -> bool:
    """Whether llama.cpp has a device to offload layers to: a GPU, or an RPC worker's devices
    registered in this process. (``llama_supports_gpu_offload`` also says yes for a build
    that merely has the RPC backend, with nothing to offload to.)"""
    try:
        lib = ggml()
    except (OSError, RpcError):
        return bool(llama_cpp.llama_supports_gpu_offload())
    kinds = (DEVICE_GPU, DEVICE_IGPU)
    count: int = lib.ggml_backend_dev_count()
    return any(
        lib.ggml_backend_dev_type(lib.ggml_backend_dev_get(i)) in kinds for i in range(count)
    )


def check_placement(placement: Placement) -> None:
    """Refuse what llama.cpp would take badly: more proportions than it has device slots."""
    limit: int = llama_cpp.llama_max_devices()
    if len(placement.tensor_split) > limit:
        raise ModelLoadError(
            f"tensor_split has {len(placement.tensor_split)} proportions but llama.cpp takes at "
            f"most {limit} devices"
        )


# ------------------------------------------------------------------ the worker side


def local_devices(kind: str) -> list[int]:
    """The addresses of this machine's devices of ``kind`` ("cpu" or "gpu": every GPU)."""
    lib = ggml()
    wanted = {"cpu": (DEVICE_CPU,), "gpu": (DEVICE_GPU, DEVICE_IGPU)}[kind]
    found = []
    for i in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(i)
        if lib.ggml_backend_dev_type(dev) not in wanted:
            continue
        reg_name = lib.ggml_backend_reg_name(lib.ggml_backend_dev_backend_reg(dev)) or b""
        if reg_name.startswith(b"RPC"):  # never serve another worker's devices
            continue
        found.append(int(dev))
    if not found and kind == "gpu":
        raise RpcError(
            "this llama.cpp build has no GPU backend (reinstall llama-cpp-python with "
            'CMAKE_ARGS="-DGGML_RPC=ON -DGGML_CUDA=on", or the flag of your GPU); '
            "or use --device cpu"
        )
    if not found:
        raise RpcError("llama.cpp has no CPU device")
    return found


def serve(endpoint: str, threads: int, kind: str, cache_dir: str | None = None) -> None:
    """Serve this machine's ``kind`` devices at ``endpoint`` until the process ends (llama.cpp
    returns only when it cannot listen: that is an :class:`RpcError`)."""
    start = _rpc_function(
        "ggml_backend_rpc_start_server",
        ctypes.CFUNCTYPE(
            None,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_void_p),
        ),
    )
    found = local_devices(kind)
    array = (ctypes.c_void_p * len(found))(*found)
    start(endpoint.encode(), cache_dir.encode() if cache_dir else None, threads, len(found), array)
    raise RpcError(f"llama.cpp's RPC server stopped: could it listen on {endpoint}?")
