"""Synthetic queries for an unlabelled corpus (InPars / Promptagator style), and their filter.

Two steps:

1. :func:`synthesize_queries` asks a language model (greedy: :meth:`TextGenerator.complete
   <ragsift.models.generation.generator.TextGenerator.complete>` of any backend of
   :func:`ragsift.models.generation.generator.load_generator`: llama.cpp, the default for a GGUF
   model such as the packaged ``smollm2-135m``; transformers, batched; an OpenAI-compatible server)
   for one search query per document and writes training rows ``{"query", "pos": [document text],
   "neg": [], "query_id": "synth-<doc id>", "pos_ids": [doc id]}``, the format ``ragsift train``
   reads (rows without negatives train with in-batch negatives only: ``--set negatives=0``). The
   prompt is :data:`DEFAULT_TEMPLATE` or the caller's, with the passage cut to the generator's
   ``max_passage_tokens`` (its own tokenizer's tokens; words for a server) and wrapped by the
   backend's chat template. Each generation is cleaned by :func:`clean_query`; a document whose
   generation is empty after cleaning gets no row (the count is returned and logged). The job is
   sharded and resumable (:mod:`ragsift.jobs.sharded`): a killed run, rerun with the same settings,
   writes the same bytes as an uninterrupted one; a rerun with other prompt or generator settings
   over the same unfinished shards (another model, backend or ``max_new_tokens``: the generator's
   :meth:`~ragsift.models.generation.generator.TextGenerator.fingerprint`) is refused.
2. :func:`round_trip_filter` indexes the corpus with a retriever, searches every generated
   query and keeps a row only when its source document is among the top ``k`` (the
   round-trip consistency filter of Promptagator), so that queries too vague to find their
   own passage are dropped.

:func:`synthetic_beir` writes the kept queries as a BEIR folder (each query judges its source
document relevant), so that every tool that reads BEIR takes them: ``ragsift search``,
``ragsift label`` (a teacher scores their candidates: GPL's pseudo labels) and ``ragsift mine``.

Documents are all of the corpus or a seeded sample of it (:func:`choose_documents`), in sorted
id order.

Example:
    >>> corpus = load_corpus("path/to/scifact")                  # doctest: +SKIP
    >>> generator = load_generator("smollm2-135m")               # doctest: +SKIP
    >>> ids = choose_documents(corpus, docs=1000, seed=0)        # doctest: +SKIP
    >>> synthesize_queries(corpus, generator, "raw.jsonl", ids)  # doctest: +SKIP
    >>> bm25 = BM25Retriever()                                   # doctest: +SKIP
    >>> round_trip_filter("raw.jsonl", corpus, bm25, "synth.jsonl", k=3)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragsift.atomic import atomic_file
from ragsift.data.jsonl import field_list, read_jsonl
from ragsift.errors import DataFormatError, RagsiftError
from ragsift.jobs.sharded import JobResult, run_sharded, shards_dir
from ragsift.models.generation.generator import Prompt, TextGenerator
from ragsift.retrieve.base import Retriever
from ragsift.types import Corpus, Document, ranked

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = ("Read the passage and write one search question that it answers.\n\n"
                    "Passage: {passage}\n\nQuestion:")
"""The default prompt (a user message; the model's chat template wraps it when it has one).
``{passage}`` is the title and text of the document, cut to the generator's
``max_passage_tokens``; a template that also names ``{title}`` gets the text alone there.
Asking for a *question*, with the instruction first and a ``Question:`` cue last, gave real
questions from SmolLM2-135M-Instruct where "a short search query" gave passage summaries and
title copies."""

_FIELDS = {"passage", "title"}
_LEAD = re.compile(r"^(?:[-*•]\s+|\d+[.)]\s+)")  # list markers: "- ", "* ", "1. ", "2) "
_LABEL = re.compile(r"^(?:(?:generated|search|short|synthetic)\s+)?(?:query|question|q)\s*\d*"
                    r"\s*[:：]\s*", re.IGNORECASE)
_QUOTES = "\"“”«»`*"


@dataclass
class SynthesisResult:
    """What :func:`synthesize_queries` did: documents asked for a query, rows written,
    generations dropped because they were empty after cleaning, and the job's counts."""

    documents: int
    queries: int
    empty: int
    job: JobResult


@dataclass
class RoundTripResult:
    """Rows kept (source document in the top ``k``) and dropped by :func:`round_trip_filter`."""

    kept: int
    dropped: int


def check_template(template: str) -> set[str]:
    """The fields of a prompt template, after checking it names ``{passage}`` and nothing but
    ``{passage}`` and ``{title}``.

    Raises:
        RagsiftError: a missing ``{passage}``, another field, or unbalanced braces.

    Example:
        >>> sorted(check_template("Title: {title}\\nPassage: {passage}\\nQuery:"))
        ['passage', 'title']
    """
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template)
                  if name is not None}
    except ValueError as exc:
        raise RagsiftError(f"prompt template: {exc}; write a literal brace as {{{{ or }}}}"
                           ) from None
    unknown = sorted(fields - _FIELDS)
    if unknown:
        raise RagsiftError(f"prompt template: unknown field(s) {unknown}; a template may use "
                           f"{{passage}} and {{title}} (write a literal brace as {{{{ or }}}})")
    if "passage" not in fields:
        raise RagsiftError("prompt template: it must contain {passage}, where the document "
                           "goes")
    return fields


