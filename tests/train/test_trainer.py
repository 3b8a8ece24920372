"""End-to-end training on tiny models: outputs load in the ecosystem's tools, a killed run
resumes to the same weights, the CLI trains a model that search and rerank use at once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from ragsift.errors import RagsiftError, UsageError
from ragsift.train.config import load_config
from ragsift.train.trainer import REPORT_FILE, checkpoints_dir, train
from tests.conftest import build_tiny_bert

SENTENCES = ["which animals sleep a lot", "Wolves live and hunt in packs."]


def config_for(task, tiny_model_dir, training_jsonl, out, **extra):
    values = {"model": str(tiny_model_dir), "data": str(training_jsonl), "out": str(out),
              "batch_size": 2, "negatives": 2, "max_steps": 4, "logging_steps": 1,
              "save_steps": 2, "learning_rate": 1e-3, "warmup_ratio": 0.0, **extra}
    return load_config(task, None, values)


def assert_same_weights(first: Path, second: Path, atol: float, rtol: float) -> None:
    """The two saved models hold the same tensors, within the tolerances."""
    from safetensors.torch import load_file

    a = load_file(str(first / "model.safetensors"))
    b = load_file(str(second / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=atol, rtol=rtol)


def test_embedding_output_loads_in_sentence_transformers(tiny_model_dir, training_jsonl,
                                                         tmp_path):
    st = pytest.importorskip("sentence_transformers")
    from ragsift.models.bi_encoder import BiEncoder

    out = train("embedding", config_for("embedding", tiny_model_dir, training_jsonl,
                                        tmp_path / "emb", matryoshka_dims=[32, 16]))
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["steps"] == 4 and len(report["losses"]) == 4
    assert not checkpoints_dir(out).exists()
    ours = BiEncoder.from_pretrained(out, device="cpu").encode(SENTENCES)
    start = BiEncoder.from_pretrained(tiny_model_dir, device="cpu").encode(SENTENCES)
    assert np.abs(ours - start).max() > 1e-3  # training moved the weights
    peer = st.SentenceTransformer(str(out), device="cpu").encode(SENTENCES)
    np.testing.assert_allclose(ours, peer, atol=1e-5)


@pytest.mark.parametrize("loss", ["listwise", "pointwise", "ranknet", "lambdaloss"])
def test_reranker_output_loads_as_a_cross_encoder(tiny_model_dir, training_jsonl, tmp_path,
                                                  loss):
    st = pytest.importorskip("sentence_transformers")
    from ragsift.rerank import CrossEncoderReranker, Reranker

    out = train("reranker", config_for("reranker", tiny_model_dir, training_jsonl,
                                       tmp_path / "ce", loss=loss, max_steps=2))
    ours = Reranker.load(out, device="cpu")
    assert isinstance(ours, CrossEncoderReranker)
    pairs = [(SENTENCES[0], "Cats sleep a lot."), (SENTENCES[0], SENTENCES[1])]
    peer = st.CrossEncoder(str(out), device="cpu")
    np.testing.assert_allclose(ours.score(pairs),
                               peer.predict(pairs, activation_fn=torch.nn.Identity()),
                               atol=1e-5)


@pytest.mark.parametrize(("layers_from", "source"), [("first", 0), ("uniform", 1), (None, 1)])
def test_reranker_student_keeps_the_chosen_layers(tiny_model_dir, training_jsonl, tmp_path,
                                                  layers_from, source):
    """``None``: the default keeps the last layer (the one that fills [CLS])."""
    st = pytest.importorskip("sentence_transformers")
    from transformers import AutoModel

    from ragsift.rerank import Reranker
    from ragsift.train.tasks.reranker import RerankerTask

    chosen = {"layers_from": layers_from} if layers_from else {}
    config = config_for("reranker", tiny_model_dir, training_jsonl, tmp_path / "ce", layers=1,
                        max_steps=2, **chosen)
    student = RerankerTask(config).module.model
    full = AutoModel.from_pretrained(tiny_model_dir)
    assert student.config.num_hidden_layers == 1 and len(student.bert.encoder.layer) == 1
    for name, value in full.encoder.layer[source].state_dict().items():
        torch.testing.assert_close(student.bert.encoder.layer[0].state_dict()[name], value)
    out = train("reranker", config)
    peer = st.CrossEncoder(str(out), device="cpu")
    assert peer.model.config.num_hidden_layers == 1
    pairs = [(SENTENCES[0], "Cats sleep a lot."), (SENTENCES[0], SENTENCES[1])]
    np.testing.assert_allclose(Reranker.load(out, device="cpu").score(pairs),
                               peer.predict(pairs, activation_fn=torch.nn.Identity()),
                               atol=1e-5)
    with pytest.raises(ValueError, match="has only 2"):
        RerankerTask(config_for("reranker", tiny_model_dir, training_jsonl, tmp_path, layers=3))


def test_a_cut_student_learns_the_hidden_states_of_the_model_it_was_cut_from(
        tiny_model_dir, training_jsonl, tmp_path):
    """Student layer 0 is the full model's layer 1: its states 0 and 1 are matched with the
    full model's embedding output and the output of layer 1 (hidden state 2)."""
    st = pytest.importorskip("sentence_transformers")
    from transformers import AutoModel

    from ragsift.train.tasks.reranker import RerankerTask

    config = config_for("reranker", tiny_model_dir, training_jsonl, tmp_path / "ce", layers=1,
                        hidden_distill_weight=3.0, max_steps=2)
    task = RerankerTask(config)
    full = AutoModel.from_pretrained(tiny_model_dir).eval()
    # the frozen full model is not part of what is optimised and checkpointed
    assert set(task.module.state_dict()) == {f"model.{n}" for n in task.module.model.state_dict()}
    assert not any(".layer.1." in name for name in task.module.state_dict())
    items = task.dataset()
    batch = task.collate([items[0], items[1]])
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    task.module.eval()
    scores, hidden = task.module(**inputs)
    with torch.no_grad():
        states = task.module.model(**inputs, output_hidden_states=True).hidden_states
        reference = full(**inputs, output_hidden_states=True).hidden_states
    real = inputs["attention_mask"].bool()
    expected = (((states[0] - reference[0]) ** 2)[real].mean()
                + ((states[1] - reference[2]) ** 2)[real].mean()) / 2
    assert expected.item() > 1e-6  # one layer does not do what two did
    assert hidden.item() == pytest.approx(expected.item(), rel=1e-5)
    assert task.loss((scores, hidden), batch).item() == pytest.approx(
        task.loss(scores, batch).item() + 3.0 * expected.item(), rel=1e-5)
    out = train("reranker", config)
    assert st.CrossEncoder(str(out), device="cpu").model.config.num_hidden_layers == 1
    with pytest.raises(UsageError, match='field "hidden_distill_weight": needs layers'):
        config_for("reranker", tiny_model_dir, training_jsonl, tmp_path,
                   hidden_distill_weight=1.0)


