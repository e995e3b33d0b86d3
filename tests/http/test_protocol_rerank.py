"""The rerank API in-process: what a body may hold (and the error naming what it may not),
the body as the Engine's request, and the replies' shapes (llama-server/Jina/Cohere, TEI)."""

from __future__ import annotations

import pytest

from mullama.engine.api import InvalidRequest, RerankRequest, RerankResult, RerankScore
from mullama.http.common.protocol import parse
from mullama.http.rerank import convert, wire
from mullama.http.rerank.protocol import RerankBody


def body(**fields) -> RerankBody:
    return parse(RerankBody, {"model": "bge", "query": "q", **fields})


def test_documents_may_be_strings_or_objects_with_a_text():
    mixed = body(documents=["a", {"text": "b", "title": "kept by Cohere"}, ""])
    assert mixed.docs == ["a", "b", ""] and not mixed.tei
    request = convert.rerank_request(body(documents=["a"], top_n=3, truncate=False))
    assert request == RerankRequest("bge", "q", ["a"], top_n=3, truncate=False)


def test_texts_is_teis_name_for_the_documents():
    tei = body(texts=["a", "b"], return_text=True)
    assert tei.tei and tei.docs == ["a", "b"]


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        ({}, "documents", "documents is required"),
        ({"documents": "a"}, "documents", "documents must be an array of strings or of objects"),
        (
            {"documents": ["a", 5]},
            "documents",
            "documents[1] must be a string or an object with a text string, got integer",
        ),
        ({"texts": [{"title": "x"}]}, "texts", "texts[0] must be a string or an object"),
        ({"documents": ["a"], "top_n": 0}, "top_n", "top_n must be at least 1, got 0"),
        ({"documents": ["a"], "top_n": "2"}, "top_n", "top_n must be an integer, got string"),
        ({"documents": ["a"], "query": 7}, "query", "query must be a string, got integer"),
        ({"documents": ["a"], "return_documents": "yes"}, "return_documents", "a boolean"),
    ],
)
def test_a_bad_body_is_refused_naming_the_parameter(fields, param, message):
    with pytest.raises(InvalidRequest) as info:
        parse(RerankBody, {"model": "bge", "query": "q", **fields})
    assert info.value.param == param
    assert message in info.value.message


def test_a_missing_query_is_named():
    with pytest.raises(InvalidRequest, match="query is required"):
        parse(RerankBody, {"documents": ["a"]})


RESULT = RerankResult("bge:latest", [RerankScore(2, 3.5), RerankScore(0, -1.0)], 17)


def test_the_reply_lists_results_best_first_with_usage_and_documents_when_asked():
    plain = wire.reply(RESULT, ["d0", "d1", "d2"], "bge", with_documents=False).wire()
    assert plain["object"] == "list" and plain["model"] == "bge"
    assert plain["id"].startswith("rerank-")
    assert plain["results"] == [
        {"index": 2, "relevance_score": 3.5},
        {"index": 0, "relevance_score": -1.0},
    ]
    assert plain["usage"] == {"prompt_tokens": 17, "total_tokens": 17}
    assert plain["meta"] == {"tokens": {"input_tokens": 17, "output_tokens": 0}}
    shown = wire.reply(RESULT, ["d0", "d1", "d2"], "", with_documents=True).wire()
    assert shown["model"] == "bge:latest"  # no model named: the one that answered
    assert [r["document"] for r in shown["results"]] == [{"text": "d2"}, {"text": "d0"}]


def test_the_tei_reply_is_a_bare_array_of_scores():
    assert wire.tei_reply(RESULT, ["d0", "d1", "d2"], with_text=False) == [
        {"index": 2, "score": 3.5},
        {"index": 0, "score": -1.0},
    ]
    assert wire.tei_reply(RESULT, ["d0", "d1", "d2"], with_text=True)[0]["text"] == "d2"