def query_prompt(generator: TextGenerator, document: Document,
                 template: str = DEFAULT_TEMPLATE) -> Prompt:
    """The prompt asking ``generator`` for a query about ``document``, as its backend takes
    it (token ids of a local model, the user message for a server).

    ``{passage}`` is the document's title and text (its text alone when the template also has
    ``{title}``), cut by :meth:`generator.cut
    <ragsift.models.generation.generator.TextGenerator.cut>` to ``max_passage_tokens``; the message
    goes through :meth:`generator.encode <ragsift.models.generation.generator.TextGenerator.encode>`
    (the chat template when there is one).
    """
    fields = check_template(template)
    passage = generator.cut(document.text if "title" in fields else document.full_text())
    return generator.encode(template.format(passage=passage, title=document.title))


def clean_query(text: str) -> str:
    """The query in a raw generation, or ``""`` when it holds none.

    Takes the first line that still has text once list markers (``- ``, ``1. ``), labels
    (``Query:``, ``Search query 1:``, ``Q:``), surrounding quotes, backticks and markdown stars
    are removed; a line ending with ``:`` is a lead-in ("Here is a query:") and is skipped.
    Whitespace is collapsed.

    Example:
        >>> clean_query('  Query: "what causes tides?"\\nThe passage explains...')
        'what causes tides?'
        >>> clean_query("Here is a search query:\\n\\n**how do vaccines work**")
        'how do vaccines work'
    """
    for line in text.splitlines():
        line = _LEAD.sub("", line.strip()).strip(_QUOTES + " ")
        line = _LABEL.sub("", line).strip(_QUOTES + " ")
        if len(line) >= 2 and line[0] == line[-1] == "'":
            line = line[1:-1].strip()
        line = " ".join(line.split())
        if line and not line.endswith(":"):
            return line
    return ""


def generate_queries(generator: TextGenerator, documents: Sequence[Document],
                     template: str = DEFAULT_TEMPLATE) -> list[str]:
    """One cleaned query per document (``""`` where the generation held none), in order;
    greedy, so the same inputs give the same queries."""
    prompts = [query_prompt(generator, doc, template) for doc in documents]
    return [clean_query(text) for text in generator.complete(prompts)]


