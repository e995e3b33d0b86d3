"""A persistent ggml CPU thread pool for a context, as llama-server attaches one.

Without one, ggml creates and joins its worker threads inside every ``llama_decode``. The pool
keeps them between steps; ``poll`` is how long (0-100) an idle worker spins before it sleeps.
llama-cpp-python binds neither ``llama_attach_threadpool`` nor the pool functions, so they are
bound here from the libraries its wheel ships.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import llama_cpp

log = logging.getLogger("mullama.llama")

GGML_MAX_N_THREADS = 512  # ggml.h


class _Params(ctypes.Structure):
    _fields_ = [("cpumask", ctypes.c_bool * GGML_MAX_N_THREADS), ("n_threads", ctypes.c_int),
                ("prio", ctypes.c_int), ("poll", ctypes.c_uint32), ("strict_cpu", ctypes.c_bool),
                ("paused", ctypes.c_bool)]


_api = None


def _bind():
    global _api
    if _api is None:
        lib_dir = Path(llama_cpp.__file__).parent / "lib"
        base = ctypes.CDLL(str(lib_dir / "libggml-base.so"))
        cpu = ctypes.CDLL(str(lib_dir / "libggml-cpu.so"))
        llama = llama_cpp.llama_cpp._lib
        base.ggml_threadpool_params_init.argtypes = [ctypes.POINTER(_Params), ctypes.c_int]
        base.ggml_threadpool_params_init.restype = None
        cpu.ggml_threadpool_new.argtypes = [ctypes.POINTER(_Params)]
        cpu.ggml_threadpool_new.restype = ctypes.c_void_p
        cpu.ggml_threadpool_free.argtypes = [ctypes.c_void_p]
        cpu.ggml_threadpool_free.restype = None
        llama.llama_attach_threadpool.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        llama.llama_attach_threadpool.restype = None
        llama.llama_detach_threadpool.argtypes = [ctypes.c_void_p]
        llama.llama_detach_threadpool.restype = None
        _api = (base, cpu, llama)
    return _api


class ThreadPool:
    """Worker threads attached to one context; :meth:`close` after the context is detached."""

    def __init__(self, ctx_ptr, n_threads: int, poll: int):
        base, self._cpu, self._llama = _bind()
        params = _Params()
        base.ggml_threadpool_params_init(ctypes.byref(params), n_threads)
        params.poll = max(0, min(poll, 100))
        self.ptr = self._cpu.ggml_threadpool_new(ctypes.byref(params))
        if not self.ptr:
            raise OSError(f"ggml could not start a pool of {n_threads} threads")
        self._ctx = ctx_ptr
        self._llama.llama_attach_threadpool(ctx_ptr, self.ptr, self.ptr)

    def close(self) -> None:
        if self.ptr:
            self._llama.llama_detach_threadpool(self._ctx)
            self._cpu.ggml_threadpool_free(self.ptr)
            self.ptr = None


def attach(ctx_ptr, n_threads: int, poll: int) -> ThreadPool | None:
    """A pool for the context, or None (ggml then makes threads per decode) where this build
    cannot give one."""
    try:
        return ThreadPool(ctx_ptr, n_threads, poll)
    except (OSError, AttributeError) as exc:
        log.warning("no persistent thread pool (%s): ggml starts threads per decode", exc)
        return None
