"""llama-server's ``/tokenize`` and ``/detokenize`` bodies and replies.

``model`` is Mullama's addition (llama-server serves one model): absent, the default model."""

from __future__ import annotations

from typing_extensions import TypedDict

from ..common.protocol import Body, Reply


class TokenizeBody(Body):
    content: str
    model: str = ""
    add_special: bool = False  # BOS/EOS as the vocabulary wants them
    parse_special: bool = True  # "<start_of_turn>" in the text is that control token
    with_pieces: bool = False


class DetokenizeBody(Body):
    tokens: list[int]
    model: str = ""


class TokenPiece(TypedDict):
    id: int
    piece: str | list[int]  # the text, or its bytes where they are not valid UTF-8 alone


class TokenizeReply(Reply):
    tokens: list[int] | list[TokenPiece]


class DetokenizeReply(Reply):
    content: str
