"""kill -9 during adds and deletes: the collection opens at a whole commit every time, loses
nothing committed, and a rerun of the same add ends where an uninterrupted one does."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragsift.collection import Collection
from tests.collection.conftest import random_document

BATCH = 15
WRITER = f"""
import json, sys, time
from ragsift.collection import Collection
folder, action, path = sys.argv[1:4]
col = Collection.open(folder)
items = json.load(open(path))
prepare = col._prepare
def slow_prepare(*args):  # widen the window between commits so kills land inside the job
    time.sleep(0.15)
    return prepare(*args)
col._prepare = slow_prepare
col.tokenizer  # loaded before the clock starts
print("ready", flush=True)
if action == "add":
    col.add(items, commit_every={BATCH})
else:
    col.delete(items)
"""


def run_writer(folder: Path, action: str, items_file: Path, kill_after: float | None) -> int:
    """Run an add/delete in a child process; SIGKILL it after ``kill_after`` seconds."""
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), action,
                                str(items_file)], env={**os.environ, "TQDM_DISABLE": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if kill_after is None:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()
        return 0
    assert process.stdout.readline() == b"ready\n", process.stderr.read().decode()
    time.sleep(kill_after)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process.returncode


def state(col: Collection) -> dict[str, str]:
    return {i: col.get(i).text for i in col.ids()}


def test_kill_during_add_and_delete(tmp_path):
    rng = random.Random(3)
    docs = [random_document(rng, f"d{i}") for i in range(120)]
    items = tmp_path / "docs.json"
    items.write_text(json.dumps(docs))
    reference = Collection.create(tmp_path / "reference", retriever="bm25", chunk_tokens=40)
    reference.add(docs)

    folder = tmp_path / "c"
    Collection.create(folder, retriever="bm25", chunk_tokens=40)
    by_id = {d["id"]: d["text"] for d in docs}
    sizes = []
    for delay in (0.3, 0.35, 0.4, 0.3, 0.35):
        run_writer(folder, "add", items, delay)
        col = Collection.open(folder)  # a whole commit, whatever the moment of the kill
        got = state(col)
        sizes.append(len(got))
        assert len(got) % BATCH == 0
        assert all(by_id[i] == text for i, text in got.items())
        assert {h.doc_id for h in col.search("cell", k=500)} <= set(got)
    assert any(0 < size < len(docs) for size in sizes), sizes  # killed inside the job
    run_writer(folder, "add", items, None)  # the rerun finishes the job
    col = Collection.open(folder)
    assert state(col) == state(reference)
    for query in ("cell protein", "tumor"):
        assert ([(h.id, round(h.score, 9)) for h in col.search(query, k=20)]
                == [(h.id, round(h.score, 9)) for h in reference.search(query, k=20)])

    gone = items.with_name("gone.json")
    gone.write_text(json.dumps([d["id"] for d in docs[::2]]))
    for delay in (0.1, 0.15, 0.2):
        run_writer(folder, "delete", gone, delay)
        remaining = set(Collection.open(folder).ids())
        assert remaining in (set(by_id), set(by_id) - set(json.loads(gone.read_text())))
    run_writer(folder, "delete", gone, None)
    assert set(Collection.open(folder).ids()) == {d["id"] for d in docs[1::2]}


@pytest.mark.parametrize("where", ["segment", "manifest"])
def test_crash_before_the_rename_leaves_the_previous_commit(tmp_path, monkeypatch, where):
    rng = random.Random(4)
    col = Collection.create(tmp_path / "c", retriever="bm25")
    col.add([random_document(rng, "a")])
    import ragsift.collection.manifest as manifest_module
    import ragsift.collection.segment as segment_module

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    module = segment_module if where == "segment" else manifest_module
    monkeypatch.setattr(module, "atomic_dir" if where == "segment" else "atomic_file", boom)
    with pytest.raises(KeyboardInterrupt):
        col.add([random_document(rng, "b")])
    reopened = Collection.open(tmp_path / "c")
    assert reopened.ids() == ["a"] and reopened.generation == 1
