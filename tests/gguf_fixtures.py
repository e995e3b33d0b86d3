"""Tiny random-weight GGUF models for the paths no small real model on the registries covers.

Built with the ``gguf`` package, with the tensor names, shapes and metadata llama.cpp's
``convert_hf_to_gguf.py`` writes: a BERT-family model (``bert`` architecture, WordPiece
vocabulary as the converter stores it: whole words with a leading "▁", sub-words without "##")
for embeddings and reranking, and two vision pairs, a text model plus its projector (mmproj,
``clip`` architecture) that llama.cpp's mtmd loads: Gemma 3 (``gemma3`` projector, fixed-size
images, bidirectional attention over an image's tokens) and Qwen2-VL (``qwen2vl_merger``,
M-RoPE positions). The weights are random: tests judge shapes and plumbing (dimensions,
pooling, batching, ordering by score, token counts and positions), never the numbers'
meaning. Each file is a few hundred KB and is built in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

WORDS = [
    "the", "cat", "dog", "sat", "on", "mat", "llama", "hello", "world", "paris", "is",
    "capital", "of", "france", "an", "and", "what", "where", "city", "river",
]  # fmt: skip
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]


def bert_vocab() -> list[str]:
    """Special tokens, whole words and single letters (both as word starts and sub-words), so
    any lower-case ASCII text tokenizes without unknown tokens."""
    return SPECIAL + ["\u2581" + w for w in WORDS + LETTERS] + LETTERS


class _Tensors:
    """Adds a model's tensors to ``writer``: random weights drawn from ``rng`` in the order
    added, and norms and biases as a freshly initialised model holds them."""

    def __init__(self, writer: Any, rng: np.random.Generator) -> None:
        self.writer, self.rng = writer, rng

    def random(self, tensor: str, *shape: int, scale: float = 0.05) -> None:
        self.writer.add_tensor(tensor, (self.rng.standard_normal(shape) * scale).astype(np.float32))

    def ones(self, tensor: str, size: int) -> None:
        self.writer.add_tensor(tensor, np.ones(size, dtype=np.float32))

    def zeros(self, tensor: str, size: int) -> None:
        self.writer.add_tensor(tensor, np.zeros(size, dtype=np.float32))

    def norm(self, tensor: str, size: int) -> None:
        """A layer norm: ``.weight`` ones, ``.bias`` zeros."""
        self.ones(tensor + ".weight", size)
        self.zeros(tensor + ".bias", size)

    def linear(self, tensor: str, n_out: int, n_in: int, scale: float = 0.05) -> None:
        """A linear layer: a random ``.weight``, a ``.bias`` of zeros."""
        self.random(tensor + ".weight", n_out, n_in, scale=scale)
        self.zeros(tensor + ".bias", n_out)

    def attention(self, blk: str, n_embd: int, n_q: int, n_kv: int, bias: bool = False) -> None:
        """A block's q, k, v and output projections (q, k and v with zero biases if ``bias``)."""
        for part, n_out in (("attn_q", n_q), ("attn_k", n_kv), ("attn_v", n_kv)):
            self.random(f"{blk}.{part}.weight", n_out, n_embd)
            if bias:
                self.zeros(f"{blk}.{part}.bias", n_out)
        self.random(f"{blk}.attn_output.weight", n_embd, n_q)

    def gated_ffn(self, blk: str, n_embd: int, n_ff: int) -> None:
        self.random(f"{blk}.ffn_gate.weight", n_ff, n_embd)
        self.random(f"{blk}.ffn_up.weight", n_ff, n_embd)
        self.random(f"{blk}.ffn_down.weight", n_embd, n_ff)

    def vit_blocks(self, n_layer: int, n_embd: int, n_ff: int) -> None:
        """A projector's ViT encoder blocks and its closing norm (``v.post_ln``)."""
        for i in range(n_layer):
            blk = f"v.blk.{i}"
            for part in ("attn_q", "attn_k", "attn_v", "attn_out"):
                self.linear(f"{blk}.{part}", n_embd, n_embd)
            self.norm(f"{blk}.ln1", n_embd)
            self.norm(f"{blk}.ln2", n_embd)
            self.linear(f"{blk}.ffn_up", n_ff, n_embd)
            self.linear(f"{blk}.ffn_down", n_embd, n_ff)
        self.norm("v.post_ln", n_embd)


