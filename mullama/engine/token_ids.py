"""Token ids that come from a client: checked against the vocabulary before llama.cpp sees them.

llama.cpp refuses an out-of-range id only when it decodes a whole batch (failing every
sequence in it), and ctypes wraps an id of 2**31 or more into the int32 range silently; so ids
are checked here, as Python integers, wherever a request hands them in.
"""

from __future__ import annotations

from collections.abc import Sequence

from .api import InvalidToken


def check_token_ids(
    tokens: Sequence[int],
    n_vocab: int,
    what: str = "the prompt",
    param: str | None = None,
    *,
    param_indexed: bool = False,
) -> None:
    """Raise :class:`InvalidToken` (400) naming the first id of ``tokens`` outside
    ``0 .. n_vocab - 1``; ``what`` says where the ids came from, for the message, and
    ``param_indexed`` makes the parameter name the id's index (``tokens[3]``)."""
    if not tokens or (min(tokens) >= 0 and max(tokens) < n_vocab):
        return
    index, token = next((i, t) for i, t in enumerate(tokens) if not 0 <= t < n_vocab)
    raise InvalidToken(
        f"{what} holds token id {token} (at index {index}), which is not in the model's "
        f"vocabulary of {n_vocab} tokens (ids 0 to {n_vocab - 1})",
        param=f"{param}[{index}]" if param_indexed and param else param,
        token=token,
        index=index,
        n_vocab=n_vocab,
    )
