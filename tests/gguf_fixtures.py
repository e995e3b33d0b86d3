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

    def weight(tensor: str, *shape: int, scale: float = 0.05) -> None:
        writer.add_tensor(tensor, (rng.standard_normal(shape) * scale).astype(np.float32))

    def norm(tensor: str, size: int) -> None:
        writer.add_tensor(tensor + ".weight", np.ones(size, dtype=np.float32))
        writer.add_tensor(tensor + ".bias", np.zeros(size, dtype=np.float32))

    def linear(tensor: str, n_out: int, n_in: int, scale: float = 0.05) -> None:
        weight(tensor + ".weight", n_out, n_in, scale=scale)
        writer.add_tensor(tensor + ".bias", np.zeros(n_out, dtype=np.float32))

    weight("token_embd.weight", len(tokens), n_embd, scale=1.0)
    weight("token_types.weight", 2, n_embd)
    weight("position_embd.weight", n_ctx, n_embd)
    norm("token_embd_norm", n_embd)
    for i in range(n_layer):
        for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
            linear(f"blk.{i}.{part}", n_embd, n_embd)
        norm(f"blk.{i}.attn_output_norm", n_embd)
        linear(f"blk.{i}.ffn_up", n_ff, n_embd)
        linear(f"blk.{i}.ffn_down", n_embd, n_ff)
        norm(f"blk.{i}.layer_output_norm", n_embd)
    if reranker:
        linear("cls", n_embd, n_embd, scale=0.5)
        linear("cls.output", 1, n_embd, scale=0.5)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


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
    import gguf

    rng = np.random.default_rng(seed)
    tokens, scores, types = spm_vocab()
    writer = gguf.GGUFWriter(str(path), "gemma3")
    writer.add_name(name)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_sliding_window(512)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(tokens.index("<bos>"))
    writer.add_eos_token_id(tokens.index("<eos>"))
    writer.add_unk_token_id(tokens.index("<unk>"))
    writer.add_pad_token_id(tokens.index("<pad>"))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(False)

    def weight(tensor: str, *shape: int, scale: float = 0.05) -> None:
        writer.add_tensor(tensor, (rng.standard_normal(shape) * scale).astype(np.float32))

    def norm(tensor: str, size: int) -> None:
        writer.add_tensor(tensor, np.ones(size, dtype=np.float32))

    weight("token_embd.weight", len(tokens), n_embd, scale=1.0)
    norm("output_norm.weight", n_embd)
    for i in range(n_layer):
        blk = f"blk.{i}"
        norm(f"{blk}.attn_norm.weight", n_embd)
        weight(f"{blk}.attn_q.weight", n_head * head_dim, n_embd)
        weight(f"{blk}.attn_k.weight", n_head_kv * head_dim, n_embd)
        weight(f"{blk}.attn_v.weight", n_head_kv * head_dim, n_embd)
        weight(f"{blk}.attn_output.weight", n_embd, n_head * head_dim)
        norm(f"{blk}.attn_q_norm.weight", head_dim)
        norm(f"{blk}.attn_k_norm.weight", head_dim)
        norm(f"{blk}.post_attention_norm.weight", n_embd)
        norm(f"{blk}.ffn_norm.weight", n_embd)
        weight(f"{blk}.ffn_gate.weight", n_ff, n_embd)
        weight(f"{blk}.ffn_up.weight", n_ff, n_embd)
        weight(f"{blk}.ffn_down.weight", n_embd, n_ff)
        norm(f"{blk}.post_ffw_norm.weight", n_embd)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


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

    rng = np.random.default_rng(seed)
    n_patches = (image_size // patch_size) ** 2
    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_type(gguf.GGUFType.MMPROJ)
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_clip_has_vision_encoder(True)
    writer.add_clip_projector_type(gguf.VisionProjectorType.GEMMA3)
    writer.add_vision_projection_dim(n_embd_text)
    writer.add_vision_image_size(image_size)
    writer.add_vision_patch_size(patch_size)
    writer.add_vision_embedding_length(n_embd)
    writer.add_vision_feed_forward_length(n_ff)
    writer.add_vision_block_count(n_layer)
    writer.add_vision_head_count(n_head)
    writer.add_vision_attention_layernorm_eps(1e-6)
    writer.add_vision_image_mean([0.5, 0.5, 0.5])
    writer.add_vision_image_std([0.5, 0.5, 0.5])
    writer.add_vision_use_gelu(True)
    writer.add_vision_projector_scale_factor(scale_factor)

    def weight(tensor: str, *shape: int, scale: float = 0.05) -> None:
        writer.add_tensor(tensor, (rng.standard_normal(shape) * scale).astype(np.float32))

    def norm(tensor: str, size: int) -> None:
        writer.add_tensor(tensor + ".weight", np.ones(size, dtype=np.float32))
        writer.add_tensor(tensor + ".bias", np.zeros(size, dtype=np.float32))

    def linear(tensor: str, n_out: int, n_in: int) -> None:
        weight(tensor + ".weight", n_out, n_in)
        writer.add_tensor(tensor + ".bias", np.zeros(n_out, dtype=np.float32))

    weight("v.patch_embd.weight", n_embd, 3, patch_size, patch_size)
    writer.add_tensor("v.patch_embd.bias", np.zeros(n_embd, dtype=np.float32))
    weight("v.position_embd.weight", n_patches, n_embd)
    for i in range(n_layer):
        blk = f"v.blk.{i}"
        for part in ("attn_q", "attn_k", "attn_v", "attn_out"):
            linear(f"{blk}.{part}", n_embd, n_embd)
        norm(f"{blk}.ln1", n_embd)
        norm(f"{blk}.ln2", n_embd)
        linear(f"{blk}.ffn_up", n_ff, n_embd)
        linear(f"{blk}.ffn_down", n_embd, n_ff)
    norm("v.post_ln", n_embd)
    writer.add_tensor("mm.soft_emb_norm.weight", np.ones(n_embd, dtype=np.float32))
    weight("mm.input_projection.weight", n_embd, n_embd_text, scale=0.2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]
QWEN2VL_IMAGE_MARKERS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>"]


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
    import gguf

    rng = np.random.default_rng(seed)
    head_dim = n_embd // n_head
    tokens, scores, types = spm_vocab(QWEN_SPECIAL, QWEN2VL_IMAGE_MARKERS)
    writer = gguf.GGUFWriter(str(path), "qwen2vl")
    writer.add_name(name)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(1_000_000.0)
    quarter = head_dim // 2 // 4  # sections of the rotated half: time, rows, columns, none
    writer.add_rope_dimension_sections([head_dim // 2 - 2 * quarter, quarter, quarter, 0])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_unk_token_id(tokens.index("<unk>"))
    writer.add_pad_token_id(tokens.index("<|endoftext|>"))
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)

    def weight(tensor: str, *shape: int, scale: float = 0.05) -> None:
        writer.add_tensor(tensor, (rng.standard_normal(shape) * scale).astype(np.float32))

    def zeros(tensor: str, size: int) -> None:
        writer.add_tensor(tensor, np.zeros(size, dtype=np.float32))

    weight("token_embd.weight", len(tokens), n_embd, scale=1.0)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    weight("output.weight", len(tokens), n_embd)
    for i in range(n_layer):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for part, n_out in (("attn_q", n_embd), ("attn_k", n_head_kv * head_dim)):
            weight(f"{blk}.{part}.weight", n_out, n_embd)
            zeros(f"{blk}.{part}.bias", n_out)
        weight(f"{blk}.attn_v.weight", n_head_kv * head_dim, n_embd)
        zeros(f"{blk}.attn_v.bias", n_head_kv * head_dim)
        weight(f"{blk}.attn_output.weight", n_embd, n_embd)
        writer.add_tensor(f"{blk}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        weight(f"{blk}.ffn_gate.weight", n_ff, n_embd)
        weight(f"{blk}.ffn_up.weight", n_ff, n_embd)
        weight(f"{blk}.ffn_down.weight", n_embd, n_ff)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


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

    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_type(gguf.GGUFType.MMPROJ)
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_clip_has_vision_encoder(True)
    writer.add_clip_projector_type(gguf.VisionProjectorType.QWEN2VL)
    writer.add_vision_projection_dim(n_embd_text)
    writer.add_vision_image_size(image_size)
    writer.add_vision_patch_size(patch_size)
    writer.add_vision_embedding_length(n_embd)
    writer.add_vision_feed_forward_length(n_ff)
    writer.add_vision_block_count(n_layer)
    writer.add_vision_head_count(n_head)
    writer.add_vision_attention_layernorm_eps(1e-6)
    writer.add_vision_image_mean([0.48145466, 0.4578275, 0.40821073])
    writer.add_vision_image_std([0.26862954, 0.26130258, 0.27577711])

    def weight(tensor: str, *shape: int, scale: float = 0.05) -> None:
        writer.add_tensor(tensor, (rng.standard_normal(shape) * scale).astype(np.float32))

    def norm(tensor: str, size: int) -> None:
        writer.add_tensor(tensor + ".weight", np.ones(size, dtype=np.float32))
        writer.add_tensor(tensor + ".bias", np.zeros(size, dtype=np.float32))

    def linear(tensor: str, n_out: int, n_in: int) -> None:
        weight(tensor + ".weight", n_out, n_in)
        writer.add_tensor(tensor + ".bias", np.zeros(n_out, dtype=np.float32))

    weight("v.patch_embd.weight", n_embd, 3, patch_size, patch_size)
    weight("v.patch_embd.weight.1", n_embd, 3, patch_size, patch_size)
    for i in range(n_layer):
        blk = f"v.blk.{i}"
        for part in ("attn_q", "attn_k", "attn_v", "attn_out"):
            linear(f"{blk}.{part}", n_embd, n_embd)
        norm(f"{blk}.ln1", n_embd)
        norm(f"{blk}.ln2", n_embd)
        linear(f"{blk}.ffn_up", n_ff, n_embd)
        linear(f"{blk}.ffn_down", n_embd, n_ff)
    norm("v.post_ln", n_embd)
    linear("mm.0", 4 * n_embd, 4 * n_embd)
    linear("mm.2", n_embd_text, 4 * n_embd)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


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

    rng = np.random.default_rng(seed)
    head_dim = n_embd // n_head
    tokens, scores, types = spm_vocab(QWEN_SPECIAL, [])
    writer = gguf.GGUFWriter(str(path), "qwen3")
    writer.add_name(name)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_pooling_type(gguf.PoolingType.RANK)
    writer.add_classifier_output_labels(["yes", "no"])
    writer.add_chat_template([{"name": "rerank", "template": QWEN3_RERANK_TEMPLATE}])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_unk_token_id(tokens.index("<unk>"))
    writer.add_pad_token_id(tokens.index("<|endoftext|>"))
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)

    def weight(tensor: str, *shape: int, scale: float = 0.05) -> None:
        writer.add_tensor(tensor, (rng.standard_normal(shape) * scale).astype(np.float32))

    def ones(tensor: str, size: int) -> None:
        writer.add_tensor(tensor, np.ones(size, dtype=np.float32))

    weight("token_embd.weight", len(tokens), n_embd, scale=1.0)
    ones("output_norm.weight", n_embd)
    weight("cls.output.weight", 2, n_embd, scale=0.5)
    for i in range(n_layer):
        blk = f"blk.{i}"
        ones(f"{blk}.attn_norm.weight", n_embd)
        weight(f"{blk}.attn_q.weight", n_head * head_dim, n_embd)
        weight(f"{blk}.attn_k.weight", n_head_kv * head_dim, n_embd)
        weight(f"{blk}.attn_v.weight", n_head_kv * head_dim, n_embd)
        weight(f"{blk}.attn_output.weight", n_embd, n_head * head_dim)
        ones(f"{blk}.attn_q_norm.weight", head_dim)
        ones(f"{blk}.attn_k_norm.weight", head_dim)
        ones(f"{blk}.ffn_norm.weight", n_embd)
        weight(f"{blk}.ffn_gate.weight", n_ff, n_embd)
        weight(f"{blk}.ffn_up.weight", n_ff, n_embd)
        weight(f"{blk}.ffn_down.weight", n_embd, n_ff)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