def _finish(writer: Any, path: Path) -> Path:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _decoder_writer(
    path: Path,
    arch: str,
    name: str,
    *,
    n_ctx: int,
    n_embd: int,
    n_layer: int,
    n_ff: int,
    n_head: int,
    n_head_kv: int,
    head_dim: int | None = None,
) -> Any:
    """A writer for a decoder with the shape keys the converter writes (``head_dim`` as the
    key and value lengths where the model states them), RMS norms and RoPE base 1e6."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    if head_dim is not None:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(1_000_000.0)
    return writer


def _add_spm_tokenizer(
    writer: Any,
    vocab: tuple[list[str], list[float], list[int]],
    *,
    bos: str,
    eos: str,
    unk: str,
    pad: str,
    add_bos: bool,
    add_eos: bool | None = None,
) -> None:
    """An F32 file's type and an SPM vocabulary (``spm_vocab``) with its special tokens."""
    import gguf

    tokens, scores, types = vocab
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(tokens.index(bos))
    writer.add_eos_token_id(tokens.index(eos))
    writer.add_unk_token_id(tokens.index(unk))
    writer.add_pad_token_id(tokens.index(pad))
    writer.add_add_bos_token(add_bos)
    if add_eos is not None:
        writer.add_add_eos_token(add_eos)
    writer.add_add_space_prefix(False)


def _mmproj_writer(
    path: Path,
    name: str,
    projector: Any,
    *,
    n_embd_text: int,
    image_size: int,
    patch_size: int,
    n_embd: int,
    n_ff: int,
    n_layer: int,
    n_head: int,
    mean: list[float],
    std: list[float],
) -> Any:
    """A writer for a projector (``clip`` architecture, mmproj type) of a vision encoder
    with the keys ``convert_hf_to_gguf.py --mmproj`` writes."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_type(gguf.GGUFType.MMPROJ)
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_clip_has_vision_encoder(True)
    writer.add_clip_projector_type(projector)
    writer.add_vision_projection_dim(n_embd_text)
    writer.add_vision_image_size(image_size)
    writer.add_vision_patch_size(patch_size)
    writer.add_vision_embedding_length(n_embd)
    writer.add_vision_feed_forward_length(n_ff)
    writer.add_vision_block_count(n_layer)
    writer.add_vision_head_count(n_head)
    writer.add_vision_attention_layernorm_eps(1e-6)
    writer.add_vision_image_mean(mean)
    writer.add_vision_image_std(std)
    return writer


def build_bert(
    path: Path,
    *,
    pooling: str = "mean",
    reranker: bool = False,
    n_embd: int = 32,
    n_layer: int = 2,
    n_head: int = 2,
    n_ff: int = 64,
    n_ctx: int = 512,
    seed: int = 0,
    name: str = "tiny-bert",
) -> Path:
    """A BERT encoder: an embedding model (``pooling`` mean, cls or last) or, with
    ``reranker``, a cross-encoder with rank pooling and a one-label classification head
    (``cls``, ``cls.output``), as the converter writes bge-reranker models."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens = bert_vocab()
    kinds = {"none": 0, "mean": 1, "cls": 2, "last": 3, "rank": 4}
    writer = gguf.GGUFWriter(str(path), "bert")
    writer.add_name(name)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(n_ff)
    writer.add_block_count(n_layer)
    writer.add_head_count(n_head)
    writer.add_layer_norm_eps(1e-12)
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType(kinds["rank" if reranker else pooling]))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_token_type_count(2)
    writer.add_tokenizer_model("bert")
    writer.add_token_list(tokens)
    writer.add_token_types(
        [gguf.TokenType.CONTROL if t in SPECIAL else gguf.TokenType.NORMAL for t in tokens]
    )
    writer.add_pad_token_id(0)
    writer.add_unk_token_id(1)
    writer.add_bos_token_id(2)  # [CLS]
    writer.add_sep_token_id(3)
    writer.add_eos_token_id(3)
    writer.add_mask_token_id(4)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)
    if reranker:
        writer.add_classifier_output_labels(["relevance"])

    t = _Tensors(writer, rng)
    t.random("token_embd.weight", len(tokens), n_embd, scale=1.0)
    t.random("token_types.weight", 2, n_embd)
    t.random("position_embd.weight", n_ctx, n_embd)
    t.norm("token_embd_norm", n_embd)
    for i in range(n_layer):
        for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
            t.linear(f"blk.{i}.{part}", n_embd, n_embd)
        t.norm(f"blk.{i}.attn_output_norm", n_embd)
        t.linear(f"blk.{i}.ffn_up", n_ff, n_embd)
        t.linear(f"blk.{i}.ffn_down", n_embd, n_ff)
        t.norm(f"blk.{i}.layer_output_norm", n_embd)
    if reranker:
        t.linear("cls", n_embd, n_embd, scale=0.5)
        t.linear("cls.output", 1, n_embd, scale=0.5)
    return _finish(writer, path)


