"""The RAG chain: rank a question's passages, select some, generate an answer, measure it.

Stages (each swappable from a :class:`RagConfig`):

1. retriever: any retriever spec of :mod:`ragsift.retrieve.spec` (``bm25``, ``dense:MODEL``,
   ``splade:MODEL``, ``colbert:MODEL``, ``hybrid:...``) indexing the question's own passages, or
   ``none`` (the given order). With ``collection`` (a folder made by
   ``ragsift collection``) retrieval is open instead: each question searches the whole
   collection (``collection_retriever``: ``bm25``, ``dense`` or ``hybrid``, default the
   collection's own) and its ``candidates`` best passages replace the question's paragraphs for
   the later stages; a retrieved passage counts as supporting when its document has the title and
   text of one of the question's supporting paragraphs. Either way, optionally with a query
   expanded by the generator (``expansion``): ``gar`` appends a generated answer and page title
   to the query, ``hyde`` a generated hypothetical passage; every retriever searches
   ``question + " " + expansion``;
2. reranker (optional): any ragsift reranker re-scores every passage; a GainRAG selector is a
   reranker trained on gain labels;
3. selector: ``top-k`` of the final ranking, ``threshold`` (reranker probability >=
   ``threshold``, calibrated when the model has a calibration), ``all`` passages in their given
   order, ``gold`` (the supporting passages), or ``none`` (no context);
4. generator: :func:`ragsift.models.generation.generator.load_generator` (transformers, llama.cpp
   or an OpenAI-compatible server), prompted with the config's templates, few-shot examples and
   stop sequences (:class:`ragsift.models.generation.prompts.PromptFormat`), its answer
   extracted from the raw text (``answer_extraction``). ``server_options`` (``KEY=VALUE``
   items) go into every request to an OpenAI-compatible server; ``threads`` sets llama.cpp's
   thread count and ``llm_weights`` the tensor type it runs (``native``: the GGUF as it is;
   ``bf16``, ``q8_0``, ...: a copy converted once,
   :mod:`ragsift.models.generation.gguf_convert`).

Outputs in the run folder: ``rankings.jsonl`` (per question: scores and order of each stage),
``predictions.jsonl`` (answer, gold, selected passages, EM, F1) and ``metrics.json`` (mean EM,
F1, supporting recall@k of the final ranking, and the selected passages' supporting recall).

Generation, the slow stage, resumes: each batch of raw generations is appended to
``answers.jsonl`` in the run folder as soon as it is generated (one ``write`` of whole lines to
a file opened for appending, then ``fsync``), keyed by a hash of the generator's fingerprint
(weights or server and model, ``max_new_tokens``), the stop sequences and the prompt (token ids
or messages: few-shot turns, question, selected passages, passage cut). A rerun in the same
folder (after a crash or a kill, with more questions, or with another ranking stage) generates
only the answers it does not find there; a last line cut by a crash is ignored. The answer is
extracted from the cached text at every run, so changing ``answer_extraction`` regenerates
nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from ragsift.atomic import atomic_file
from ragsift.data.qa import Paragraph, QAExample
from ragsift.errors import SettingError, UsageError
from ragsift.models.generation.generator import TextGenerator, load_generator
from ragsift.models.generation.gguf_convert import Weights
from ragsift.models.generation.prompts import (
    DEFAULT_FEW_SHOT,
    DEFAULT_STOP,
    DEFAULT_TEMPLATE,
    DEFAULT_TEMPLATE_NO_CONTEXT,
    PromptFormat,
)
from ragsift.rag.metrics import exact_match, supporting_recall, token_f1

logger = logging.getLogger(__name__)
ANSWERS = "answers.jsonl"


@dataclass
class RagConfig:
    """Which model runs at each stage, and how the generator is prompted (see the module
    docstring and :mod:`ragsift.models.generation.prompts`).

    Raises:
        ragsift.models.generation.prompts.PromptError: a prompt key that cannot work (the message
            starts with the key).
        ragsift.errors.SettingError: an unknown ``retriever`` (key ``retriever``), the
            ``threshold`` selector without a ``reranker`` (key ``selector``), or a
            ``server_options`` item that is not ``KEY=VALUE`` (key ``server_options[i]``); the
            message starts with the key, and :func:`ragsift.config_file.load_dataclass` names
            its file and line.
    """

    retriever: str = "bm25"
    expansion: Literal["none", "hyde", "gar"] = "none"
    expansion_tokens: int = 64
    reranker: str = ""
    reranker_max_length: int | None = None
    selector: Literal["top-k", "threshold", "all", "gold", "none"] = "top-k"
    k: int = 1
    threshold: float = 0.5
    generator: str = "smollm2-135m"
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    max_new_tokens: int = 32
    batch_size: int = 8
    max_passage_tokens: int = 256
    prompt_template: str = DEFAULT_TEMPLATE
    prompt_template_no_context: str = DEFAULT_TEMPLATE_NO_CONTEXT
    few_shot: list[list[str]] = field(default_factory=lambda: [list(e) for e in DEFAULT_FEW_SHOT])
    stop: list[str] = field(default_factory=lambda: list(DEFAULT_STOP))
    answer_extraction: Literal["short", "first-line"] = "short"
    use_chat_template: bool = False
    server_options: list[str] = field(default_factory=list)
    timeout: float = 120.0
    threads: int = 0
    llm_weights: Weights = "native"
    recall_at: list[int] = field(default_factory=lambda: [1, 2, 5])
    collection: str = ""
    collection_retriever: str = ""
    candidates: int = 20

    def __post_init__(self) -> None:
        check_retriever(self.retriever)
        if self.selector == "threshold" and not self.reranker:
            raise SettingError("selector", "threshold keeps passages by reranker probability, "
                               "so it needs a reranker; set reranker: MODEL or choose another "
                               "selector")
        self.prompt_format()
        from ragsift.models.generation.openai_generator import server_options

        server_options(self.server_options)

    def prompt_format(self) -> PromptFormat:
        """The generator's prompt settings of this config."""
        return PromptFormat(self.prompt_template, self.prompt_template_no_context,
                            tuple(tuple(e) for e in self.few_shot), tuple(self.stop),
                            self.answer_extraction, self.use_chat_template)

    def generator_options(self) -> dict:
        """Keyword arguments of :func:`ragsift.models.generation.generator.load_generator` for
        ``generator`` (the backend-specific ones only for its backend)."""
        options = {"base_url": self.base_url, "api_key_env": self.api_key_env,
                   "max_new_tokens": self.max_new_tokens, "batch_size": self.batch_size,
                   "max_passage_tokens": self.max_passage_tokens,
                   "prompt_format": self.prompt_format(), "weights": self.llm_weights}
        if self.generator.startswith("openai:"):
            from ragsift.models.generation.openai_generator import server_options

            options.update(timeout=self.timeout, extra_body=server_options(self.server_options))
        elif self.threads and not self.generator.startswith("transformers:"):
            options["n_threads"] = self.threads
        return options