def choose_documents(corpus: Corpus, docs: int | None = None, seed: int = 0) -> list[str]:
    """Sorted ids of the documents to write queries for: every document with text, or a random
    sample of ``docs`` of them drawn with ``seed`` (all of them when ``docs`` >= their number).

    Raises:
        RagsiftError: ``docs`` < 1, or no document has text.

    Example:
        >>> from ragsift.types import Document
        >>> corpus = {i: Document(i, f"text {i}") for i in "edcba"}
        >>> choose_documents(corpus, docs=3, seed=0) == choose_documents(corpus, docs=3, seed=0)
        True
        >>> choose_documents(corpus)
        ['a', 'b', 'c', 'd', 'e']
    """
    if docs is not None and docs < 1:
        raise RagsiftError(f"docs must be at least 1, got {docs}")
    ids = sorted(d for d, doc in corpus.items() if doc.full_text().strip())
    if not ids:
        raise RagsiftError("the corpus has no document with text to write a query for")
    if len(ids) < len(corpus):
        logger.info("skipping %d documents without text", len(corpus) - len(ids))
    if docs is None or docs >= len(ids):
        return ids
    return sorted(random.Random(seed).sample(ids, docs))


def synthetic_row(document: Document, query: str) -> dict[str, Any]:
    """The training row of a generated ``query`` whose positive is ``document``."""
    return {"query": query, "pos": [document.full_text()], "query_id": f"synth-{document.id}",
            "pos_ids": [document.id], "neg": []}


def synthesize_queries(corpus: Corpus, generator: TextGenerator, out: str | Path,
                       doc_ids: Sequence[str] | None = None, template: str = DEFAULT_TEMPLATE,
                       shard_size: int = 64, show_progress: bool = True) -> SynthesisResult:
    """Write one synthetic query row per document of ``doc_ids`` to ``out`` (jsonl).

    Args:
        corpus: the documents, by id.
        generator: any backend of :func:`ragsift.models.generation.generator.load_generator`; its
            ``max_new_tokens``, ``batch_size`` and ``max_passage_tokens`` apply.
        out: the output jsonl (rows as :func:`synthetic_row`, in ``doc_ids`` order).
        doc_ids: the documents (default: :func:`choose_documents` of the whole corpus).
        template: the prompt (see :func:`check_template` and :data:`DEFAULT_TEMPLATE`).
        shard_size: documents per shard; finished shards survive a kill.

    Returns:
        The counts; documents whose generation was empty after cleaning have no row.

    Raises:
        RagsiftError: a bad template, an id absent from the corpus, or unfinished shards of a
            run with other settings.
    """
    check_template(template)
    ids = choose_documents(corpus) if doc_ids is None else list(doc_ids)
    missing = [d for d in ids if d not in corpus]
    if missing:
        raise RagsiftError(f"{len(missing)} document id(s) are not in the corpus, e.g. "
                           f"{missing[0]!r}")
    _claim_shards(out, {"generator": generator.fingerprint(), "template": template,
                        "max_new_tokens": generator.max_new_tokens,
                        "max_passage_tokens": generator.max_passage_tokens})

    def work(shard: list[str]) -> list[str]:
        documents = [corpus[d] for d in shard]
        queries = generate_queries(generator, documents, template)
        return [json.dumps(synthetic_row(doc, query), ensure_ascii=False)
                for doc, query in zip(documents, queries) if query]

    job = run_sharded(ids, work, out, shard_size, desc="synth", show_progress=show_progress)
    result = SynthesisResult(len(ids), job.lines, len(ids) - job.lines, job)
    logger.info("synthetic queries: %d of %d documents got one (%d empty generations dropped)",
                result.queries, result.documents, result.empty)
    return result


def _claim_shards(out: str | Path, settings: dict[str, Any]) -> None:
    """Record the generation settings beside the shards of ``out``, or refuse to resume shards
    written with other settings (the sharded job itself checks only the document ids)."""
    file = shards_dir(out) / "synth.json"
    if file.is_file():
        previous = json.loads(file.read_text(encoding="utf-8"))
        if previous != settings:
            changed = sorted(k for k in settings if previous.get(k) != settings[k])
            raise RagsiftError(f"{shards_dir(out)} holds shards generated with other settings "
                               f"({', '.join(changed)} differ); rerun with the same settings "
                               f"to resume, or delete the folder to start over")
        return
    with atomic_file(file) as handle:
        handle.write(json.dumps(settings))


