"""The Responses API: ``POST /v1/responses`` (streamed and not), and for stored responses
``GET`` and ``DELETE /v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items``; each also
without the ``/v1`` prefix, as llama-server serves them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sanic import Blueprint, Request
from sanic.response import json

from ...engine.api import EngineError, InvalidRequest
from ..common.images import fetch_image_urls
from ..common.protocol import parse, parse_body
from ..common.wire import answer
from . import convert, protocol
from .store import ResponseStore
from .wire import ResponsesWriter, new_id

blueprint = Blueprint("responses")
_ITEM_PREFIXES = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
}


class ResponseNotFound(EngineError):
    code, status = "not_found", 404


def route(path: str, method: str) -> Callable[[Any], Any]:
    """Register a handler at ``/v1<path>`` and ``<path>``."""

    def register(handler: Any) -> Any:
        for prefix in ("/v1", ""):
            name = f"{handler.__name__}{'_v1' if prefix else ''}"
            methods = [method, "HEAD"] if method == "GET" else [method]
            blueprint.add_route(handler, prefix + path, methods=methods, name=name)
        return handler

    return register


def responses(request: Request) -> ResponseStore:
    ctx = request.app.ctx
    store = getattr(ctx, "response_store", None)
    if store is None:
        store = ctx.response_store = ResponseStore(ctx.settings.data_dir / "responses")
    return store


def record_of(store: ResponseStore, response_id: str, param: str | None = None) -> dict:
    record = store.load(response_id)
    if record is None:
        raise ResponseNotFound(f"Response with id '{response_id}' not found.", param=param)
    return record


def input_item(item: protocol.Item) -> dict[str, Any]:
    """An input item as stored and listed: with an id, message content as parts."""
    data = item.model_dump(by_alias=True, exclude_none=True)
    data.setdefault("id", new_id(_ITEM_PREFIXES[item.type]))
    if item.type == "message" and isinstance(item.content, str):
        kind = "output_text" if item.role == "assistant" else "input_text"
        data["content"] = [{"type": kind, "text": item.content}]
    return {"id": data.pop("id"), **data}


@route("/responses", "POST")
async def create_response(request: Request):
    body = await parse_body(protocol.ResponsesBody, request.body)
    store = responses(request)
    history: list[dict[str, Any]] = []
    if body.previous_response_id:
        record = record_of(store, body.previous_response_id, param="previous_response_id")
        history = store.conversation(record)
    chat = convert.chat_request(body, [parse(protocol.Item, item) for item in history])
    await fetch_image_urls(request, [chat])
    engine = request.app.ctx.engine
    model = chat.model or await engine.default_model()
    inputs = [input_item(item) for item in body.input]

    def keep(final: protocol.Response) -> None:
        if body.store:
            store.save({"response": final.wire(), "input": inputs, "history": history})

    writer = ResponsesWriter(new_id("resp"), model, body, on_final=keep)
    return await answer(request, [engine.chat(chat)], writer, body.stream)


@route("/responses/<response_id>", "GET")
async def get_response(request: Request, response_id: str):
    return json(record_of(responses(request), response_id)["response"])


@route("/responses/<response_id>", "DELETE")
async def delete_response(request: Request, response_id: str):
    if not responses(request).delete(response_id):
        raise ResponseNotFound(f"Response with id '{response_id}' not found.")
    return json(protocol.DeletedResponse(id=response_id, object="response", deleted=True).wire())


def _limit(request: Request) -> int:
    raw = request.args.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise InvalidRequest(f"limit must be an integer from 1 to 100, got {raw!r}", param="limit")
    return int(raw)


@route("/responses/<response_id>/input_items", "GET")
async def list_input_items(request: Request, response_id: str):
    items = list(record_of(responses(request), response_id).get("input", []))
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest(f"order must be asc or desc, got {order!r}", param="order")
    if order == "desc":
        items.reverse()
    after = request.args.get("after")
    if after:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise InvalidRequest(f"no input item {after!r} in this response", param="after")
        items = items[ids.index(after) + 1 :]
    limit = _limit(request)
    page = items[:limit]
    reply = protocol.InputItemList(
        object="list",
        data=page,
        first_id=page[0]["id"] if page else None,
        last_id=page[-1]["id"] if page else None,
        has_more=len(items) > limit,
    )
    return json(reply.wire())
