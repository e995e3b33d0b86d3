"""A thin, typed layer over llama.cpp's C API (through llama-cpp-python's ctypes bindings).

Only the runner thread of a model calls into a context; models are read-only after
loading and may be shared. Everything here is synchronous and blocking.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import llama_cpp
import numpy as np
import numpy.typing as npt

log = logging.getLogger("mullama.llama")

_backend_lock = threading.Lock()
_backend_ready = False

FLASH_ATTN_AUTO, FLASH_ATTN_DISABLED, FLASH_ATTN_ENABLED = -1, 0, 1
POOLING_UNSPECIFIED, POOLING_NONE, POOLING_MEAN = -1, 0, 1

# llama-cpp-python's functions are untyped for mypy (its ctypes_function decorator is), so the
# values they return are annotated here, with the types its own signatures name
LoraAdapter = llama_cpp.llama_adapter_lora_p


_verbose = False


def _log(level: int, text: bytes, user_data: int | None) -> None:
    # llama.cpp is chatty: pass errors through, everything else only when verbose
    if _verbose or level == GGML_LOG_LEVEL_ERROR:
        log.log(
            logging.ERROR if level == GGML_LOG_LEVEL_ERROR else logging.DEBUG,
            "%s",
            text.decode("utf-8", "replace").rstrip(),
        )


# a module global, so the C callback outlives every call that llama.cpp makes through it
_log_callback = llama_cpp.llama_log_callback(_log)

GGML_LOG_LEVEL_ERROR = 4  # ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5


def init_backend(verbose: bool | None = None) -> None:
    """Once per process: start llama.cpp's backend and route its log through ``logging``."""
    global _backend_ready, _verbose
    with _backend_lock:
        if verbose is not None:
            _verbose = verbose
        if not _backend_ready:
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _backend_ready = True


class LlamaError(RuntimeError):
    pass


class Model:
    """A loaded GGUF model: weights, vocabulary and metadata."""

    def _offloaded(self, requested: int) -> int:
        """The layers actually on a GPU: none when this llama.cpp build has no GPU backend
        (the request is then only logged), else the request capped at the model's layers."""
        if requested == 0:
            return 0
        from .rpc import can_offload

        if not can_offload():
            log.warning(
                "%d GPU layers requested, but this llama.cpp build has no GPU backend: "
                "running on the CPU (reinstall llama-cpp-python with CMAKE_ARGS, see the "
                "README)",
                requested,
            )
            return 0
        total: int = llama_cpp.llama_model_n_layer(self.ptr) + 1  # + the output layer
        return total if requested < 0 else min(requested, total)

    def __init__(
        self,
        path: str,
        *,
        gpu_layers: int = 0,
        use_mmap: bool = True,
        tensor_split: list[float] | tuple[float, ...] = (),
        vocab_only: bool = False,
    ) -> None:
        self._users = 0  # worker threads inside in_use(); close() waits for them
        self._users_done = threading.Condition()
        init_backend()
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = gpu_layers
        params.use_mmap = use_mmap
        params.vocab_only = vocab_only
        if tensor_split:  # proportions per device; llama.cpp reads llama_max_devices() floats
            split = (ctypes.c_float * llama_cpp.llama_max_devices())(*tensor_split)
            self._split = split  # llama.cpp reads it while loading: keep it alive until then
            params.tensor_split = split
        self.path = path
        self.ptr: llama_cpp.llama_model_p | None = llama_cpp.llama_model_load_from_file(
            path.encode(), params
        )
        if not self.ptr:
            raise LlamaError(
                f"llama.cpp could not load {path} (not a GGUF, corrupt, or unsupported)"
            )
        self.gpu_layers = self._offloaded(gpu_layers)
        self.vocab: llama_cpp.llama_vocab_p = llama_cpp.llama_model_get_vocab(self.ptr)
        self.n_vocab: int = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train: int = llama_cpp.llama_model_n_ctx_train(self.ptr)
        self.n_embd: int = llama_cpp.llama_model_n_embd(self.ptr)
        self.n_params: int = llama_cpp.llama_model_n_params(self.ptr)
        self.size: int = llama_cpp.llama_model_size(self.ptr)
        self.n_swa: int = llama_cpp.llama_model_n_swa(self.ptr)
        self.bos: int = llama_cpp.llama_vocab_bos(self.vocab)
        self.eos: int = llama_cpp.llama_vocab_eos(self.vocab)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self._piece_cache: dict[int, bytes] = {}
        self._eog_cache: dict[int, bool] = {}
        self.metadata = self._read_metadata()

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Keep the model from being freed while a worker thread tokenizes with it."""
        with self._users_done:
            if not self.ptr:
                raise LlamaError("the model was unloaded")
            self._users += 1
        try:
            yield
        finally:
            with self._users_done:
                self._users -= 1
                self._users_done.notify_all()

    def close(self) -> None:
        with self._users_done:
            self._users_done.wait_for(lambda: self._users == 0)
            if self.ptr:
                llama_cpp.llama_model_free(self.ptr)
                self.ptr = None

    def _read_metadata(self) -> dict[str, str]:
        buf = ctypes.create_string_buffer(1 << 16)
        meta: dict[str, str] = {}
        for i in range(llama_cpp.llama_model_meta_count(self.ptr)):
            n = llama_cpp.llama_model_meta_key_by_index(self.ptr, i, buf, len(buf))
            if n < 0:
                continue
            key = buf.value.decode("utf-8", "replace")
            n = llama_cpp.llama_model_meta_val_str_by_index(self.ptr, i, buf, len(buf))
            if n < 0:
                continue
            if n >= len(buf):  # long values (chat templates) need a bigger buffer
                big = ctypes.create_string_buffer(n + 1)
                llama_cpp.llama_model_meta_val_str_by_index(self.ptr, i, big, len(big))
                meta[key] = big.value.decode("utf-8", "replace")
            else:
                meta[key] = buf.value.decode("utf-8", "replace")
        return meta

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")

    @property
    def architecture(self) -> str:
        return self.metadata.get("general.architecture", "")

    def tokenize(
        self, text: str, *, add_special: bool = True, parse_special: bool = True
    ) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        tokens = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(
            self.vocab, data, len(data), tokens, capacity, add_special, parse_special
        )
        if n < 0:
            capacity = -n
            tokens = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(
                self.vocab, data, len(data), tokens, capacity, add_special, parse_special
            )
        if n < 0:
            raise LlamaError("tokenization failed")
        return list(tokens[:n])

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token; control tokens render empty unless ``special``."""
        key = token if not special else -token - 1
        cached = self._piece_cache.get(key)
        if cached is not None:
            return cached
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        out = buf.raw[:n]
        self._piece_cache[key] = out
        return out

    def detokenize(self, tokens: list[int], special: bool = False) -> str:
        return b"".join(self.piece(t, special) for t in tokens).decode("utf-8", "replace")

    def is_eog(self, token: int) -> bool:
        eog = self._eog_cache.get(token)
        if eog is None:
            eog = self._eog_cache[token] = bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))
        return eog

    def token_text(self, token: int) -> str:
        return self.piece(token, special=True).decode("utf-8", "replace")