# --- a tiny Gemma 3 vision model: text model (arch gemma3) + projector (arch clip, gemma3) ---

VISION_SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
GEMMA3_IMAGE_MARKERS = ["<start_of_image>", "<end_of_image>"]  # user-defined tokens in Gemma 3


def spm_vocab(
    special: Sequence[str] = VISION_SPECIAL, user_defined: Sequence[str] = GEMMA3_IMAGE_MARKERS
) -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece ("llama") vocabulary as Gemma's converter stores it: control tokens,
    the image markers and "\\n" as user-defined tokens, the 256 byte-fallback tokens (so any
    text tokenizes), then "▁" and single letters with and without it. No longer pieces: SPM
    merges only pairs whose concatenation is in the vocabulary, so a word would need all its
    prefixes."""
    import gguf

    tokens: list[str] = []
    types: list[int] = []
    scores: list[float] = []

    def add(token: str, kind: int, score: float) -> None:
        if token not in tokens:  # llama.cpp aborts on a vocabulary with a duplicate
            tokens.append(token)
            types.append(kind)
            scores.append(score)

    for token in special:
        add(token, gguf.TokenType.CONTROL, 0.0)
    for token in user_defined:
        add(token, gguf.TokenType.USER_DEFINED, 0.0)
    add("\n", gguf.TokenType.USER_DEFINED, 0.0)
    for byte in range(256):
        add(f"<0x{byte:02X}>", gguf.TokenType.BYTE, 0.0)
    add("\u2581", gguf.TokenType.NORMAL, -1.0)
    for letter in LETTERS:
        add(letter, gguf.TokenType.NORMAL, -2.0)
        add("\u2581" + letter, gguf.TokenType.NORMAL, -1.5)
    return tokens, scores, types


def build_gemma3_text(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 2,
    n_head_kv: int = 1,
    head_dim: int = 32,
    n_ff: int = 128,
    n_ctx: int = 4096,
    seed: int = 0,
    name: str = "tiny-gemma3",
) -> Path:
    """A Gemma 3 text decoder with the tensors and keys ``convert_hf_to_gguf.py`` writes for
    ``Gemma3ForCausalLM`` (RMS norms stored as weight + 1, tied output embedding)."""
    vocab = spm_vocab()
    shape = dict(n_ctx=n_ctx, n_embd=n_embd, n_layer=n_layer, n_ff=n_ff)
    writer = _decoder_writer(
        path, "gemma3", name, **shape, n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim
    )
    writer.add_sliding_window(512)
    _add_spm_tokenizer(
        writer, vocab, bos="<bos>", eos="<eos>", unk="<unk>", pad="<pad>", add_bos=True,
        add_eos=False,
    )  # fmt: skip
    t = _Tensors(writer, np.random.default_rng(seed))
    t.random("token_embd.weight", len(vocab[0]), n_embd, scale=1.0)
    t.ones("output_norm.weight", n_embd)
    for i in range(n_layer):
        _qk_norm_block(t, f"blk.{i}", n_embd, n_head, n_head_kv, head_dim, n_ff, sandwich=True)
    return _finish(writer, path)


def _qk_norm_block(
    t: _Tensors,
    blk: str,
    n_embd: int,
    n_head: int,
    n_head_kv: int,
    head_dim: int,
    n_ff: int,
    *,
    sandwich: bool,
) -> None:
    """A decoder block with RMS-normed queries and keys (Gemma 3, Qwen3); ``sandwich``: with
    Gemma's norms after the attention and the FFN too."""
    t.ones(f"{blk}.attn_norm.weight", n_embd)
    t.attention(blk, n_embd, n_head * head_dim, n_head_kv * head_dim)
    t.ones(f"{blk}.attn_q_norm.weight", head_dim)
    t.ones(f"{blk}.attn_k_norm.weight", head_dim)
    if sandwich:
        t.ones(f"{blk}.post_attention_norm.weight", n_embd)
    t.ones(f"{blk}.ffn_norm.weight", n_embd)
    t.gated_ffn(blk, n_embd, n_ff)
    if sandwich:
        t.ones(f"{blk}.post_ffw_norm.weight", n_embd)


