"""Test helper: ``python -m llama_cpp.server`` (llama-cpp-python's OpenAI-compatible server) on
a free loopback port, started and stopped around a block."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def llama_server(model: Path, alias: str, log: Path, *options: str, n_ctx: int = 2048,
                 threads: int = 1, timeout: float = 120) -> Iterator[str]:
    """Serve the GGUF ``model`` as ``alias`` (server output to ``log``); yields the ``/v1`` URL
    once ``/models`` answers (fails the test after ``timeout`` seconds or if the server exits)."""
    pytest.importorskip("openai")
    pytest.importorskip("sse_starlette")  # llama-cpp-python[server]
    port = free_port()
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias",
             alias, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
             "--n_threads", str(threads), *options], stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not answer within {timeout} s")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