@pytest.mark.parametrize(("distill", "scale"), [("kl", 20.0), (None, 1.0)])
def test_a_kl_student_is_saved_with_its_temperature_folded_in(tiny_model_dir, training_jsonl,
                                                             tmp_path, distill, scale):
    from ragsift.rerank import Reranker
    from ragsift.train.tasks.reranker import RerankerTask

    task = RerankerTask(config_for("reranker", tiny_model_dir, training_jsonl, tmp_path,
                                   distill=distill, distill_temperature=0.05))
    pairs = [(SENTENCES[0], "Cats sleep a lot."), (SENTENCES[0], SENTENCES[1])]
    live = task.reranker().score(pairs)
    task.save(tmp_path / "ce")
    np.testing.assert_allclose(Reranker.load(tmp_path / "ce", device="cpu").score(pairs),
                               live * scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(task.reranker().score(pairs), live)  # live model untouched


@pytest.mark.parametrize("task", ["embedding", "reranker", "colbert", "vector-distill"])
def test_attention_dropout_is_set_at_load_time(task, tiny_model_dir, training_jsonl, tiny_beir,
                                               tmp_path):
    from ragsift.train.tasks import build_task

    def attention_dropouts(rate):
        extra = {"attention_dropout": rate}
        if task == "vector-distill":  # reads texts: a BEIR folder's queries and corpus
            extra.update(teacher=str(tiny_model_dir), data=str(tiny_beir))
        module = build_task(task, config_for(task, tiny_model_dir, training_jsonl, tmp_path,
                                             **extra)).module
        return {m.dropout.p for name, m in module.named_modules()
                if name.endswith("attention.self")}

    assert attention_dropouts(None) == {0.1}  # the model's own
    assert attention_dropouts(0.0) == {0.0}
    with pytest.raises(RagsiftError, match="causal LMs keep their own"):
        build_task("llm-reranker", load_config("llm-reranker", None, {
            "model": "x", "data": str(training_jsonl), "out": str(tmp_path),
            "attention_dropout": 0.0}))


def test_colbert_output_loads_as_a_colbert_reranker(tiny_model_dir, training_jsonl, tmp_path):
    from ragsift.rerank import LateInteractionReranker, Reranker

    out = train("colbert", config_for("colbert", tiny_model_dir, training_jsonl,
                                      tmp_path / "colbert", embedding_size=16,
                                      document_length=48, max_steps=2))
    reranker = Reranker.load(out, device="cpu")
    assert isinstance(reranker, LateInteractionReranker)
    assert reranker.model.embedding_size == 16 and reranker.model.config.document_length == 48


class Steps(TrainerCallback):
    """Counts the optimizer steps a run performs."""

    def __init__(self) -> None:
        self.count = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.count += 1


class Crash(TrainerCallback):
    """Simulates a kill right after ``step`` (a checkpoint at step 2 exists by then), or with
    ``after_save`` right after the checkpoint of ``step`` is written."""

    def __init__(self, step: int, after_save: bool = False) -> None:
        self.step, self.after_save = step, after_save

    def _maybe_kill(self, state, saved: bool) -> None:
        if state.global_step == self.step and saved == self.after_save:
            raise KeyboardInterrupt("killed")

    def on_step_end(self, args, state, control, **kwargs):
        self._maybe_kill(state, saved=False)

    def on_save(self, args, state, control, **kwargs):
        self._maybe_kill(state, saved=True)


@pytest.mark.parametrize("task", ["embedding", "colbert"])
def test_a_killed_run_resumes_to_the_same_weights(task, tiny_model_dir, training_jsonl,
                                                  tmp_path):
    extra = {"embedding_size": 16, "document_length": 48} if task == "colbert" else {}
    straight = train(task, config_for(task, tiny_model_dir, training_jsonl,
                                      tmp_path / "straight", **extra))
    config = config_for(task, tiny_model_dir, training_jsonl, tmp_path / "resumed", **extra)
    with pytest.raises(KeyboardInterrupt):
        train(task, config, callbacks=[Crash(3)])
    assert not (tmp_path / "resumed").exists()  # nothing half-written
    assert (checkpoints_dir(tmp_path / "resumed") / "checkpoint-2").is_dir()
    steps = Steps()
    resumed = train(task, config, callbacks=[steps])
    assert steps.count == 2  # steps 3 and 4 only: it went on from checkpoint-2
    assert json.loads((resumed / REPORT_FILE).read_text())["resumed"] is True
    assert_same_weights(straight, resumed, atol=1e-6, rtol=1e-5)


def test_each_epoch_draws_new_negatives(tiny_model_dir, training_jsonl, tmp_path,
                                        monkeypatch):
    from ragsift.train.data import TrainingItems, load_examples

    seen: dict[int, dict[int, list[str]]] = {}
    draw = TrainingItems.__getitem__

    def recording(self, index):
        item = draw(self, index)
        seen.setdefault(self.epoch, {})[index] = item.negatives
        return item

    monkeypatch.setattr(TrainingItems, "__getitem__", recording)
    # 7 items, batches of 2 (last dropped): 3 steps per epoch, 6 steps = 2 epochs
    train("reranker", config_for("reranker", tiny_model_dir, training_jsonl, tmp_path / "ce",
                                 max_steps=6, seed=3))
    assert sorted(seen) == [0, 1]
    expected = TrainingItems(load_examples(training_jsonl), negatives=2, seed=3)
    for epoch, drawn in seen.items():
        expected.set_epoch(epoch)
        assert drawn == {i: expected[i].negatives for i in drawn}
    common = set(seen[0]) & set(seen[1])  # the last partial batch of each epoch is dropped
    assert {i: seen[0][i] for i in common} != {i: seen[1][i] for i in common}


def test_an_llm_reranker_with_tied_embeddings_checkpoints_and_resumes(tiny_llm,
                                                                      training_jsonl, tmp_path):
    pytest.importorskip("peft")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tied = tmp_path / "tied-llama"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        AutoConfig.from_pretrained(tiny_llm, tie_word_embeddings=True))
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model.save_pretrained(tied)
    AutoTokenizer.from_pretrained(tiny_llm).save_pretrained(tied)

    def config(out):
        return load_config("llm-reranker", None, {
            "model": str(tied), "data": str(training_jsonl), "out": str(out),
            "batch_size": 2, "negatives": 2, "max_steps": 4, "save_steps": 2,
            "learning_rate": 1e-2, "warmup_ratio": 0.0, "lora_targets": "q_proj,v_proj",
            "max_length": 96})

    straight = train("llm-reranker", config(tmp_path / "straight"))
    with pytest.raises(KeyboardInterrupt):
        train("llm-reranker", config(tmp_path / "resumed"), callbacks=[Crash(3)])
    steps = Steps()
    resumed = train("llm-reranker", config(tmp_path / "resumed"), callbacks=[steps])
    assert steps.count == 2  # went on from checkpoint-2
    assert_same_weights(straight, resumed, atol=1e-6, rtol=1e-5)