def read_synthetic_rows(rows_file: str | Path, corpus: Corpus) -> list[dict[str, Any]]:
    """The rows of ``rows_file`` (as :func:`synthesize_queries` writes them), checked: each has
    a non-empty ``query`` and ``pos_ids`` whose first id, the source document, is in
    ``corpus``.

    Raises:
        DataFormatError: the first row that fails, by file, line and field.
    """
    rows: list[dict[str, Any]] = []
    for line, row in read_jsonl(rows_file):
        query, sources = row.get("query"), field_list(row, "pos_ids", rows_file, line, str)
        if not isinstance(query, str) or not query.strip():
            raise DataFormatError(rows_file, line, "query", "expected a non-empty string")
        if not sources:
            raise DataFormatError(rows_file, line, "pos_ids",
                                  "needs the source document id (as ragsift synth writes)")
        if sources[0] not in corpus:
            raise DataFormatError(rows_file, line, "pos_ids",
                                  f"document {sources[0]!r} is not in the corpus: use the "
                                  f"corpus the queries were generated from")
        rows.append(row)
    return rows


def round_trip_filter(rows_file: str | Path, corpus: Corpus, retriever: Retriever,
                      out: str | Path, k: int = 3) -> RoundTripResult:
    """Keep the rows of ``rows_file`` whose query finds its own source document.

    Indexes ``corpus`` with ``retriever``, searches every row's ``query`` and keeps the row
    when its source document (``pos_ids[0]``) is among the ``k`` best; the kept rows are
    written to ``out`` atomically, unchanged and in order.

    Args:
        rows_file: jsonl rows with ``query`` and ``pos_ids``, as :func:`synthesize_queries`
            writes.
        corpus: the corpus the rows were generated from (the whole corpus, so that a query
            must beat every other document).
        retriever: an un-indexed retriever (e.g. ``BM25Retriever()``).
        out: the filtered jsonl.
        k: the rank a source document must reach.

    Returns:
        Rows kept and dropped.

    Raises:
        RagsiftError: ``k`` < 1. DataFormatError: a row without ``query``/``pos_ids`` or whose
            source document is not in ``corpus``.
    """
    if k < 1:
        raise RagsiftError(f"round-trip k must be at least 1, got {k}")
    rows = read_synthetic_rows(rows_file, corpus)
    run = {}
    if rows:
        retriever.index(corpus)
        run = retriever.search({str(i): row["query"] for i, row in enumerate(rows)}, k=k)
    kept = 0
    with atomic_file(out) as handle:
        for i, row in enumerate(rows):
            if row["pos_ids"][0] in {d for d, _ in ranked(run.get(str(i), {}), k)}:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                kept += 1
    result = RoundTripResult(kept, len(rows) - kept)
    logger.info("round-trip filter: kept %d of %d queries (source document in the top %d); "
                "wrote %s", kept, len(rows), k, out)
    return result


def synthetic_beir(rows_file: str | Path, corpus: Corpus, folder: str | Path,
                   split: str = "train") -> Path:
    """Write the synthetic queries of ``rows_file`` as a BEIR folder and return it.

    The folder holds all of ``corpus``, the rows' queries (ids ``query_id``, else
    ``synth-<source id>``; a repeated id keeps its first row) and ``qrels/<split>.tsv`` judging
    each query's source document (``pos_ids[0]``) relevant with grade 1. The folder is
    replaced atomically.

    Raises:
        DataFormatError: a malformed row (:func:`read_synthetic_rows`).
    """
    from ragsift.data.beir import BeirDataset
    from ragsift.data.beir_write import write_beir

    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for row in read_synthetic_rows(rows_file, corpus):
        source = row["pos_ids"][0]
        query_id = str(row.get("query_id") or f"synth-{source}")
        if query_id not in queries:
            queries[query_id] = row["query"]
            qrels[query_id] = {source: 1}
    dataset = BeirDataset(dict(corpus), queries, qrels, Path(folder), split)
    write_beir(dataset, folder)
    logger.info("wrote %d synthetic queries as BEIR split %r of %s", len(queries), split, folder)
    return Path(folder)
