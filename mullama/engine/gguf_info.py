"""A small, dependency-free GGUF header reader (and a writer for tiny test files).

Only the header is read: metadata key/values and tensor descriptions, never the
tensor data. Large arrays (token lists, merges, scores) are skipped and reported
by length only, so reading a multi-gigabyte model's header is quick.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

GGUF_MAGIC = b"GGUF"
MAX_ARRAY_KEPT = 64  # arrays longer than this are summarised, not kept
MAX_STRING = 1 << 24  # refuse absurd string lengths (corrupt files)
MAX_KV = 1_000_000  # bounds on the header's counts (llama.cpp's largest models are far below)
MAX_TENSORS = 1_000_000
MIN_KV_BYTES = 8 + 4 + 1  # a key's length, a value type and the smallest value
MIN_TENSOR_BYTES = 8 + 4 + 4 + 8  # a name's length, n_dims, type, offset
DEFAULT_ALIGNMENT = 32
MAX_TENSOR_TYPE = 1023  # beyond any ggml type: a damaged tensor table

# value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = (
    range(13)
)
_SCALAR = {
    UINT8: "<B",
    INT8: "<b",
    UINT16: "<H",
    INT16: "<h",
    UINT32: "<I",
    INT32: "<i",
    FLOAT32: "<f",
    BOOL: "<?",
    UINT64: "<Q",
    INT64: "<q",
    FLOAT64: "<d",
}

# llama_ftype -> name (general.file_type)
FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}

# ggml tensor types -> name (for a file without general.file_type)
TENSOR_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    6: "Q5_0",
    7: "Q5_1",
    8: "Q8_0",
    9: "Q8_1",
    10: "Q2_K",
    11: "Q3_K",
    12: "Q4_K",
    13: "Q5_K",
    14: "Q6_K",
    15: "Q8_K",
    16: "IQ2_XXS",
    17: "IQ2_XS",
    18: "IQ3_XXS",
    19: "IQ1_S",
    20: "IQ4_NL",
    21: "IQ3_S",
    22: "IQ2_S",
    23: "IQ4_XS",
    24: "I8",
    25: "I16",
    26: "I32",
    27: "I64",
    28: "F64",
    29: "IQ1_M",
    30: "BF16",
    34: "TQ1_0",
    35: "TQ2_0",
    39: "MXFP4",
}

# ggml tensor types -> (elements per block, bytes per block), as ggml's type traits say
TYPE_SIZES = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 36),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
}

EMBEDDING_ARCHES = {
    "bert",
    "nomic-bert",
    "nomic-bert-moe",
    "jina-bert-v2",
    "jina-bert-v3",
    "t5encoder",
    "modern-bert",
    "neo-bert",
    "eurobert",
}

# what a model is for, from its GGUF (see :func:`model_kind`)
GENERATION, EMBEDDING, RERANK = "generation", "embedding", "rerank"
POOLING_RANK = 4  # llama_pooling_type: NONE 0, MEAN 1, CLS 2, LAST 3, RANK 4
CLASSIFIER_TENSORS = ("cls.output.weight", "cls.weight")  # a cross-encoder's classification head


def model_kind(metadata: Mapping[str, Any], tensor_names: Iterable[str] = ()) -> str:
    """``rerank`` for a cross-encoder (rank pooling: BGE/Jina rerankers, Qwen3-Reranker as
    ggml-org converts it), ``embedding`` for an encoder-only architecture or a model that
    declares a pooling (nomic, bge, Qwen3-Embedding), else ``generation``. An encoder with a
    classification head (``classifier.output_labels``, or a ``cls`` tensor when the tensors
    are known) ranks even without a pooling key, as llama.cpp does."""
    arch = str(metadata.get("general.architecture", ""))
    pooling = metadata.get(f"{arch}.pooling_type")
    declared = isinstance(pooling, int) and not isinstance(pooling, bool) and pooling > 0
    encoder = arch in EMBEDDING_ARCHES
    head = bool(metadata.get(f"{arch}.classifier.output_labels")) or any(
        name in CLASSIFIER_TENSORS for name in tensor_names
    )
    if (declared and pooling == POOLING_RANK) or (encoder and head and not declared):
        return RERANK
    if encoder or declared:
        return EMBEDDING
    return GENERATION


class GGUFError(ValueError):
    """The file is not a GGUF file, or its header is damaged."""


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type: int
    offset: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class GGUFHeader:
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    array_lengths: dict[str, int] = field(default_factory=dict)  # skipped arrays
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0  # where tensor data starts (0 when the tensors were not read)

    def layout_problem(self, file_size: int) -> str:
        """Why the tensor table does not fit a file of ``file_size`` bytes ("" when it does)."""
        if self.data_offset > file_size:
            return f"truncated (tensor data starts at byte {self.data_offset}, file is {file_size} bytes)"
        for t in self.tensors:
            start = self.data_offset + t.offset
            sizes = TYPE_SIZES.get(t.type)
            if sizes is None:  # a type newer than this table: llama.cpp checks its size
                if t.type > MAX_TENSOR_TYPE:
                    return f"tensor {t.name} has unknown type {t.type}"
                end = start
            else:
                block, nbytes = sizes
                if t.n_elements % block:
                    return (
                        f"tensor {t.name} has {t.n_elements} elements, not a multiple of its "
                        f"type's block of {block}"
                    )
                end = start + t.n_elements // block * nbytes
            if end > file_size:
                return f"truncated (tensor {t.name} ends at byte {end}, file is {file_size} bytes)"
        return ""

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_value(self, suffix: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{suffix}", default)

    @property
    def parameter_count(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def quantization(self) -> str:
        ft = self.metadata.get("general.file_type")
        if isinstance(ft, int) and ft in FILE_TYPES:
            return FILE_TYPES[ft]
        counts: dict[str, int] = {}
        for t in self.tensors:
            if len(t.shape) >= 2:
                name = TENSOR_TYPES.get(t.type, f"type{t.type}")
                counts[name] = counts.get(name, 0) + t.n_elements
        return max(counts, key=counts.__getitem__) if counts else ""

    @property
    def chat_template(self) -> str:
        return str(self.metadata.get("tokenizer.chat_template", "") or "")

    def summary(self) -> dict[str, Any]:
        """The facts `list`/`show` need, JSON-ready."""
        arch = self.architecture
        return {
            "architecture": arch,
            "name": self.metadata.get("general.name", ""),
            "parameter_count": self.parameter_count,
            "parameter_size": format_parameter_size(self.parameter_count)
            or str(self.metadata.get("general.size_label", "")),
            "quantization": self.quantization,
            "context_length": _int(self.arch_value("context_length")),
            "embedding_length": _int(self.arch_value("embedding_length")),
            "block_count": _int(self.arch_value("block_count")),
            "head_count": _int(self.arch_value("attention.head_count")),
            "head_count_kv": _int(self.arch_value("attention.head_count_kv")),
            "pooling_type": _int(self.arch_value("pooling_type")),
            "has_chat_template": bool(self.chat_template),
            "is_embedding": arch in EMBEDDING_ARCHES,
            "model_kind": model_kind(self.metadata, (t.name for t in self.tensors)),
            "is_projector": arch == "clip" or "clip.has_vision_encoder" in self.metadata,
            "tensor_count": len(self.tensors),
        }

    def display_metadata(self) -> dict[str, Any]:
        """Metadata for `show`: every scalar and short array; long arrays as a note."""
        out = dict(self.metadata)
        for key, n in self.array_lengths.items():
            out[key] = f"[{n} items]"
        out["general.parameter_count"] = self.parameter_count
        return dict(sorted(out.items()))


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def format_parameter_size(n: int) -> str:
    """``1_235_814_400`` -> ``"1.2B"``, ``268_098_176`` -> ``"268M"``."""
    if n <= 0:
        return ""
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            value = n / div
            text = f"{value:.1f}".rstrip("0").rstrip(".") if value < 10 else f"{value:.0f}"
            return text + unit
    return str(n)


class _Reader:
    def __init__(self, f: BinaryIO):
        self.f = f

    def read(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise GGUFError("truncated (the header runs past the end of the file)")
        return data

    def scalar(self, vtype: int) -> Any:
        fmt = _SCALAR[vtype]
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar(UINT64)
        if n > MAX_STRING:
            raise GGUFError(f"GGUF string of {n} bytes: damaged header")
        return self.read(n).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = self.scalar(UINT64)
        if n > MAX_STRING:
            raise GGUFError(f"damaged GGUF header (a string of {n} bytes)")
        self.f.seek(n, io.SEEK_CUR)

    def value(self, vtype: int, keep: bool = True) -> Any:
        if vtype == STRING:
            if keep:
                return self.string()
            self.skip_string()
            return None
        if vtype == ARRAY:
            raise GGUFError("nested arrays are handled by the caller")
        if vtype not in _SCALAR:
            raise GGUFError(f"unknown GGUF value type {vtype}")
        if keep:
            return self.scalar(vtype)
        self.f.seek(struct.calcsize(_SCALAR[vtype]), io.SEEK_CUR)
        return None


_HEADER_CACHE: dict[tuple[str, int, int, bool], GGUFHeader] = {}
_HEADER_CACHE_SIZE = 32


def read_header(path: str | Path, *, with_tensors: bool = True) -> GGUFHeader:
    """Read a GGUF file's header; raises GGUFError when it is not GGUF.

    Headers are cached by (path, size, mtime): a large vocabulary takes a noticeable
    fraction of a second to parse, and every request resolves its model.
    """
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, with_tensors)
    cached = _HEADER_CACHE.get(key)
    if cached is not None:
        return cached
    try:
        with open(path, "rb") as raw:
            f = io.BufferedReader(raw, buffer_size=1 << 20)
            header = _read(f, with_tensors)
    except struct.error as exc:
        raise GGUFError(f"damaged GGUF header: {exc}") from None
    if len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
        _HEADER_CACHE.pop(next(iter(_HEADER_CACHE)))
    _HEADER_CACHE[key] = header
    return header


def check_gguf(path: str | Path) -> GGUFHeader:
    """The header of a GGUF file whose header and every tensor fit inside the file.

    Raises GGUFError whose message starts "not a valid GGUF file: " and says what is wrong
    (e.g. ``truncated (tensor X ends at byte N, file is M bytes)``); OSError when the file
    cannot be read. Cheap: only the header is read, and it is cached.
    """
    size = os.stat(path).st_size
    try:
        header = read_header(path, with_tensors=True)
    except GGUFError as exc:
        raise GGUFError(f"not a valid GGUF file: {exc}") from None
    problem = header.layout_problem(size)
    if problem:
        raise GGUFError(f"not a valid GGUF file: {problem}")
    return header


def is_gguf(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _read(f: BinaryIO, with_tensors: bool) -> GGUFHeader:
    r = _Reader(f)
    if f.read(4) != GGUF_MAGIC:
        raise GGUFError("not a GGUF file (bad magic number)")
    version = r.scalar(UINT32)
    if version not in (2, 3):
        raise GGUFError(f"unsupported GGUF version {version}")
    n_tensors = r.scalar(UINT64)
    n_kv = r.scalar(UINT64)
    size = _size_of(f)
    if n_kv > MAX_KV or n_tensors > MAX_TENSORS:
        raise GGUFError(f"damaged GGUF header (absurd counts: {n_kv} keys, {n_tensors} tensors)")
    if n_kv * MIN_KV_BYTES + n_tensors * MIN_TENSOR_BYTES > size:
        raise GGUFError(
            f"truncated or damaged header ({n_kv} keys and {n_tensors} tensors cannot fit "
            f"in {size} bytes)"
        )
    header = GGUFHeader(version=version)
    for _ in range(n_kv):
        key = r.string()
        vtype = r.scalar(UINT32)
        if vtype == ARRAY:
            etype = r.scalar(UINT32)
            count = r.scalar(UINT64)
            keep = count <= MAX_ARRAY_KEPT
            if etype == ARRAY:
                raise GGUFError("nested GGUF arrays are not supported")
            if not keep and etype != STRING and etype in _SCALAR:
                f.seek(count * struct.calcsize(_SCALAR[etype]), io.SEEK_CUR)
                items = None
            else:
                items = [r.value(etype, keep) for _ in range(count)]
            if keep:
                header.metadata[key] = items
            else:
                header.array_lengths[key] = count
        else:
            header.metadata[key] = r.value(vtype)
    if with_tensors:
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.scalar(UINT32)
            if n_dims > 8:
                raise GGUFError("damaged GGUF tensor info")
            shape = tuple(r.scalar(UINT64) for _ in range(n_dims))
            ttype = r.scalar(UINT32)
            offset = r.scalar(UINT64)
            header.tensors.append(TensorInfo(name, shape, ttype, offset))
        alignment = header.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise GGUFError(f"damaged GGUF header (alignment {alignment!r})")
        header.data_offset = -(-f.tell() // alignment) * alignment
    return header


def _size_of(f: BinaryIO) -> int:
    """The size of an open file, or a huge number when it cannot be told."""
    try:
        return os.fstat(f.fileno()).st_size
    except (OSError, AttributeError, io.UnsupportedOperation):
        return 1 << 62


# ------------------------------------------------------------------ writer (tests, tools)


def _encode_value(value: Any) -> tuple[int, bytes]:
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], int)
        and value[0] in _SCALAR
    ):
        vtype, v = value
        return vtype, struct.pack(_SCALAR[vtype], v)
    if isinstance(value, bool):
        return BOOL, struct.pack("<?", value)
    if isinstance(value, int):
        if 0 <= value < 1 << 32:
            return UINT32, struct.pack("<I", value)
        return INT64, struct.pack("<q", value)
    if isinstance(value, float):
        return FLOAT32, struct.pack("<f", value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return STRING, struct.pack("<Q", len(data)) + data
    if isinstance(value, (list, tuple)):
        items = [_encode_value(v) for v in value]
        etype = items[0][0] if items else UINT32
        if any(t != etype for t, _ in items):
            raise ValueError("GGUF arrays must be homogeneous")
        return ARRAY, struct.pack("<IQ", etype, len(items)) + b"".join(b for _, b in items)
    raise TypeError(f"cannot store {type(value).__name__} in GGUF metadata")


def write_gguf(
    path: str | Path,
    metadata: dict[str, Any],
    tensors: list[tuple[str, tuple[int, ...]]] | None = None,
    *,
    padding: bytes = b"",
    alignment: int = 32,
) -> Path:
    """Write a small valid GGUF v3 file with F32 tensors of the given shapes (zeros)
    and optional trailing ``padding`` bytes (to vary content and size in tests)."""
    tensors = tensors or []
    out = bytearray(GGUF_MAGIC)
    out += struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, value in metadata.items():
        kb = key.encode("utf-8")
        vtype, vb = _encode_value(value)
        out += struct.pack("<Q", len(kb)) + kb + struct.pack("<I", vtype) + vb
    offset = 0
    sizes = []
    for name, shape in tensors:
        nb = name.encode("utf-8")
        out += struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", 0, offset)
        n = 1
        for d in shape:
            n *= d
        sizes.append(n * 4)
        offset += -(-n * 4 // alignment) * alignment
    out += b"\0" * (-len(out) % alignment)
    for size in sizes:
        out += b"\0" * size + b"\0" * (-size % alignment)
    out += padding
    path = Path(path)
    path.write_bytes(bytes(out))
    return path