def check_retriever(spec: str) -> None:
    """Raise :class:`~ragsift.errors.SettingError` (key ``retriever``, a usage error) unless
    ``spec`` is ``none`` or a retriever spec (:func:`ragsift.retrieve.spec.parse_spec`).

    Example:
        >>> check_retriever("dense:")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ragsift.errors.SettingError: retriever: retriever spec 'dense:': dense needs a ...
    """
    if spec == "none":
        return
    from ragsift.retrieve.spec import parse_spec

    try:
        parse_spec(spec)
    except UsageError as exc:
        raise SettingError("retriever", str(exc)) from None


def retrieval_scores(spec: str, examples: list[QAExample],
                     expansions: list[str] | None = None) -> list[np.ndarray]:
    """One score per passage of each example: the retriever ``spec`` indexes the example's
    passages alone and searches them for its question (followed by its expansion when
    ``expansions`` has one text per example); a passage the retriever does not return (BM25
    without a shared term) ranks below those it returned: its score is ``min(0, lowest
    returned score) - 1``. ``none`` scores the passages ``0, -1, -2, ...`` (the given order).

    Raises:
        UsageError: ``spec`` is neither ``none`` nor a retriever spec.
    """
    check_retriever(spec)
    if spec == "none":
        return [-np.arange(len(e.paragraphs), dtype=np.float32) for e in examples]
    from ragsift.retrieve.spec import build_retriever
    from ragsift.types import Document

    retriever = build_retriever(spec)  # models load once; each index() starts afresh
    out = []
    for i, example in enumerate(examples):
        retriever.index({str(j): Document(str(j), p.text, p.title)
                         for j, p in enumerate(example.paragraphs)})
        query = f"{example.question} {expansions[i]}" if expansions else example.question
        hits = retriever.search({"q": query}, k=len(example.paragraphs))["q"]
        floor = min(0.0, *hits.values()) - 1.0
        out.append(np.array([hits.get(str(j), floor) for j in range(len(example.paragraphs))],
                            dtype=np.float32))
    return out


