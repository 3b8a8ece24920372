"""Batch jobs on a local Ray cluster: same bytes as the local backend, a worker killed
mid-job, and the ``ragsift job`` commands."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from ragsift.errors import RagsiftError
from ragsift.jobs.backends import Lazy, RayBackend, resolve
from ragsift.jobs.sharded import run_sharded, shards_dir

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


KEYS = [f"k{i}" for i in range(10)]


def shard_function(marker: str | None = None):
    """Rows of squares; with ``marker``, the process exits (like a killed worker) the first
    time it meets shard ``k6`` and leaves ``marker`` as a trace. Built as a closure so that
    Ray ships it by value."""

    def work(shard: list[str]) -> list[str]:
        if marker and shard[0] == "k6" and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return [json.dumps({"key": k, "square": int(k[1:]) ** 2}) for k in shard]

    return work


def test_ray_output_equals_local_bytes(tmp_path):
    run_sharded(KEYS, shard_function(), tmp_path / "local.jsonl", shard_size=3, show_progress=False)
    result = run_sharded(KEYS, shard_function(), tmp_path / "ray.jsonl", shard_size=3,
                         show_progress=False, backend=RayBackend(workers=2))
    assert result.shards_done == 4 and result.lines == 10
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()


def test_a_killed_worker_is_restarted_and_its_shard_retried(tmp_path):
    marker = tmp_path / "killed"
    run_sharded(KEYS, shard_function(), tmp_path / "local.jsonl", shard_size=3, show_progress=False)
    out = tmp_path / "ray.jsonl"
    run_sharded(KEYS, shard_function(str(marker)), out, shard_size=3, show_progress=False,
                backend=RayBackend(workers=2, retries=1))
    assert marker.exists()  # a worker really died mid-job
    assert out.read_bytes() == (tmp_path / "local.jsonl").read_bytes()


def test_without_retries_the_job_stops_and_a_rerun_completes(tmp_path):
    marker = tmp_path / "killed"
    run_sharded(KEYS, shard_function(), tmp_path / "local.jsonl", shard_size=3, show_progress=False)
    out = tmp_path / "ray.jsonl"
    with pytest.raises(RagsiftError, match="rerun the same command"):
        run_sharded(KEYS, shard_function(str(marker)), out, shard_size=3, show_progress=False,
                    backend=RayBackend(workers=1, retries=0))
    assert not out.exists()
    kept = sorted(p.name for p in shards_dir(out).glob("shard-*"))
    assert "shard-00002.jsonl" not in kept  # the shard of k6 died
    result = run_sharded(KEYS, shard_function(str(marker)), out, shard_size=3,
                         show_progress=False, backend=RayBackend(workers=1, retries=0))
    assert result.shards_skipped == len(kept) and result.shards_done == 4 - len(kept)
    assert out.read_bytes() == (tmp_path / "local.jsonl").read_bytes()


def test_lazy_values_are_built_once_per_process_and_never_pickled():
    builds: list[int] = []
    lazy = Lazy(lambda: builds.append(1) or "model")
    assert resolve(lazy) == "model" and resolve(lazy) == "model" and builds == [1]
    assert resolve("plain") == "plain"
    assert ray.cloudpickle.loads(ray.cloudpickle.dumps(lazy))._value is None


def test_job_commands_on_ray_equal_the_local_ones(tiny_beir, tiny_cross_encoder, minilm_dir,
                                                  tmp_path):
    from ragsift.cli.main import main
    from ragsift.data.beir import load_corpus
    from ragsift.jobs.encode import read_vectors
    from ragsift.models.bi_encoder import BiEncoder

    shutil.copy(tiny_beir / "qrels" / "test.tsv", tiny_beir / "qrels" / "train.tsv")
    run_file = tmp_path / "bm25.trec"
    assert main(["search", "--data", str(tiny_beir), "--split", "train", "--retriever", "bm25",
                 "--k", "5", "--out", str(run_file)]) == 0
    label = ["--data", str(tiny_beir), "--run", str(run_file), "--teacher",
             str(tiny_cross_encoder), "--k", "5", "--shard-size", "2"]
    assert main(["label", *label, "--out", str(tmp_path / "local.jsonl")]) == 0
    assert main(["job", "label", *label, "--backend", "ray", "--workers", "2",
                 "--out", str(tmp_path / "ray.jsonl")]) == 0
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()

    mine = ["--data", str(tiny_beir), "--retriever", "bm25", "--teacher",
            str(tiny_cross_encoder), "--negatives", "2", "--shard-size", "2"]
    assert main(["mine", *mine, "--out", str(tmp_path / "mined-local.jsonl")]) == 0
    assert main(["job", "mine", *mine, "--backend", "ray", "--workers", "1", "--out",
                 str(tmp_path / "mined-ray.jsonl")]) == 0
    assert ((tmp_path / "mined-ray.jsonl").read_bytes()
            == (tmp_path / "mined-local.jsonl").read_bytes())

    encode = ["job", "encode", "--data", str(tiny_beir), "--model", str(minilm_dir),
              "--shard-size", "3"]
    assert main([*encode, "--out", str(tmp_path / "vectors-local.jsonl")]) == 0
    assert main([*encode, "--backend", "ray", "--workers", "1", "--out",
                 str(tmp_path / "vectors-ray.jsonl")]) == 0
    ids, vectors = read_vectors(tmp_path / "vectors-ray.jsonl")
    corpus = load_corpus(tiny_beir / "corpus.jsonl")
    assert ids == list(corpus)
    expected = BiEncoder.from_pretrained(minilm_dir, device="cpu").encode_documents(
        list(corpus.values()))
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    local_ids, local_vectors = read_vectors(tmp_path / "vectors-local.jsonl")
    assert local_ids == ids
    np.testing.assert_allclose(local_vectors, vectors, atol=1e-6)


def test_read_vectors_names_the_bad_line(tmp_path):
    bad = tmp_path / "vectors.jsonl"
    bad.write_text('{"id": "a", "dim": 1, "vector": "AACAPw=="}\n{"id": "b"}\n')
    with pytest.raises(RagsiftError, match="line 2"):
        from ragsift.jobs.encode import read_vectors

        read_vectors(bad)
