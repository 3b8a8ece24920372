"""The body-size limit as a bare ASGI middleware, and validation errors that always render."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("fastapi")

from ragsift.serve.guards import BodyLimit, clean_error  # noqa: E402

LIMIT = 1024


def call(middleware: BodyLimit, chunks: list[bytes], headers: list[tuple[bytes, bytes]]
         ) -> tuple[list[dict[str, Any]], int]:
    """Run one request through ``middleware``; the messages sent and the chunks received."""
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
               for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/rerank", "headers": headers}
    asyncio.run(middleware(scope, receive, send))
    return sent, len(chunks) - len(pending)


async def echo_app(scope: dict, receive: Any, send: Any) -> None:
    """Reads the whole body like FastAPI (turning a failed read into a 400) and echoes its
    length."""
    size = 0
    try:
        while True:
            message = await receive()
            size += len(message["body"])
            if not message["more_body"]:
                break
    except Exception:  # noqa: BLE001 - what FastAPI does with a failed read
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"error parsing the body"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def answer(sent: list[dict[str, Any]]) -> tuple[int, bytes]:
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], sent[1]["body"]


def test_a_declared_oversized_body_is_refused_unread():
    def app(*_: Any) -> None:
        raise AssertionError("the app must not run")

    sent, received = call(BodyLimit(app, LIMIT), [b"x" * 2000],
                          [(b"content-length", b"2000")])
    status, body = answer(sent)
    assert (status, received) == (413, 0)
    assert json.loads(body)["detail"].startswith("a body of 2000 bytes over the limit of 1024")


def test_a_chunked_body_is_cut_off_at_the_limit():
    sent, received = call(BodyLimit(echo_app, LIMIT), [b"x" * 600] * 10, [])
    status, body = answer(sent)
    assert (status, received) == (413, 2)
    assert "limits.max_body_bytes" in json.loads(body)["detail"]


def test_a_body_within_the_limit_passes():
    sent, _ = call(BodyLimit(echo_app, LIMIT), [b"x" * 512, b"x" * 512],
                   [(b"content-length", b"1024")])
    assert answer(sent) == (200, b"1024")


def test_validation_errors_drop_the_input_and_escape_surrogates():
    error = {"type": "string_type", "loc": ("body", "filter", "\ud800"),
             "msg": "Input should be a valid string", "input": float("nan"),
             "ctx": {"error": ValueError("x")}}
    cleaned = clean_error(error)
    assert cleaned == {"type": "string_type", "loc": ["body", "filter", "\\ud800"],
                       "msg": "Input should be a valid string"}
    json.dumps(cleaned, allow_nan=False).encode("utf-8")
    decode = {"type": "json_invalid", "loc": ("body", 7), "msg": "JSON decode error",
              "input": {}, "ctx": {"error": "Expecting value"}}
    assert clean_error(decode)["msg"] == "JSON decode error: Expecting value"
