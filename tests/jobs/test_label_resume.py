"""`ragsift label` killed with SIGKILL mid-run and rerun writes the bytes of a straight run.

Each run is a real `ragsift label` process on a tiny random BERT teacher (bi-encoder, whose
vectors shift by ~1e-8 with the batch they are encoded in). Candidates overlap heavily across
shards, so any state carried from one shard to the next (a vector cache) would show up as
different scores after a resume.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from ragsift.data.trec import write_run
from ragsift.jobs.sharded import shards_dir

WORDS = ("wolves hunt in packs across the northern hemisphere while cats sleep most of the day "
         "and python emphasises readability rust memory safety dense retrieval encodes "
         "queries documents vectors ranking").split()
#: Runs ragsift's CLI in a fresh process; with a delay > 0 each teacher call first sleeps, so
#: the test can kill the process between shards.
SCRIPT = """
import sys, time
delay = float(sys.argv[1])
if delay:
    from ragsift.jobs import teacher
    score = teacher.Teacher.score
    def slow(self, *args, **kwargs):
        time.sleep(delay)
        return score(self, *args, **kwargs)
    teacher.Teacher.score = slow
from ragsift.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def write_task(folder: Path, queries: int = 24, docs: int = 40, k: int = 8) -> Path:
    """A BEIR folder (train qrels) and a run of ``k`` random candidates per query."""
    rng = random.Random(7)
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for i in range(docs):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60)))
            f.write(json.dumps({"_id": f"d{i}", "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w") as f:
        for i in range(queries):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
            f.write(json.dumps({"_id": f"q{i}", "text": text}) + "\n")
    with open(folder / "qrels" / "train.tsv", "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for i in range(queries):
            f.write(f"q{i}\td{rng.randrange(docs)}\t1\n")
    run = {f"q{i}": {f"d{d}": float(k - r) for r, d in enumerate(rng.sample(range(docs), k))}
           for i in range(queries)}
    write_run(run, folder / "run.trec")
    return folder


def label_command(task: Path, teacher: Path, out: Path, delay: float) -> list[str]:
    return [sys.executable, "-c", SCRIPT, str(delay), "label", "--data", str(task),
            "--run", str(task / "run.trec"), "--teacher", str(teacher), "--teacher-kind",
            "bi-encoder", "--teacher-batch-size", "3", "--shard-size", "3", "--k", "8",
            "--out", str(out)]


def run_to_end(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def kill_after_shards(command: list[str], out: Path, shards: int) -> None:
    """Start ``command`` and SIGKILL it once ``shards`` shard files exist."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while len(list(shards_dir(out).glob("shard-*.jsonl"))) < shards:
            assert process.poll() is None, f"finished before the kill: {process.stderr.read()}"
            assert time.monotonic() < deadline, "no shard written in time"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL


def test_a_killed_label_run_resumes_to_the_same_bytes(tmp_path, tiny_model_dir):
    task = write_task(tmp_path / "task")
    straight, resumed = tmp_path / "straight.jsonl", tmp_path / "resumed.jsonl"
    kill_after_shards(label_command(task, tiny_model_dir, resumed, delay=0.7), resumed, 2)
    assert not resumed.exists()
    done = sorted(p.name for p in shards_dir(resumed).glob("shard-*.jsonl"))
    assert 2 <= len(done) < 8  # killed mid-run: 24 queries make 8 shards
    run_to_end(label_command(task, tiny_model_dir, resumed, delay=0))
    run_to_end(label_command(task, tiny_model_dir, straight, delay=0))
    rows = [json.loads(line) for line in straight.read_text().splitlines()]
    assert len(rows) == 24 and all(row["neg_scores"] for row in rows)
    assert resumed.read_bytes() == straight.read_bytes()
