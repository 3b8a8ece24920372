"""TREC run files (``qid Q0 docid rank score tag``) and qrels files (``qid 0 docid relevance``)."""

from __future__ import annotations

from pathlib import Path

from ragsift.atomic import atomic_file
from ragsift.data.jsonl import add_unique, open_text
from ragsift.errors import DataFormatError
from ragsift.types import Qrels, Run, ranked


def read_run(path: str | Path) -> Run:
    """Read a TREC run file into ``{qid: {docid: score}}``.

    The rank column is not trusted: rankings are re-derived from scores, as trec_eval does.

    Raises:
        DataFormatError: a line without 6 columns, a non-numeric score or a repeated (qid, docid).
    """
    run: Run = {}
    with open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise DataFormatError(
                    path, line_no, None,
                    f"expected 6 columns 'qid Q0 docid rank score tag', got {len(parts)}",
                )
            qid, _, doc_id, _, score, _ = parts
            try:
                value = float(score)
            except ValueError:
                raise DataFormatError(path, line_no, "score", f"not a number: {score!r}") from None
            add_unique(run, qid, doc_id, value, path, line_no, "docid")
    return run


def write_run(run: Run, path: str | Path, tag: str = "ragsift", k: int | None = None) -> None:
    """Write ``run`` as a TREC run file, best first per query, atomically (temp file + rename)."""
    if any(c.isspace() for c in tag) or not tag:
        raise ValueError(f"run tag must be one non-empty word, got {tag!r}")
    with atomic_file(path) as handle:
        for qid in sorted(run):
            for rank, (doc_id, score) in enumerate(ranked(run[qid], k), start=1):
                handle.write(f"{qid} Q0 {doc_id} {rank} {score:.6g} {tag}\n")


def read_qrels(path: str | Path) -> Qrels:
    """Read a TREC qrels file (``qid iteration docid relevance``) into ``{qid: {docid: rel}}``."""
    qrels: Qrels = {}
    with open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise DataFormatError(
                    path, line_no, None,
                    f"expected 4 columns 'qid iteration docid relevance', got {len(parts)}",
                )
            qid, _, doc_id, rel = parts
            try:
                relevance = int(rel)
            except ValueError:
                raise DataFormatError(
                    path, line_no, "relevance", f"expected an integer, got {rel!r}"
                ) from None
            add_unique(qrels, qid, doc_id, relevance, path, line_no, "docid")
    return qrels


def write_qrels(qrels: Qrels, path: str | Path) -> None:
    """Write ``qrels`` as a TREC qrels file, atomically."""
    with atomic_file(path) as handle:
        for qid in sorted(qrels):
            for doc_id in sorted(qrels[qid]):
                handle.write(f"{qid} 0 {doc_id} {qrels[qid][doc_id]}\n")


def read_any_qrels(path: str | Path) -> Qrels:
    """Read qrels in either BEIR tsv (3 columns) or TREC (4 columns) layout, by its first line."""
    from ragsift.data.beir import load_qrels

    with open_text(path) as handle:
        first = next((line for line in handle if line.strip()), "")
    return read_qrels(path) if len(first.split()) == 4 else load_qrels(path)
