"""Tiny random-weight GGUF models for the paths no small real model on the registries covers.

Built with the ``gguf`` package, with the tensor names, shapes and metadata llama.cpp's
``convert_hf_to_gguf.py`` writes for a BERT-family model (``bert`` architecture, WordPiece
vocabulary as the converter stores it: whole words with a leading "▁", sub-words without "##").
The weights are random: tests judge shapes and plumbing (dimensions, pooling, batching,
ordering by score), never the numbers' meaning. Each file is a few hundred KB and is built in
well under a second.
"""

from __future__ import annotations

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