@dataclass
class ContextParams:
    n_ctx: int
    n_batch: int = 512
    n_ubatch: int = 0  # 0: n_batch up to 512 (embedding contexts: n_batch)
    n_seq_max: int = 1
    threads: int = 0
    flash_attention: bool | None = None  # None = llama.cpp decides
    embeddings: bool = False
    pooling: int = POOLING_UNSPECIFIED
    swa_full: bool = True  # keeps full history for sliding-window models so prefixes can be reused
    kv_unified: bool = False  # one KV buffer all sequences share (see Context)


class Context:
    """A llama context (KV cache + compute buffers) over a model."""

    def __init__(self, model: Model, p: ContextParams) -> None:
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = p.n_ctx
        params.n_batch = p.n_batch
        params.n_ubatch = p.n_ubatch or (min(p.n_batch, 512) if not p.embeddings else p.n_batch)
        params.n_seq_max = p.n_seq_max
        if p.threads > 0:
            params.n_threads = p.threads
            params.n_threads_batch = p.threads
        params.flash_attn_type = {
            None: FLASH_ATTN_AUTO,
            True: FLASH_ATTN_ENABLED,
            False: FLASH_ATTN_DISABLED,
        }[p.flash_attention]
        params.embeddings = p.embeddings
        params.pooling_type = p.pooling
        # one KV stream per sequence: a token then attends only over its own sequence's cells
        # (prefix reuse never crosses slots, so a shared buffer would only add masked work)
        # (an embedding context shares one: a batch of sequences fills it together, then clears)
        params.kv_unified = p.kv_unified
        params.swa_full = p.swa_full
        params.no_perf = True
        self.model = model
        self.params = p
        self.ptr: llama_cpp.llama_context_p | None = llama_cpp.llama_init_from_model(
            model.ptr, params
        )
        if not self.ptr:
            raise LlamaError(f"llama.cpp could not create a context of {p.n_ctx} tokens")
        self.n_ctx: int = llama_cpp.llama_n_ctx(self.ptr)
        self.n_ubatch: int = params.n_ubatch  # the tokens of one compute pass
        self.memory: llama_cpp.llama_memory_t = llama_cpp.llama_get_memory(self.ptr)
        self._row = ctypes.c_float * model.n_vocab

    def close(self) -> None:
        if self.ptr:
            llama_cpp.llama_free(self.ptr)
            self.ptr = None

    def decode(self, batch: Batch) -> None:
        rc = llama_cpp.llama_decode(self.ptr, batch.raw)
        if rc != 0:
            raise LlamaError(
                f"llama_decode failed ({rc}): "
                + ("no room left in the KV cache" if rc == 1 else "see the log")
            )

    def seq_rm(self, seq: int, start: int = 0, end: int = -1) -> bool:
        return bool(llama_cpp.llama_memory_seq_rm(self.memory, seq, start, end))

    def seq_pos_max(self, seq: int) -> int:
        pos: int = llama_cpp.llama_memory_seq_pos_max(self.memory, seq)
        return pos

    def clear(self) -> None:
        llama_cpp.llama_memory_clear(self.memory, True)

    def state_seq_size(self, seq: int) -> int:
        """The bytes :meth:`state_seq_get` would give."""
        size: int = llama_cpp.llama_state_seq_get_size(self.ptr, seq)
        return size

    def state_seq_get(self, seq: int) -> npt.NDArray[np.uint8]:
        """A copy of sequence ``seq``'s KV cells (positions and K/V of every layer) in host
        memory, in llama.cpp's state format: :meth:`state_seq_set` puts it back, in any
        sequence of a context made with the same model and parameters."""
        size = self.state_seq_size(seq)
        data: npt.NDArray[np.uint8] = np.empty(size, dtype=np.uint8)  # not zeroed: all written
        written = llama_cpp.llama_state_seq_get_data(
            self.ptr, data.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), size, seq
        )
        if written != size:
            raise LlamaError(f"could not copy the state of sequence {seq} ({written} of {size})")
        return data

    def state_seq_set(self, seq: int, data: npt.NDArray[np.uint8]) -> None:
        """Replace sequence ``seq``'s cells by a :meth:`state_seq_get` copy."""
        self.seq_rm(seq, 0, -1)
        read = llama_cpp.llama_state_seq_set_data(
            self.ptr, data.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), data.size, seq
        )
        if read == 0:
            self.seq_rm(seq, 0, -1)  # a failed restore may leave some cells behind
            raise LlamaError(f"could not restore a saved state into sequence {seq}")

    def logits(self, index: int) -> llama_cpp.CtypesArray[ctypes.c_float]:
        row: llama_cpp.CtypesArray[ctypes.c_float] = llama_cpp.llama_get_logits_ith(self.ptr, index)
        return row

    def logits_row(self, index: int) -> npt.NDArray[np.float32]:
        """The logits of batch entry ``index`` as a float32 view, valid until the next decode."""
        ptr = llama_cpp.llama_get_logits_ith(self.ptr, index)  # a float pointer, in fact
        if not ptr:
            raise LlamaError(f"no logits for batch entry {index}")
        # numpy's stubs do not count ctypes arrays as buffers (they are: PEP 3118)
        row: npt.NDArray[np.float32] = np.frombuffer(
            self._row.from_address(ctypes.addressof(ptr.contents)),  # type: ignore[call-overload]
            dtype=np.float32,
        )
        return row

    def seq_embedding(self, seq: int, n: int) -> list[float]:
        ptr: llama_cpp.CtypesArray[ctypes.c_float] = llama_cpp.llama_get_embeddings_seq(
            self.ptr, seq
        )
        if not ptr:
            ptr = llama_cpp.llama_get_embeddings_ith(self.ptr, -1)
        if not ptr:
            raise LlamaError("the model returned no embedding")
        vector: list[float] = ptr[:n]
        return vector

    def set_lora(self, adapters: list[LoraAdapter]) -> None:
        assert self.ptr is not None, "the context is closed"
        for adapter in adapters:
            if llama_cpp.llama_set_adapter_lora(self.ptr, adapter, 1.0) != 0:
                raise LlamaError("could not apply the LoRA adapter")