def build_gemma3_mmproj(
    path: Path,
    *,
    n_embd_text: int = 64,
    image_size: int = 64,
    patch_size: int = 8,
    scale_factor: int = 2,
    n_embd: int = 32,
    n_layer: int = 1,
    n_head: int = 2,
    n_ff: int = 64,
    seed: int = 1,
    name: str = "tiny-gemma3-mmproj",
) -> Path:
    """A Gemma 3 projector (SigLIP encoder + average pooling + soft-embedding norm + input
    projection) with the tensors and keys ``convert_hf_to_gguf.py --mmproj`` writes for
    ``Gemma3ForConditionalGeneration``. An image becomes
    ``(image_size / patch_size / scale_factor)²`` tokens: 16 with the defaults."""
    import gguf

    n_patches = (image_size // patch_size) ** 2
    writer = _mmproj_writer(
        path, name, gguf.VisionProjectorType.GEMMA3, n_embd_text=n_embd_text,
        image_size=image_size, patch_size=patch_size, n_embd=n_embd, n_ff=n_ff, n_layer=n_layer,
        n_head=n_head, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5],
    )  # fmt: skip
    writer.add_vision_use_gelu(True)
    writer.add_vision_projector_scale_factor(scale_factor)
    t = _Tensors(writer, np.random.default_rng(seed))
    t.random("v.patch_embd.weight", n_embd, 3, patch_size, patch_size)
    t.zeros("v.patch_embd.bias", n_embd)
    t.random("v.position_embd.weight", n_patches, n_embd)
    t.vit_blocks(n_layer, n_embd, n_ff)
    t.ones("mm.soft_emb_norm.weight", n_embd)
    t.random("mm.input_projection.weight", n_embd, n_embd_text, scale=0.2)
    return _finish(writer, path)


QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]
QWEN2VL_IMAGE_MARKERS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>"]
QWEN_SPECIAL_IDS: dict[str, Any] = dict(
    bos="<|endoftext|>", eos="<|im_end|>", unk="<unk>", pad="<|endoftext|>", add_bos=False
)


