"""Seeded fuzzing of the HTTP endpoints with malformed JSON bodies: every answer is a 2xx, or a
4xx whose JSON body says what was wrong (a 422 names the body field); never a 5xx."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")

from ragsift.serve.app import create_app  # noqa: E402
from ragsift.serve.config import ServeConfig  # noqa: E402
from tests.serve.conftest import AUTH  # noqa: E402

SEED = 27
REQUESTS = 320
VALID = {
    "/v2/rerank": {"model": "tiny", "query": "which animals sleep", "documents": [
        "Cats sleep a lot.", {"text": "Wolves hunt in packs."}], "top_n": 1,
        "return_documents": True, "max_tokens_per_doc": 8},
    "/rerank": {"query": "which animals sleep", "texts": ["Cats sleep.", "Paris"],
                "raw_scores": True, "return_text": True, "truncate": True},
    "/v1/embeddings": {"model": "tiny-embed", "input": ["cats", "wolves"], "dimensions": 8,
                       "encoding_format": "base64", "user": "u"},
    "/search": {"query": "wolves", "k": 3, "filter": {"topic": "animals"}},
}
DEEP = "[" * 5000 + "]" * 5000  # deeper than Python's JSON decoder recurses
VALUES = [  # raw JSON: wrong types, non-JSON numbers, lone surrogates, huge and deep values
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 5000, "10" * 30, "-1", "0",
    "2.5", "true", "false", "null", '""', '"x\\ud800y"', '"\\udfff"', '["\\ud83d"]',
    '{"text": "\\udc00"}', '{"text": NaN}', "[]", "{}", "[1, 2]", '[null]', '[[["a"]]]',
    '{"topic": NaN}', '{"\\ud800": "a"}', '{"topic": {"x": 1}}', '"' + "w " * 3000 + '"',
    "[" * 50 + '"a"' + "]" * 50, DEEP,
]
BODIES = [  # whole bodies that are not the expected object
    b"", b"not json", b"{", b'{"query": }', b"[1, 2]", b'"a string"', b"null", b"NaN",
    b"\xff\xfe\x00garbage", DEEP.encode(), b'{"query": "a", "query": "\\ud800"}',
]


def raw(value: Any) -> str:
    """``value`` as JSON text, unless it already is (a string from :data:`VALUES`)."""
    return value if isinstance(value, str) and value in VALUES else json.dumps(value)


def mutated(rng: random.Random, body: dict[str, Any]) -> str:
    """``body`` as JSON text with one to three fields changed: a raw value put in, a field
    dropped, a list element broken, or an unknown field added."""
    fields = {key: raw(value) for key, value in body.items()}
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(list(body))
        action = rng.random()
        if action < 0.5:
            fields[key] = rng.choice(VALUES)
        elif action < 0.7:
            fields.pop(key, None)
        elif action < 0.9 and isinstance(body[key], list):
            items = [raw(x) for x in body[key]]
            items[rng.randrange(len(items))] = rng.choice(VALUES)
            fields[key] = "[" + ", ".join(items) + "]"
        else:
            fields[f"extra_{rng.randrange(9)}"] = rng.choice(VALUES)
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields.items()) + "}"


def cases(rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """:data:`REQUESTS` (endpoint, body) pairs: mostly mutated valid bodies, some whole-body
    garbage."""
    for _ in range(REQUESTS):
        path = rng.choice(list(VALID))
        if rng.random() < 0.15:
            yield path, rng.choice(BODIES)
        else:
            yield path, mutated(rng, VALID[path]).encode()


def check(path: str, body: bytes, response: Any) -> None:
    """A 2xx, or a 4xx with a JSON ``detail`` (a 422's naming the body field)."""
    where = f"{path} {body[:200]!r} -> {response.status_code} {response.text:.300}"
    assert response.status_code < 500, where
    answer = response.json()
    if response.status_code < 400:
        return
    assert answer["detail"], where
    if response.status_code == 422:
        assert all(error["loc"][0] == "body" and error["msg"] for error in answer["detail"]), where


def test_malformed_bodies_never_get_a_server_error(serve_config):
    from fastapi.testclient import TestClient

    headers = {**AUTH, "content-type": "application/json"}
    statuses: set[int] = set()
    with TestClient(create_app(ServeConfig.from_dict(serve_config)),
                    raise_server_exceptions=False) as client:
        for path, body in cases(random.Random(SEED)):
            response = client.post(path, content=body, headers=headers)
            check(path, body, response)
            statuses.add(response.status_code)
        assert client.get("/health").json()["status"] == "ok"
    assert {200, 422} <= statuses  # the fuzzing reaches the models as well as the validation