class Batch:
    """A reusable ``llama_batch`` filled token by token from several sequences."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.raw: llama_cpp.llama_batch | None = llama_cpp.llama_batch_init(capacity, 0, 1)
        self.n = 0

    def close(self) -> None:
        if self.raw is not None:
            llama_cpp.llama_batch_free(self.raw)
            self.raw = None

    def clear(self) -> None:
        assert self.raw is not None, "the batch is closed"
        self.n = 0
        self.raw.n_tokens = 0

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append one token; returns its index in the batch (for logits/sampling)."""
        i = self.n
        raw = self.raw
        assert raw is not None, "the batch is closed"
        raw.token[i] = token
        raw.pos[i] = pos  # type: ignore[call-overload]  # llama_cpp types pos as an array of arrays
        raw.n_seq_id[i] = 1
        raw.seq_id[i][0] = seq
        raw.logits[i] = logits
        self.n = i + 1
        raw.n_tokens = self.n
        return i

    @property
    def free(self) -> int:
        return self.capacity - self.n


def load_lora(model: Model, path: str) -> LoraAdapter:
    adapter: LoraAdapter | None = llama_cpp.llama_adapter_lora_init(model.ptr, path.encode())
    if not adapter:
        raise LlamaError(f"could not load the LoRA adapter {path} (llama.cpp needs a GGUF adapter)")
    return adapter