class Pipeline:
    """Runs the chain of a :class:`RagConfig` over QA examples."""

    def __init__(self, config: RagConfig) -> None:
        self.config = config
        self._generator: TextGenerator | None = None

    def generator(self) -> TextGenerator:
        """The generator of ``config.generator``
        (:func:`ragsift.models.generation.generator.load_generator`), loaded once."""
        if self._generator is None:
            self._generator = load_generator(self.config.generator,
                                             **self.config.generator_options())
        return self._generator

    def expansions(self, examples: list[QAExample]) -> list[str] | None:
        """The generated query expansion of each example (None without expansion)."""
        config = self.config
        if config.expansion == "none":
            return None
        return self.generator().expand([e.question for e in examples], config.expansion,
                                       config.expansion_tokens)

    def open_retrieval(self, examples: list[QAExample]) -> list[QAExample]:
        """Each example with its paragraphs replaced by the ``candidates`` best passages of the
        collection for its question (plus expansion), their scores and the expansion kept in
        ``extra`` (``retrieved``, ``expansion``) for :meth:`rank`."""
        from ragsift.collection import Collection

        config = self.config
        expansions = self.expansions(examples)
        out = []
        with Collection.open(config.collection) as collection:
            for i, example in enumerate(tqdm(examples, desc="retrieve", unit="question")):
                query = example.question
                extra = dict(example.extra)
                if expansions:
                    extra["expansion"] = expansions[i]
                    query = f"{query} {expansions[i]}"
                hits = collection.search(query, k=config.candidates,
                                         retriever=config.collection_retriever or None)
                gold = {(p.title, p.text) for p in example.paragraphs if p.is_supporting}
                paragraphs = [Paragraph(h.title, h.text,
                                        (h.title, collection.get(h.doc_id).text) in gold)
                              for h in hits]
                extra["gold_supporting"] = len(gold)
                extra["retrieved"] = [h.score for h in hits]
                extra["retrieved_ids"] = [h.id for h in hits]
                out.append(replace(example, paragraphs=paragraphs, extra=extra))
        return out

    def rank(self, examples: list[QAExample]) -> list[dict]:
        """Per example: stage scores and the final ranking (passage indices, best first)."""
        config = self.config
        if config.collection:
            if not all("retrieved" in e.extra for e in examples):  # rows name the passages
                examples = self.open_retrieval(examples)
            expansions = [e.extra["expansion"] for e in examples] \
                if config.expansion != "none" else None
            scores = [np.asarray(e.extra["retrieved"], dtype=np.float32) for e in examples]
        else:
            expansions = self.expansions(examples)
            scores = retrieval_scores(config.retriever, examples, expansions)
        rows = [{"id": e.id, "retriever": s.tolist()} for e, s in zip(examples, scores)]
        for row, example in zip(rows, examples):
            if "retrieved_ids" in example.extra:
                row["passages"] = example.extra["retrieved_ids"]
        for row, expansion in zip(rows, expansions or []):
            row["expansion"] = expansion
        if config.reranker:
            from ragsift.rerank import Reranker

            options = {"max_length": config.reranker_max_length} \
                if config.reranker_max_length is not None else {}
            reranker = Reranker.load(config.reranker, **options)
            for row, example in zip(rows, examples):
                pairs = [(example.question, p.full_text()) for p in example.paragraphs]
                raw = reranker.score(pairs)
                row["reranker"] = raw.tolist()
                if config.selector == "threshold":
                    row["probability"] = reranker.score(pairs, calibrated=True).tolist()
        for row in rows:
            final = np.asarray(row.get("reranker", row["retriever"]))
            row["ranking"] = np.argsort(-final, kind="stable").tolist()
        return rows

    def select(self, example: QAExample, row: dict) -> list[int]:
        """Indices of the passages given to the generator."""
        config = self.config
        if config.selector == "none":
            return []
        if config.selector == "all":
            return list(range(len(example.paragraphs)))
        if config.selector == "gold":
            return sorted(example.supporting)
        if config.selector == "threshold":
            return [i for i in row["ranking"] if row["probability"][i] >= config.threshold]
        return row["ranking"][:config.k]

    def answers(self, questions: list[str], contexts: list[list[str]], cache: Path
                ) -> list[str]:
        """One answer per question: the generator's raw text, read from the jsonl ``cache``
        when there, otherwise generated in chunks that are appended to it as they finish,
        then the answer extraction of the prompt format. Rows are ``{"key", "text"}``; the key
        hashes the generator's fingerprint, the stop sequences and the prompt, which fix a
        greedy generation (see the module docstring)."""
        generator = self.generator()
        fmt = generator.prompt_format
        known = read_cache(cache)
        prompts = [generator.prompt(q, c) for q, c in zip(questions, contexts)]
        keys = [hashlib.sha256(json.dumps([generator.fingerprint(), list(fmt.stop), prompt])
                               .encode()).hexdigest() for prompt in prompts]
        todo = sorted({key: i for i, key in enumerate(keys) if key not in known}.values())
        if len(todo) < len(keys):
            logger.info("%d of %d answers read from %s", len(keys) - len(todo), len(keys), cache)
        chunk = 4 * self.config.batch_size
        with tqdm(total=len(todo), desc="generate", unit="question") as progress:
            for start in range(0, len(todo), chunk):
                part = todo[start:start + chunk]
                texts = generator.complete([prompts[i] for i in part], stop=fmt.stop)
                rows = [{"key": keys[i], "text": text} for i, text in zip(part, texts)]
                append_rows(cache, rows)
                known.update((row["key"], row["text"]) for row in rows)
                progress.update(len(part))
        return [fmt.extract(known[key], question) for key, question in zip(keys, questions)]

    def run(self, examples: list[QAExample], out: str | Path) -> dict:
        """Run the chain, write the three output files into ``out``; returns the metrics."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        if self.config.collection:
            examples = self.open_retrieval(examples)
        rows = self.rank(examples)
        with atomic_file(out / "rankings.jsonl") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
        selected = [self.select(e, r) for e, r in zip(examples, rows)]
        contexts = [[e.paragraphs[i].full_text() for i in chosen]
                    for e, chosen in zip(examples, selected)]
        answers = self.answers([e.question for e in examples], contexts, out / ANSWERS)
        predictions = []
        for example, chosen, answer in zip(examples, selected, answers):
            predictions.append({
                "id": example.id, "question": example.question, "gold": example.answer,
                "prediction": answer, "selected": chosen,
                "em": exact_match(answer, example.answer),
                "f1": token_f1(answer, example.answer)})
        with atomic_file(out / "predictions.jsonl") as handle:
            handle.writelines(json.dumps(p, ensure_ascii=False) + "\n" for p in predictions)
        metrics = {
            "questions": len(examples),
            "em": float(np.mean([p["em"] for p in predictions])) if predictions else 0.0,
            "f1": float(np.mean([p["f1"] for p in predictions])) if predictions else 0.0,
            "selected_supporting_recall": float(np.mean([
                supporting_recall(chosen, e.supporting, len(chosen) or 1,
                                  e.extra.get("gold_supporting")) if chosen else 0.0
                for e, chosen in zip(examples, selected)])) if examples else 0.0,
            "seconds": time.perf_counter() - start,
            "config": asdict(self.config),
        }
        for k in self.config.recall_at:
            metrics[f"supporting_recall@{k}"] = float(np.mean([
                supporting_recall(r["ranking"], e.supporting, k, e.extra.get("gold_supporting"))
                for e, r in zip(examples, rows)])) if examples else 0.0
        with atomic_file(out / "metrics.json") as handle:
            handle.write(json.dumps(metrics, indent=2))
        logger.info("RAG over %d questions: EM %.4f, F1 %.4f; wrote %s", len(examples),
                    metrics["em"], metrics["f1"], out)
        return metrics


def read_cache(path: Path) -> dict[str, str]:
    """``key -> text`` of the answer cache at ``path`` (empty when absent); lines that are not
    a complete ``{"key", "text"}`` row (a line cut by a crash) are skipped."""
    known: dict[str, str] = {}
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("key"), str) \
                and isinstance(row.get("text"), str):
            known[row["key"]] = row["text"]
    return known


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` as jsonl lines to ``path`` in one ``write`` to a file opened with
    ``O_APPEND``, then ``fsync``: a crash loses at most this chunk, whose last line may be cut
    (then skipped by :func:`read_cache`; a newline is written first so the cut line does not
    swallow the next row)."""
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size and _last_byte(path) != b"\n":
            data = b"\n" + data
        while data:  # a regular file takes it in one call, barring a full disk
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_byte(path: Path) -> bytes:
    """The last byte of the non-empty file ``path``."""
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)
