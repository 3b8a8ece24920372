"""Fixtures of the server tests: a BM25 index with a corpus, the config that serves it with the
tiny models, and a real uvicorn server on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DOCS, write_beir

API_KEY = "test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
TOPICS = {"d1": "animals", "d2": "animals", "d7": "animals", "d3": "code", "d6": "code"}


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory) -> Path:
    """A BM25 index of the tiny BEIR corpus, beside a copy of the corpus with a topic field."""
    from ragsift.data.beir import load_corpus
    from ragsift.retrieve import BM25Retriever

    folder = tmp_path_factory.mktemp("serve")
    beir = write_beir(folder / "beir")
    with open(folder / "corpus.jsonl", "w") as f:
        for doc_id, (title, text) in DOCS.items():
            row = {"_id": doc_id, "title": title, "text": text, "topic": TOPICS.get(doc_id, "")}
            f.write(json.dumps(row) + "\n")
    bm25 = BM25Retriever()
    bm25.index(load_corpus(beir))
    return bm25.save(folder / "index")


@pytest.fixture(scope="session")
def serve_config(tiny_cross_encoder, tiny_model_dir, index_dir) -> dict[str, Any]:
    """A config (as parsed YAML) serving the tiny reranker ``tiny``, the tiny embedder
    ``tiny-embed`` and the BM25 index with its corpus, behind :data:`API_KEY`."""
    return {
        "rerankers": {"tiny": str(tiny_cross_encoder)},
        "embedders": {"tiny-embed": {"model": str(tiny_model_dir),
                                     "options": {"device": "cpu"}}},
        "index": {"path": str(index_dir), "corpus": str(index_dir.parent / "corpus.jsonl")},
        "limits": {"max_documents": 20, "max_tokens": 2000, "max_wait_ms": 20},
        "api_key": API_KEY,
    }


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1; yields its base URL."""
    uvicorn = pytest.importorskip("uvicorn")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
