"""``ragsift adapt`` end to end on a made-up corpus with a tiny bi-encoder and a fake generator:
the stages' outputs, the teacher scores against the base model's own cosines, resuming (a
complete stage is skipped; a killed synthesis continues shard by shard, byte for byte), the
time budget's bounds, and the command line's usage errors."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from ragsift.adapt.config import load_adapt_config
from ragsift.adapt.stages import STATE_FILE, adapt
from ragsift.cli.main import main
from ragsift.errors import UsageError
from ragsift.jobs.sharded import shards_dir
from ragsift.models.generation.generator import Prompt, TextGenerator
from ragsift.types import Document

TOPICS = ["cats sleep", "dogs bark", "python code", "rust memory", "paris tower", "wolves hunt",
          "ocean tides", "volcano lava", "honey bees", "desert cactus", "jazz music",
          "chess openings", "solar panels", "coffee beans", "glacier ice", "rice paddies",
          "violin strings", "comet tails", "coral reefs", "maple syrup"]
DOCS = {f"d{i:02d}": f"{topic} {i} is the subject of this passage about {topic.split()[0]} "
                     f"and nothing else, {topic.split()[1]} included"
        for i, topic in enumerate(TOPICS)}
WORDS = 4  # the fake generator's query: the first WORDS words of the passage


class FakeGenerator(TextGenerator):
    """Answers every prompt with the first :data:`WORDS` words of its passage; counts calls
    and raises KeyboardInterrupt at call ``die_at`` (a kill mid-synthesis)."""

    def __init__(self, die_at: int | None = None, seconds_per_doc: float = 0.0) -> None:
        super().__init__(max_new_tokens=8, batch_size=4)
        self.calls = 0
        self.die_at = die_at
        self.seconds_per_doc = seconds_per_doc

    def encode_chat(self, messages: Sequence[dict[str, str]]) -> Prompt:
        return list(messages)

    def encode_text(self, text: str) -> Prompt:
        return [{"role": "user", "content": text}]

    def cut(self, text: str) -> str:
        return text

    def complete(self, prompts, max_new_tokens=None, stop=()) -> list[str]:
        self.calls += 1
        if self.calls == self.die_at:
            raise KeyboardInterrupt
        time.sleep(self.seconds_per_doc * len(prompts))
        passages = [p[-1]["content"].split("Passage: ")[1] for p in prompts]
        return [" ".join(passage.split()[:WORDS]) for passage in passages]

    def fingerprint(self) -> str:
        return "fake"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"_id": d, "text": t}) + "\n" for d, t in DOCS.items()))
    return path


def settings(model: Path, **more) -> dict:
    return {"model": str(model), "max_steps": 3, "batch_size": 4, "shard_size": 5,
            "candidates": 6, "negatives": 3, "train_negatives": 2, "max_length": 32,
            "filter": "margin", "margin": 0.0, **more}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_adapts_end_to_end_then_skips_every_complete_stage(corpus, tmp_path, tiny_model_dir):
    from ragsift.models.bi_encoder import BiEncoder
    from ragsift.retrieve.spec import build_retriever

    out = tmp_path / "run"
    generator = FakeGenerator()
    config = load_adapt_config(None, settings(tiny_model_dir, grad_cache_chunk=3))
    result = adapt(corpus, out, config, generator=generator)
    assert result.ran == ["synthetic", "negatives", "model"] and result.skipped == []
    assert generator.calls == 20 // 5  # one call per shard of 5 documents

    queries = rows(out / "synthetic" / "queries.jsonl")
    raw = rows(out / "synthetic" / "raw.jsonl")
    assert sorted(r["pos_ids"][0] for r in raw) == sorted(DOCS)
    for row in raw:
        assert row["query"] == " ".join(DOCS[row["pos_ids"][0]].split()[:WORDS])
    assert {r["query_id"] for r in queries} <= {r["query_id"] for r in raw} and queries
    train_qrels = (out / "synthetic" / "beir" / "qrels" / "train.tsv").read_text()
    assert f"{queries[0]['query_id']}\t{queries[0]['pos_ids'][0]}\t1" in train_qrels

    # the teacher (the base model as a bi-encoder) scores pairs with its own cosines
    base = BiEncoder.from_pretrained(tiny_model_dir)
    mined = rows(out / "negatives" / "negatives.jsonl")
    assert len(mined) == len(queries)
    for row in mined[:3]:
        assert row["pos_ids"][0] not in row["neg_ids"] and len(row["neg"]) <= 3
        q = base.encode_queries([row["query"]])[0]
        docs = base.encode_documents(row["pos"] + row["neg"])
        cosines = docs @ q / (np.linalg.norm(docs, axis=1) * np.linalg.norm(q))
        np.testing.assert_allclose(row["pos_scores"] + row["neg_scores"], cosines, atol=1e-4)
        # the margin filter at margin 0: no kept negative scores above the positive
        assert all(s <= row["pos_scores"][0] for s in row["neg_scores"])

    state = json.loads((out / STATE_FILE).read_text())
    assert state["docs"] == 20 and state["stages"]["model"]["steps"] == 3
    assert all(state["stages"][stage]["seconds"] > 0 for stage in result.ran)
    assert state["stages"]["negatives"]["teacher_kind"] == "bi-encoder"
    trained, before = load_file(out / "model" / "model.safetensors"), \
        load_file(tiny_model_dir / "model.safetensors")
    assert trained.keys() == before.keys()
    assert any(not np.array_equal(trained[k], before[k]) for k in before)
    report = json.loads((out / "model" / "ragsift_train.json").read_text())
    assert report["config"]["grad_cache_chunk"] == 3
    dense = build_retriever(f"dense:{out / 'model'}", dense_options={"show_progress": False,
                                                                       "cache_dir": False})
    dense.index({d: Document(d, t) for d, t in DOCS.items()})
    assert len(dense.search({"q": "honey bees"}, k=3)["q"]) == 3

    mtime = (out / "model" / "model.safetensors").stat().st_mtime_ns
    again = adapt(corpus, out, config, generator=generator)
    assert again.ran == [] and again.skipped == ["synthetic", "negatives", "model"]
    assert generator.calls == 4 and (out / "model" / "model.safetensors").stat().st_mtime_ns \
        == mtime
    # a run recorded before a setting existed had that setting's default: it still resumes
    del state["settings"]["llm_weights"]
    (out / STATE_FILE).write_text(json.dumps(state))
    assert adapt(corpus, out, config, generator=generator).ran == []
    # the GradCache chunk only bounds memory: a run resumes under another one
    assert adapt(corpus, out, replace(config, grad_cache_chunk=None), generator=generator).ran == []
    with pytest.raises(UsageError, match=r"other settings \(llm_weights differ\)"):
        adapt(corpus, out, replace(config, llm_weights="bf16"), generator=generator)


def test_a_killed_synthesis_resumes_shard_by_shard(corpus, tmp_path, tiny_model_dir):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    config = load_adapt_config(None, settings(tiny_model_dir, max_steps=1))
    adapt(corpus, straight, config, generator=FakeGenerator())
    dying = FakeGenerator(die_at=3)  # killed while generating the third of four shards
    with pytest.raises(KeyboardInterrupt):
        adapt(corpus, killed, config, generator=dying)
    part = killed / "synthetic" / "part-0.jsonl"
    assert not part.exists()
    assert len(list(shards_dir(part).glob("shard-*"))) == 2
    resumed = FakeGenerator()
    result = adapt(corpus, killed, config, generator=resumed)
    assert resumed.calls == 2 and result.ran == ["synthetic", "negatives", "model"]
    for name in ("raw.jsonl", "queries.jsonl"):
        assert (killed / "synthetic" / name).read_bytes() == \
            (straight / "synthetic" / name).read_bytes()


def test_the_budget_caps_synthesis_and_stops_training(corpus, tmp_path, tiny_model_dir):
    # 0.05 s per document and all of a 0.72 s budget for synthesis: after the 4-document
    # probe at most 0.72 s / 0.05 s = 14 more documents fit, whatever the machine's speed
    config = load_adapt_config(None, settings(tiny_model_dir, max_steps=50, probe_docs=4,
                                              synth_share=1.0, budget_minutes=0.012))
    out = tmp_path / "budget"
    result = adapt(corpus, out, config, generator=FakeGenerator(seconds_per_doc=0.05))
    state = json.loads((out / STATE_FILE).read_text())
    assert state["probe"] == 4 and 4 <= state["docs"] <= 18
    assert state["seconds_per_doc"] >= 0.05
    assert len(rows(out / "synthetic" / "raw.jsonl")) == state["docs"]
    assert state["stages"]["synthetic"]["documents"] == state["docs"]
    # the budget is spent before training starts: it stops after its first step
    assert state["stages"]["model"] == {**state["stages"]["model"], "steps": 1,
                                        "stopped_by_budget": True}
    assert result.model.is_dir()


def test_the_command_line_with_a_cross_encoder(corpus, tmp_path, tiny_model_dir, monkeypatch,
                                               tiny_cross_encoder):
    from ragsift.models.generation import generator as generation
    from ragsift.rerank import Reranker

    loaded = []
    monkeypatch.setattr(generation, "load_generator",
                        lambda spec, **options: loaded.append(options) or FakeGenerator())
    out = tmp_path / "cli"
    argv = ["adapt", "--data", str(corpus), "--out", str(out), "--model", str(tiny_model_dir),
            "--teacher", str(tiny_cross_encoder), "--cross-encoder", "--set", "max_steps=2",
            "--set", "batch_size=4", "--set", "cross_encoder_batch_size=2",
            "--set", "candidates=6", "--set", "filter=none", "--set", "llm_weights=bf16"]
    assert main(argv) == 0
    assert [options["weights"] for options in loaded] == ["bf16"]
    state = json.loads((out / STATE_FILE).read_text())
    assert state["settings"]["cross_encoder"] is True
    assert state["stages"]["reranker"]["steps"] == 2
    assert state["stages"]["negatives"]["teacher_kind"] == "reranker"
    teacher = Reranker.load(tiny_cross_encoder)
    for row in rows(out / "negatives" / "negatives.jsonl")[:2]:  # the teacher's raw logits
        pairs = [(row["query"], text) for text in row["pos"] + row["neg"]]
        np.testing.assert_allclose(row["pos_scores"] + row["neg_scores"],
                                   teacher.score(pairs), atol=1e-4)
    reranker = Reranker.load(out / "reranker")
    assert reranker.score([("honey bees", DOCS["d08"])]).shape == (1,)
    # another setting over the same folder is refused, as a usage error
    assert main([*argv, "--seed", "1"]) == 2


@pytest.mark.parametrize("flags", [["--docs", "0"], ["--budget-minutes", "-1"],
                                   ["--budget-minutes", "soon"]])
def test_bad_flags_are_usage_errors(flags, corpus, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["adapt", "--data", str(corpus), "--out", str(tmp_path / "x"), *flags])
    assert exc.value.code == 2


@pytest.mark.parametrize("item, message", [("nope=1", "unknown key"),
                                           ("round_trip_k=0", "round_trip_k"),
                                           ("filter=best", "filter"), ("docs", "KEY=VALUE")])
def test_bad_settings_are_usage_errors(item, message, corpus, tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["adapt", "--data", str(corpus), "--out", str(out), "--set", item]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_the_example_config_is_valid_and_states_the_defaults():
    import dataclasses

    from ragsift.adapt.config import AdaptConfig

    example = load_adapt_config(Path(__file__).resolve().parents[2] / "configs" / "adapt.yaml")
    changed = {k: v for k, v in dataclasses.asdict(example).items()
               if v != getattr(AdaptConfig(), k)}
    assert changed == {"docs": 1000}  # as its header says
