"""TREC run files (``qid Q0 docid rank score tag``) and qrels files (``qid 0 docid relevance``)."""

from __future__ import annotations

import math
from pathlib import Path

from ragsift.atomic import atomic_file
from ragsift.data.checks import check_id, id_problem, parse_count, parse_relevance, parse_score
from ragsift.data.jsonl import add_unique
from ragsift.data.lines import iter_lines
from ragsift.errors import DataFormatError, UsageError
from ragsift.types import Qrels, Run, ranked


def read_run(path: str | Path) -> Run:
    """Read a TREC run file into ``{qid: {docid: score}}``.

    The rank column is not trusted: rankings are re-derived from scores, as trec_eval does.

    Raises:
        DataFormatError: a line without 6 columns, an id with control characters, a rank that
            is not a non-negative integer, a score that is not a finite number (``nan``,
            ``inf``, ``1_0`` are refused) or a repeated (qid, docid).
    """
    run: Run = {}
    for line_no, text in iter_lines(path):
        parts = text.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise DataFormatError(
                path, line_no, None,
                f"expected 6 columns 'qid Q0 docid rank score tag', got {len(parts)}",
            )
        qid, _, doc_id, rank, score, _ = parts
        check_id(qid, path, line_no, "qid")
        check_id(doc_id, path, line_no, "docid")
        parse_count(rank, path, line_no, "rank")
        value = parse_score(score, path, line_no, "score")
        add_unique(run, qid, doc_id, value, path, line_no, "docid")
    return run


def write_run(run: Run, path: str | Path, tag: str = "ragsift", k: int | None = None) -> None:
    """Write ``run`` as a TREC run file, best first per query, atomically (temp file + rename).

    Raises:
        UsageError: the tag is not one word (it would split the line into other columns).
        ValueError: a query/document id is not one word, or a score is not finite (ids read
            by ragsift's loaders are checked there).
    """
    problem = id_problem(str(tag))
    if problem is not None:
        raise UsageError(f"run tag {tag!r} (--tag): {problem}")
    with atomic_file(path) as handle:
        for qid in sorted(run):
            _check_writable_id(qid, "query id")
            for rank, (doc_id, score) in enumerate(ranked(run[qid], k), start=1):
                _check_writable_id(doc_id, "document id")
                if not math.isfinite(score):
                    raise ValueError(f"score of ({qid!r}, {doc_id!r}) is {score}; a TREC run "
                                     f"needs finite scores")
                handle.write(f"{qid} Q0 {doc_id} {rank} {score:.6g} {tag}\n")


def _check_writable_id(value: str, what: str) -> None:
    """Refuse an id (or tag) that would not survive a whitespace-separated line."""
    problem = id_problem(str(value))
    if problem is not None:
        raise ValueError(f"{what} {value!r}: {problem}")


def read_qrels(path: str | Path) -> Qrels:
    """Read a TREC qrels file (``qid iteration docid relevance``) into ``{qid: {docid: rel}}``.

    Relevance is an integer (``1.0`` is one, ``1.5`` is not) in the range pytrec_eval holds,
    as in BEIR qrels (:func:`ragsift.data.checks.parse_relevance`).
    """
    qrels: Qrels = {}
    for line_no, text in iter_lines(path):
        parts = text.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise DataFormatError(
                path, line_no, None,
                f"expected 4 columns 'qid iteration docid relevance', got {len(parts)}",
            )
        qid, _, doc_id, rel = parts
        check_id(qid, path, line_no, "qid")
        check_id(doc_id, path, line_no, "docid")
        relevance = parse_relevance(rel, path, line_no, "relevance")
        add_unique(qrels, qid, doc_id, relevance, path, line_no, "docid")
    return qrels


def write_qrels(qrels: Qrels, path: str | Path) -> None:
    """Write ``qrels`` as a TREC qrels file, atomically."""
    with atomic_file(path) as handle:
        for qid in sorted(qrels):
            _check_writable_id(qid, "query id")
            for doc_id in sorted(qrels[qid]):
                _check_writable_id(doc_id, "document id")
                handle.write(f"{qid} 0 {doc_id} {qrels[qid][doc_id]}\n")


def read_any_qrels(path: str | Path) -> Qrels:
    """Read qrels in either BEIR tsv (3 columns) or TREC (4 columns) layout, by its first line."""
    from ragsift.data.beir import load_qrels

    first = next((text for _, text in iter_lines(path) if text.strip()), "")
    return read_qrels(path) if len(first.split()) == 4 else load_qrels(path)