def test_resume_skips_a_checkpoint_killed_while_being_written(tiny_model_dir, training_jsonl,
                                                               tmp_path):
    from ragsift.train.trainer import last_complete_checkpoint

    config = config_for("embedding", tiny_model_dir, training_jsonl, tmp_path / "emb")
    with pytest.raises(KeyboardInterrupt):
        train("embedding", config, callbacks=[Crash(3)])
    checkpoints = checkpoints_dir(tmp_path / "emb")
    (checkpoints / "checkpoint-4").mkdir()  # killed after the folder, before the state
    (checkpoints / "checkpoint-4" / "model.safetensors").write_bytes(b"partial")
    assert last_complete_checkpoint(checkpoints) == checkpoints / "checkpoint-2"
    assert not (checkpoints / "checkpoint-4").exists()
    (checkpoints / "checkpoint-4").mkdir()
    steps = Steps()
    train("embedding", config, callbacks=[steps])
    assert steps.count == 2  # resumed from checkpoint-2, not from the broken one


def test_a_run_killed_after_its_last_checkpoint_resumes_without_an_extra_step(
        tiny_model_dir, training_jsonl, tmp_path):
    straight = train("reranker", config_for("reranker", tiny_model_dir, training_jsonl,
                                            tmp_path / "straight"))
    config = config_for("reranker", tiny_model_dir, training_jsonl, tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        train("reranker", config, callbacks=[Crash(config.max_steps, after_save=True)])
    assert (checkpoints_dir(tmp_path / "resumed") / f"checkpoint-{config.max_steps}").is_dir()
    steps = Steps()
    resumed = train("reranker", config, callbacks=[steps])
    assert steps.count == 0
    report = json.loads((resumed / REPORT_FILE).read_text())
    assert report["steps"] == config.max_steps and report["resumed"] is True
    assert [entry["step"] for entry in report["losses"]] == \
        [entry["step"] for entry in json.loads((straight / REPORT_FILE).read_text())["losses"]]
    assert_same_weights(straight, resumed, atol=1e-6, rtol=1e-5)


def test_unique_tensors_keeps_one_name_per_shared_tensor():
    from ragsift.train.trainer import unique_tensors

    shared, other = torch.zeros(3), torch.ones(3)
    kept = unique_tensors({"a": shared, "b": other, "c": shared, "d": other[1:]})
    assert list(kept) == ["a", "b", "d"]  # a view at another offset is its own tensor


def test_cli_trains_a_model_that_search_uses(tiny_model_dir, training_jsonl, tiny_beir,
                                             tmp_path):
    from ragsift.cli.main import main
    from ragsift.data.trec import read_run

    out = tmp_path / "cli-emb"
    assert main(["train", "embedding", "--data", str(training_jsonl), "--model",
                 str(tiny_model_dir), "--out", str(out), "--max-steps", "2", "--batch-size", "2",
                 "--seed", "3", "--set", "negatives=1"]) == 0
    assert json.loads((out / REPORT_FILE).read_text())["config"]["seed"] == 3
    assert main(["search", "--data", str(tiny_beir), "--retriever", f"dense:{out}",
                 "--k", "3", "--out", str(tmp_path / "run.trec")]) == 0
    assert len(read_run(tmp_path / "run.trec")) == 5
    assert main(["train", "embedding", "--data", str(training_jsonl), "--model",
                 str(tiny_model_dir), "--out", str(out), "--set", "bogus=1"]) == 1


def test_llm_reranker_lora_trains_and_saves_merged_weights(tiny_llm, training_jsonl, tmp_path):
    pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    from ragsift.rerank import CausalLMReranker, Reranker

    config = load_config("llm-reranker", None, {
        "model": str(tiny_llm), "data": str(training_jsonl), "out": str(tmp_path / "llm"),
        "batch_size": 2, "negatives": 2, "max_steps": 3, "learning_rate": 1e-2,
        "lora_targets": "q_proj,v_proj", "max_length": 96})
    out = train("llm-reranker", config)
    merged = AutoModelForCausalLM.from_pretrained(out)
    start = AutoModelForCausalLM.from_pretrained(tiny_llm)
    changed = [n for n, p in merged.named_parameters()
               if not torch.equal(p, dict(start.named_parameters())[n])]
    assert changed and all("q_proj" in n or "v_proj" in n for n in changed)
    reranker = Reranker.load(out, device="cpu")
    assert isinstance(reranker, CausalLMReranker)
    assert np.isfinite(reranker.score([(SENTENCES[0], "Cats sleep a lot.")])).all()


@pytest.fixture(scope="module")
def no_dropout_model(tmp_path_factory, minilm_dir):
    """A tiny BERT without dropout, so that GradCache can be compared step for step."""
    return build_tiny_bert(tmp_path_factory.mktemp("models") / "no-dropout", minilm_dir,
                           seed=1, dropout=0.0)


@pytest.mark.parametrize("task", ["embedding", "colbert"])
def test_grad_cache_gives_the_weights_of_the_whole_batch(task, no_dropout_model,
                                                         training_jsonl, tmp_path):
    from safetensors.torch import load_file

    extra = {"embedding_size": 16, "document_length": 48} if task == "colbert" else {}
    common = {"batch_size": 4, "max_steps": 2, "learning_rate": 1e-2, **extra}
    whole = train(task, config_for(task, no_dropout_model, training_jsonl, tmp_path / "whole",
                                   **common))
    cached = train(task, config_for(task, no_dropout_model, training_jsonl, tmp_path / "cached",
                                    grad_cache_chunk=3, **common))
    a = load_file(str(whole / "model.safetensors"))
    start = load_file(str(no_dropout_model / "model.safetensors"))
    assert any(not torch.equal(a[n], start[n]) for n in start if n in a)
    # Adam magnifies float noise on near-zero gradients: 1% of an lr step
    assert_same_weights(whole, cached, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_the_same_command_runs_under_torchrun(tiny_model_dir, training_jsonl, tmp_path):
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun not installed beside this Python")
    out = tmp_path / "ddp"
    command = [torchrun, "--nproc_per_node", "2", "-m", "ragsift.cli.main", "train",
               "embedding", "--data", str(training_jsonl), "--model", str(tiny_model_dir),
               "--out", str(out), "--max-steps", "2", "--batch-size", "2", "--set",
               "negatives=1", "--set", "logging_steps=1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in done.stderr
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["steps"] == 2
    # 7 items, 2 processes x 2 per batch: one global batch of 4 per epoch -> 2 epochs
    assert report["losses"][-1]["epoch"] == 2


def test_llm_embedder_with_lasttoken_pooling_prompts_and_lora(tiny_llm, training_jsonl,
                                                              tmp_path):
    pytest.importorskip("peft")
    st = pytest.importorskip("sentence_transformers")
    from transformers import AutoModel

    from ragsift.models.bi_encoder import BiEncoder

    config = config_for("embedding", tiny_llm, training_jsonl, tmp_path / "llm-emb",
                        pooling="lasttoken", query_prompt="Instruct: find the passage\nQuery: ",
                        lora_r=4, lora_targets="q_proj,v_proj", max_steps=2)
    out = train("embedding", config)
    ours = BiEncoder.from_pretrained(out, device="cpu")
    assert ours.layout.pooling == "lasttoken"
    assert ours.prompt_for("query").startswith("Instruct:")
    trained = AutoModel.from_pretrained(out)
    start = AutoModel.from_pretrained(tiny_llm)
    changed = {n for n, p in trained.named_parameters()
               if not torch.equal(p, dict(start.named_parameters())[n])}
    assert changed and all("q_proj" in n or "v_proj" in n for n in changed)  # LoRA, merged
    peer = st.SentenceTransformer(str(out), device="cpu")
    np.testing.assert_allclose(ours.encode_queries(SENTENCES),
                               peer.encode(SENTENCES, prompt_name="query"), atol=1e-5)


@pytest.mark.parametrize("label_weight", [0.0, 0.5])
def test_embedding_distillation_loss_is_the_kl_to_the_teacher_plus_weighted_info_nce(
        no_dropout_model, tmp_path, label_weight):
    from ragsift.data.training import TrainingExample, write_training
    from ragsift.models.bi_encoder import BiEncoder
    from ragsift.train.data import TrainingItems, load_examples
    from tests.train.conftest import DOCS, QRELS, QUERIES, text

    examples = []
    for i, (qid, query) in enumerate(QUERIES.items()):
        negatives = [d for d in DOCS if d not in QRELS[qid]][:2]
        examples.append(TrainingExample(
            query, pos=[text(d) for d in QRELS[qid]], neg=[text(d) for d in negatives],
            pos_scores=[5.0 - i] * len(QRELS[qid]), neg_scores=[1.0, float(i)]))
    path = tmp_path / "labelled.jsonl"
    write_training(examples, path)
    items = list(TrainingItems(load_examples(path), negatives=2, seed=0))
    config = config_for("embedding", no_dropout_model, path, tmp_path / "student",
                        distill="kl", distill_teacher_temperature=0.5,
                        distill_label_weight=label_weight, batch_size=len(items), max_steps=1)
    out = train("embedding", config)
    first = json.loads((out / REPORT_FILE).read_text())["losses"][0]["loss"]
    encoder = BiEncoder.from_pretrained(no_dropout_model, device="cpu")
    batch_docs = [item.positive for item in items] + [n for item in items for n in item.negatives]
    vectors = encoder.encode(batch_docs)
    kl, info_nce = [], []
    for i, item in enumerate(items):
        q = encoder.encode([item.query])[0]
        group = [i] + [len(items) + 2 * i + j for j in range(2)]  # positive, its 2 negatives
        student = torch.log_softmax(torch.tensor(vectors[group] @ q / config.temperature), 0)
        teacher = torch.log_softmax(torch.tensor(item.scores) / 0.5, 0)
        kl.append(float((teacher.exp() * (teacher - student)).sum()))
        # the whole batch as candidates, the query's other known positives left out
        qid = next(k for k, v in QUERIES.items() if v == item.query)
        known = {text(d) for d in QRELS[qid]}
        logits = [float(vectors[j] @ q) / config.temperature for j, doc in enumerate(batch_docs)
                  if j == i or doc not in known]
        target = float(vectors[i] @ q) / config.temperature
        info_nce.append(float(torch.logsumexp(torch.tensor(logits), 0)) - target)
    expected = np.mean(kl) + label_weight * np.mean(info_nce)
    assert first == pytest.approx(float(expected), rel=1e-4)


def test_distillation_texts_keep_other_splits_queries_out(tiny_beir):
    from ragsift.train.tasks.vector_distill import distillation_texts

    (tiny_beir / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq2\td3\t1\n"
                                                    "q4\td5\t1\n")
    texts = distillation_texts(tiny_beir)
    assert texts[:2] == ["programming language readability", "tower in paris"]
    assert len(texts) == 2 + 8
    assert distillation_texts(tiny_beir, limit=3, split="test")[:3] == [
        "which animals sleep a lot", "programming language readability",
        "ranking documents with term frequency"]


def test_teacher_vectors_are_encoded_once_across_runs(tiny_model_dir, no_dropout_model,
                                                      tiny_beir, tmp_path, monkeypatch):
    from ragsift.models.bi_encoder import BiEncoder
    from ragsift.train.tasks import build_task
    from ragsift.train.tasks.vector_distill import distillation_texts

    expected = BiEncoder.from_pretrained(no_dropout_model, device="cpu").encode(
        distillation_texts(tiny_beir))
    calls = []
    encode = BiEncoder.encode
    monkeypatch.setattr(BiEncoder, "encode", lambda self, texts, **kw: (
        calls.append(len(texts)), encode(self, texts, **kw))[1])

    def targets(**settings):
        config = load_config("vector-distill", None, {
            "model": str(tiny_model_dir), "teacher": str(no_dropout_model),
            "data": str(tiny_beir), "out": str(tmp_path / "student"), **settings})
        return build_task("vector-distill", config).targets

    first = targets()
    assert calls == [13]
    np.testing.assert_allclose(first, expected, atol=1e-6)
    again = targets(cosine_weight=1.0, out=str(tmp_path / "other"))  # another run, same texts
    assert calls == [13]
    np.testing.assert_array_equal(again, first)
    targets(max_length=8)  # another length gives other vectors: encoded anew
    assert calls == [13, 13]


def test_vector_distillation_moves_the_student_toward_the_teacher(tiny_model_dir, tiny_beir,
                                                                  no_dropout_model, tmp_path):
    from ragsift.models.bi_encoder import BiEncoder
    from ragsift.train.tasks.vector_distill import distillation_texts

    texts = distillation_texts(tiny_beir)
    assert len(texts) == 5 + 8  # no train qrels: every query, then the corpus
    config = load_config("vector-distill", None, {
        "model": str(tiny_model_dir), "teacher": str(no_dropout_model), "data": str(tiny_beir),
        "out": str(tmp_path / "student"), "batch_size": 13, "max_steps": 15,
        "learning_rate": 3e-3, "warmup_ratio": 0.0, "logging_steps": 1})
    out = train("vector-distill", config)
    teacher = BiEncoder.from_pretrained(no_dropout_model, device="cpu").encode(texts)
    target = teacher @ teacher.T

    def gap(folder):
        vectors = BiEncoder.from_pretrained(folder, device="cpu").encode(texts)
        return float(np.abs(vectors @ vectors.T - target).mean())

    assert gap(out) < 0.7 * gap(tiny_model_dir)  # the similarity structure moved to the teacher's
    losses = [e["loss"] for e in json.loads((out / REPORT_FILE).read_text())["losses"]]
    assert losses[-1] < 0.5 * losses[0]
    assert not checkpoints_dir(out).exists()


def test_gradient_checkpointing_changes_memory_not_results(no_dropout_model, training_jsonl,
                                                           tmp_path):
    common = {"batch_size": 4, "max_steps": 2, "learning_rate": 1e-2}
    plain = train("embedding", config_for("embedding", no_dropout_model, training_jsonl,
                                          tmp_path / "plain", **common))
    checkpointed = train("embedding", config_for("embedding", no_dropout_model, training_jsonl,
                                                 tmp_path / "ckpt", gradient_checkpointing=True,
                                                 **common))
    assert_same_weights(plain, checkpointed, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("task", ["embedding", "reranker"])
def test_evaluation_during_training_equals_the_saved_models_score(task, tiny_model_dir,
                                                                  training_jsonl, tiny_beir,
                                                                  tmp_path):
    from ragsift.data.beir import load_beir
    from ragsift.evaluate import evaluate
    from ragsift.rerank import Reranker
    from ragsift.retrieve import BM25Retriever, DenseRetriever

    out = train(task, config_for(task, tiny_model_dir, training_jsonl, tmp_path / task,
                                 max_steps=2, eval_data=str(tiny_beir), eval_k=5,
                                 eval_at_start=True))
    report = json.loads((out / REPORT_FILE).read_text())
    evaluations = report["evaluations"]
    assert [e["step"] for e in evaluations] == [0, 2]
    logged = evaluations[-1]["ndcg@10"]
    data = load_beir(tiny_beir)

    def dense_ndcg(model):
        dense = DenseRetriever(str(model), cache_dir=False)
        dense.index(data.corpus)
        return evaluate(data.qrels, dense.search(data.queries, k=100),
                        ["ndcg@10"]).mean["ndcg@10"]

    if task == "embedding":  # step 0 scored the starting model (a reranker's head is fresh)
        assert evaluations[0]["ndcg@10"] == pytest.approx(dense_ndcg(tiny_model_dir), abs=1e-6)
        assert logged == pytest.approx(dense_ndcg(out), abs=1e-6)
        return
    bm25 = BM25Retriever()
    bm25.index(data.corpus)
    candidates = bm25.search(data.queries, k=5)
    assert report["evaluation_bm25_ndcg@10"] == pytest.approx(
        evaluate(data.qrels, candidates, ["ndcg@10"]).mean["ndcg@10"], abs=1e-9)
    run = Reranker.load(out, device="cpu").rerank(data.queries, data.corpus, candidates)
    assert logged == pytest.approx(evaluate(data.qrels, run, ["ndcg@10"]).mean["ndcg@10"],
                                   abs=1e-6)
