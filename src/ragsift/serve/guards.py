"""What stands between a client's bytes and the endpoints: a body-size limit and error bodies
that always render.

:class:`BodyLimit` refuses a request body over ``limits.max_body_bytes`` with a 413 before
anything parses it: at once when its ``Content-Length`` says so, else as soon as the bytes
streamed in (a chunked body) pass the limit. So an oversized request costs no more memory than
the limit, and no time beyond reading its headers.

:func:`validation_error` answers a malformed body with FastAPI's 422 shape, ``{"detail": [{"loc":
["body", field, ...], "msg": ..., "type": ...}]}``, but without echoing the client's input back:
the input may not be JSON at all (NaN, a lone surrogate), which made FastAPI's own handler fail
with a 500. :func:`http_error` gives the same shape to a body FastAPI could not decode for other
reasons than bad syntax (nested too deeply, not UTF-8, an integer of over 4300 digits), which
FastAPI answers with a bare 400.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException as FastAPIHTTPException
from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """Raised to the app by :class:`BodyLimit`'s ``receive`` when the body passes the limit."""


class BodyLimit:
    """Pure ASGI middleware: answer 413 with a JSON ``detail`` to a request whose body is over
    ``max_bytes``, never handing the app more than ``max_bytes`` of it.

    Example:
        >>> app.add_middleware(BodyLimit, max_bytes=4 * 1024 * 1024)  # doctest: +SKIP
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self.refuse(send, f"a body of {declared} bytes")
            return
        guard = _Guard(self.max_bytes, receive, send)
        try:
            await self.app(scope, guard.receive, guard.send)
        except BodyTooLarge:
            pass
        if guard.over and not guard.started:
            await self.refuse(send, "a body")

    async def refuse(self, send: Send, what: str) -> None:
        """Send the 413 answer (the server discards the rest of the body)."""
        detail = (f"{what} over the limit of {self.max_bytes} bytes per request "
                  "(limits.max_body_bytes in the server config)")
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _Guard:
    """One request's view through :class:`BodyLimit`: counts the body bytes the app receives
    and, once they pass the limit, keeps the app's own answer (an error about the failed read)
    from the client, who gets the 413 instead."""

    def __init__(self, max_bytes: int, receive: Receive, send: Send) -> None:
        self.max_bytes = max_bytes
        self.received = 0
        self.over = False  # the body passed the limit
        self.started = False  # a response has started
        self._receive, self._send = receive, send

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                self.over = True
                raise BodyTooLarge(f"over {self.max_bytes} bytes")
        return message

    async def send(self, message: Message) -> None:
        if self.over and not self.started:
            return  # the middleware answers 413 when the app is done
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or ``None`` when it has none (or a malformed one)."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def printable(value: Any) -> Any:
    """``value`` safe to encode as UTF-8 JSON: lone surrogates in a string become ``\\udXXX``
    escapes; anything else is returned as is."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def clean_error(error: dict[str, Any]) -> dict[str, Any]:
    """A pydantic or FastAPI validation error without the client's ``input``: its location,
    message (with the JSON decoder's reason, for a body that is not JSON) and type."""
    message = error["msg"]
    reason = (error.get("ctx") or {}).get("error")
    if isinstance(reason, str):
        message = f"{message}: {reason}"
    return {"loc": [printable(part) for part in error["loc"]], "msg": printable(message),
            "type": error["type"]}


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """The 422 answer to a malformed body (FastAPI's shape, without the input)."""
    return JSONResponse(status_code=422,
                        content={"detail": [clean_error(error) for error in exc.errors()]})


async def http_error(request: Request, exc: HTTPException) -> Response:
    """FastAPI's answer to ``exc``, except for the 400 it raises from a body its JSON decoder
    failed on (a ``ValueError`` or ``RecursionError``): a 422 naming the body and the reason."""
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, (ValueError, RecursionError)):
        error = {"loc": ["body"], "msg": printable(f"invalid JSON: {cause}"),
                 "type": "json_invalid"}
        return JSONResponse(status_code=422, content={"detail": [error]})
    return await http_exception_handler(request, exc)


def unprocessable(message: str, *locations: Sequence[str | int]) -> FastAPIHTTPException:
    """A 422 shaped like FastAPI's validation errors, one entry per location in the body
    (``("documents", 3, "text")``), each with ``message``."""
    return FastAPIHTTPException(422, detail=[{"loc": ["body", *loc], "msg": message,
                                              "type": "value_error"} for loc in locations])
