"""Rerank request and reply bodies.

One request shape serves llama-server's, Jina's and Cohere's clients: ``model``, ``query``,
``documents`` (strings, or objects with a ``text``, as Cohere and Jina send them), ``top_n``
and ``return_documents``. Hugging Face TEI's clients send ``texts`` instead (and
``return_text``) and get TEI's reply, a bare array, as llama-server answers them.
Mullama adds ``truncate`` (default true: a pair longer than the model's context loses the end
of its document; false: it is refused) and ``keep_alive``."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from ..common.protocol import Body, Reply, describe, required


def _texts(value: Any, info: ValidationInfo) -> Any:
    """Each document as its text: a string, or an object whose ``text`` is one."""
    if not isinstance(value, list):
        raise ValueError("must be an array of strings or of objects with a text")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            item = item["text"]
        if not isinstance(item, str):
            raise PydanticCustomError(
                "mullama_said",
                f"{info.field_name}[{i}] must be a string or an object with a text string, "
                f"got {describe(item)}",
            )
        out.append(item)
    return out


Texts = Annotated[list[str], BeforeValidator(_texts)]


class RerankBody(Body):
    model: str = ""
    query: str
    documents: Texts | None = None
    texts: Texts | None = None  # TEI's name for the documents: then TEI's reply
    top_n: Annotated[int, Field(ge=1)] | None = None
    return_documents: bool = False
    return_text: bool = False  # TEI's return_documents
    truncate: bool = True
    keep_alive: str | int | float | None = None

    @model_validator(mode="after")
    def _documents_given(self) -> RerankBody:
        if self.documents is None and self.texts is None:
            raise required("documents")
        return self

    @property
    def tei(self) -> bool:
        return self.documents is None

    @property
    def docs(self) -> list[str]:
        return self.documents if self.documents is not None else (self.texts or [])


class Document(TypedDict):
    text: str


class Result(TypedDict):
    index: int
    relevance_score: float
    document: NotRequired[Document]


class Usage(TypedDict):
    prompt_tokens: int
    total_tokens: int


class Tokens(TypedDict):
    input_tokens: int
    output_tokens: int


class Meta(TypedDict):
    tokens: Tokens  # Cohere's accounting of the same tokens


class RerankReply(Reply):
    id: str
    object: Literal["list"]
    model: str
    results: list[Result]
    usage: Usage
    meta: Meta


class TEIResult(TypedDict):
    index: int
    score: float
    text: NotRequired[str]