def build_qwen2vl_text(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    n_ctx: int = 4096,
    seed: int = 2,
    name: str = "tiny-qwen2vl",
) -> Path:
    """A Qwen2-VL text decoder (``qwen2vl``: M-RoPE, its head split into time, row and
    column sections) with the tensors ``convert_hf_to_gguf.py`` writes for
    ``Qwen2VLForConditionalGeneration``; an SPM vocabulary stands in for Qwen's BPE one."""
    head_dim = n_embd // n_head
    vocab = spm_vocab(QWEN_SPECIAL, QWEN2VL_IMAGE_MARKERS)
    shape = dict(n_ctx=n_ctx, n_embd=n_embd, n_layer=n_layer, n_ff=n_ff)
    writer = _decoder_writer(path, "qwen2vl", name, **shape, n_head=n_head, n_head_kv=n_head_kv)
    quarter = head_dim // 2 // 4  # sections of the rotated half: time, rows, columns, none
    writer.add_rope_dimension_sections([head_dim // 2 - 2 * quarter, quarter, quarter, 0])
    _add_spm_tokenizer(writer, vocab, **QWEN_SPECIAL_IDS)
    t = _Tensors(writer, np.random.default_rng(seed))
    t.random("token_embd.weight", len(vocab[0]), n_embd, scale=1.0)
    t.ones("output_norm.weight", n_embd)
    t.random("output.weight", len(vocab[0]), n_embd)
    for i in range(n_layer):
        blk = f"blk.{i}"
        t.ones(f"{blk}.attn_norm.weight", n_embd)
        t.attention(blk, n_embd, n_embd, n_head_kv * head_dim, bias=True)
        t.ones(f"{blk}.ffn_norm.weight", n_embd)
        t.gated_ffn(blk, n_embd, n_ff)
    return _finish(writer, path)


def build_qwen2vl_mmproj(
    path: Path,
    *,
    n_embd_text: int = 64,
    image_size: int = 64,
    patch_size: int = 8,
    n_embd: int = 32,
    n_layer: int = 1,
    n_head: int = 2,
    n_ff: int = 64,
    seed: int = 3,
    name: str = "tiny-qwen2vl-mmproj",
) -> Path:
    """A Qwen2-VL projector (``qwen2vl_merger``: a ViT with 2D M-RoPE, its 3D patch
    convolution split in two as the converter splits it, and the 2×2 patch merger), with the
    tensors and keys ``convert_hf_to_gguf.py --mmproj`` writes. Its images keep their aspect
    ratio: a W×H image becomes about (W / 16) × (H / 16) tokens, which take max(W, H) / 16
    positions, not one each."""
    import gguf

    writer = _mmproj_writer(
        path, name, gguf.VisionProjectorType.QWEN2VL, n_embd_text=n_embd_text,
        image_size=image_size, patch_size=patch_size, n_embd=n_embd, n_ff=n_ff, n_layer=n_layer,
        n_head=n_head, mean=[0.48145466, 0.4578275, 0.40821073],
        std=[0.26862954, 0.26130258, 0.27577711],
    )  # fmt: skip
    t = _Tensors(writer, np.random.default_rng(seed))
    t.random("v.patch_embd.weight", n_embd, 3, patch_size, patch_size)
    t.random("v.patch_embd.weight.1", n_embd, 3, patch_size, patch_size)
    t.vit_blocks(n_layer, n_embd, n_ff)
    t.linear("mm.0", 4 * n_embd, 4 * n_embd)
    t.linear("mm.2", n_embd_text, 4 * n_embd)
    return _finish(writer, path)


def build_mrope_vision(directory: Path) -> tuple[Path, Path]:
    """The tiny Qwen2-VL pair (M-RoPE) in ``directory``: (text model, projector)."""
    directory.mkdir(parents=True, exist_ok=True)
    model = build_qwen2vl_text(directory / "tiny-qwen2vl.gguf")
    mmproj = build_qwen2vl_mmproj(directory / "tiny-qwen2vl-mmproj.gguf")
    return model, mmproj


def build_vision(directory: Path) -> tuple[Path, Path]:
    """The tiny Gemma 3 vision pair in ``directory``: (text model, projector)."""
    directory.mkdir(parents=True, exist_ok=True)
    model = build_gemma3_text(directory / "tiny-gemma3.gguf")
    mmproj = build_gemma3_mmproj(directory / "tiny-gemma3-mmproj.gguf")
    return model, mmproj


# --- a tiny Qwen3-Reranker (a causal decoder with rank pooling) ---

QWEN3_RERANK_TEMPLATE = (  # the rerank prompt ggml-org's converter stores for Qwen3-Reranker
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that "
    "answer the query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n"
)


def build_qwen3_reranker(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    n_ctx: int = 4096,
    seed: int = 4,
    name: str = "tiny-qwen3-reranker",
) -> Path:
    """A Qwen3 decoder used as a reranker, as ``convert_hf_to_gguf.py`` writes Qwen3-Reranker:
    rank pooling, labels ["yes", "no"], a two-row ``cls.output`` head (the LM head's "yes"
    and "no" rows) and the rerank prompt as the ``rerank`` chat template. llama.cpp scores
    its last token and takes a softmax over the two, so a score is P(yes), in 0–1."""
    import gguf

    head_dim = n_embd // n_head
    vocab = spm_vocab(QWEN_SPECIAL, [])
    shape = dict(n_ctx=n_ctx, n_embd=n_embd, n_layer=n_layer, n_ff=n_ff)
    writer = _decoder_writer(path, "qwen3", name, **shape, n_head=n_head, n_head_kv=n_head_kv)
    writer.add_pooling_type(gguf.PoolingType.RANK)
    writer.add_classifier_output_labels(["yes", "no"])
    writer.add_chat_template([{"name": "rerank", "template": QWEN3_RERANK_TEMPLATE}])
    _add_spm_tokenizer(writer, vocab, **QWEN_SPECIAL_IDS)
    t = _Tensors(writer, np.random.default_rng(seed))
    t.random("token_embd.weight", len(vocab[0]), n_embd, scale=1.0)
    t.ones("output_norm.weight", n_embd)
    t.random("cls.output.weight", 2, n_embd, scale=0.5)
    for i in range(n_layer):
        _qk_norm_block(t, f"blk.{i}", n_embd, n_head, n_head_kv, head_dim, n_ff, sandwich=False)
    return _finish(writer, path)
