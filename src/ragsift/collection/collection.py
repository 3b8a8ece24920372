"""A collection: the user's own documents, chunked, indexed (BM25, dense or both), updated in
place, filtered, searched and persisted crash-safely in one folder.

Layout::

    DIR/manifest.json        the current commit (see :mod:`ragsift.collection.manifest`)
    DIR/segments/seg-*/      immutable batches of documents (see :mod:`~.segment`)
    DIR/<store files>        Milvus Lite's .db or Qdrant's folder, when the store is one of those

Writes (:meth:`Collection.add`, :meth:`Collection.delete`) take a writer lock, write new files
only, and end with one atomic manifest rename: a kill at any moment leaves the previous commit
searchable, and rerunning an add finishes it (documents already committed with the same
content are skipped). Reads use an immutable :class:`~.snapshot.Snapshot` of one commit.

BM25 keeps per-segment term frequencies and takes ``N``, ``df`` and ``avgdl`` over the live
chunks at query time, so scores equal a rebuild's (:mod:`~.lexical`). Dense search asks the
vector store for the top chunks among the live ones that pass the filter (faiss: an ID
selector; Milvus and Qdrant: their own filter), so results equal exact search over the
surviving vectors. Hybrid fuses both document rankings (RRF or convex).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from ragsift.collection.config import DEFAULT_EMBEDDER, CollectionConfig, RetrieverKind
from ragsift.collection.ingest import coerce_documents
from ragsift.collection.lexical import BM25Params, term_matrix
from ragsift.collection.manifest import (
    MANIFEST,
    PENDING,
    PREVIOUS,
    SEGMENTS,
    Manifest,
    SegmentEntry,
    collect_garbage,
    uncommitted_ids,
    write_deleted,
    write_pending,
    writer_lock,
)
from ragsift.collection.merge import merge_plan, merged_segment
from ragsift.collection.segment import ChunkTable, SegmentData, content_hash
from ragsift.collection.snapshot import Snapshot
from ragsift.errors import IndexMismatchError, RagsiftError
from ragsift.retrieve.filters import Filter
from ragsift.retrieve.fusion import convex, rrf
from ragsift.retrieve.vector_store import FaissStore, VectorStore, open_store
from ragsift.types import Document, ranked

logger = logging.getLogger(__name__)

Unit = Literal["document", "chunk"]
FilterSpec = Filter | str | Mapping[str, Any] | Sequence[Any] | None
COMMIT_EVERY = 10_000
#: The ``rerank_model`` of the pipeline config :meth:`Collection.retrieve_and_rerank` builds:
#: a label only, since the reranker is passed in loaded.
GIVEN_RERANKER = "<given reranker>"


@dataclass
class Hit:
    """A search result. For documents (``unit="document"``) ``id`` is the document id and
    ``score`` its best chunk's; ``text``, ``start`` and ``end`` are that chunk's text and its
    character span in the document's text. For chunks ``id`` is ``"<doc id>#<chunk>"``."""

    id: str
    score: float
    doc_id: str
    chunk: int
    text: str
    title: str
    start: int
    end: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "doc_id": self.doc_id, "chunk": self.chunk,
                "title": self.title, "text": self.text, "start": self.start, "end": self.end,
                "metadata": self.metadata}


@dataclass
class AddResult:
    """What an :meth:`Collection.add` did: new documents, replaced ones (same id, new
    content), unchanged ones (skipped), chunks written and the generation committed."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    chunks: int = 0
    generation: int = 0


def _resolve_store_spec(spec: str, folder: Path) -> str:
    """``spec`` with a relative local path made relative to the collection ``folder``."""
    name, _, uri = spec.partition(":")
    if not uri or uri == ":memory:" or "://" in uri or Path(uri).is_absolute():
        return spec
    return f"{name}:{folder / uri}"


class Collection:
    """A folder of documents kept searchable as it changes (see the module doc).

    Open one with :meth:`create` or :meth:`open`. ``encoder`` (a loaded
    :class:`~ragsift.models.bi_encoder.BiEncoder`) replaces loading the configured embedder;
    it must be the model the collection was created with.

    Example:
        >>> col = Collection.create("kb", retriever="bm25")  # doctest: +SKIP
        >>> docs = [{"id": "a", "text": "Cats sleep.", "metadata": {"year": 2021}}]
        >>> col.add(docs)  # doctest: +SKIP
        >>> col.search("sleeping cats", k=5, filter="year>=2020")[0].id  # doctest: +SKIP
        'a'
    """

    def __init__(self, folder: Path, encoder: Any = None, show_progress: bool = False) -> None:
        self.folder = Path(folder)
        self.show_progress = show_progress
        manifest = Manifest.read(self.folder)
        self.config = CollectionConfig.from_dict(manifest.config)
        self._encoder = encoder
        if encoder is not None and self.config.model and encoder.name != self.config.model:
            raise IndexMismatchError(f"{self.folder}: built with model {self.config.model!r}; "
                                     f"refusing to use {encoder.name!r}")
        self._tokenizer: Any = None
        self._model_lock = threading.Lock()
        self._store_lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._store: VectorStore | None = None
        self._manifest_stamp = _stamp(self.folder / MANIFEST)
        self._snapshot = Snapshot(self.folder, manifest)
        if self.config.dense:
            self._store = self._open_store(self._snapshot)

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], retriever: RetrieverKind = "hybrid",
               embedder: str | None = DEFAULT_EMBEDDER, store: str = "faiss",
               chunk_tokens: int | None = None, chunk_overlap: int = 32,
               encoder: Any = None, exist_ok: bool = False, show_progress: bool = False,
               **options: Any) -> Collection:
        """Create an empty collection in ``path`` (a new or empty folder).

        ``options`` are further :class:`CollectionConfig` fields (``bm25``, ``fusion``,
        ``sentence_aware``, ``fusion_depth``); ``bm25`` may be a dict of
        :class:`~ragsift.collection.lexical.BM25Params` fields.
        """
        folder = Path(path)
        if (folder / MANIFEST).is_file():
            if not exist_ok:
                raise RagsiftError(f"{folder}: a collection already exists there")
            existing = cls(folder, encoder=encoder, show_progress=show_progress)
            asked = {"retriever": retriever, "store": store}
            kept = {key: getattr(existing.config, key) for key in asked}
            if asked != kept:
                existing.close()
                raise RagsiftError(f"{folder}: the collection there was created with {kept}, "
                                   f"not {asked}")
            return existing
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise RagsiftError(f"{folder}: exists and is not an empty folder")
        if isinstance(options.get("bm25"), Mapping):
            options["bm25"] = BM25Params(**options["bm25"])
        if encoder is not None:
            embedder = embedder if embedder != DEFAULT_EMBEDDER else encoder.name
        config = CollectionConfig(retriever=retriever, embedder=embedder, store=store,
                                  chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
                                  **options)
        updates: dict[str, Any] = {}
        if config.dense:
            encoder = encoder or _load_encoder(config.embedder)
            updates.update(model=encoder.name, dim=encoder.dim,
                           normalize=bool(encoder.layout.normalize
                                          or encoder.similarity == "cosine"))
        if config.chunk_tokens is None:
            updates["chunk_tokens"] = (encoder.max_length - 2) if config.dense else 256
        config = CollectionConfig(**{**config.__dict__, **updates})
        if config.chunk_overlap >= config.chunk_tokens:
            raise RagsiftError(f"chunk_overlap {config.chunk_overlap} must be below chunk_tokens "
                               f"{config.chunk_tokens}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SEGMENTS).mkdir(exist_ok=True)
        Manifest(0, config.to_dict()).write(folder)
        return cls(folder, encoder=encoder, show_progress=show_progress)

    @classmethod
    def open(cls, path: str | os.PathLike[str], encoder: Any = None,
             show_progress: bool = False) -> Collection:
        """Open the collection in ``path`` at its latest commit."""
        return cls(Path(path), encoder=encoder, show_progress=show_progress)

    def _open_store(self, snapshot: Snapshot) -> VectorStore:
        """The vector store: faiss filled from the segments' live vectors, or a database."""
        if self.config.store == "faiss":
            store = FaissStore(int(self.config.dim))
            for segment in snapshot.segments:
                live = segment.live_rows
                if live.any():
                    store.upsert(segment.chunks.chunk_ids[live], segment.vectors[live])
            return store
        spec = _resolve_store_spec(self.config.store, self.folder)
        return open_store(spec, int(self.config.dim))

    def close(self) -> None:
        """Release the vector store."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- models --------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        """The bi-encoder (loaded on first use)."""
        if self._encoder is None:
            self._encoder = _load_encoder(self.config.embedder)
            if self._encoder.name != self.config.model:
                raise IndexMismatchError(f"{self.folder}: built with {self.config.model!r}, "
                                         f"{self.config.embedder!r} now loads "
                                         f"{self._encoder.name!r}")
        return self._encoder

    @property
    def tokenizer(self) -> Any:
        """The tokenizer that counts chunk tokens: a private ``tokenizers.Tokenizer`` copy
        without truncation or padding (the chunker encodes batches with it directly)."""
        if self._tokenizer is None:
            if self.config.dense:
                model_tokenizer = self.encoder.tokenizer
            else:
                from transformers import AutoTokenizer

                from ragsift.models.hub import resolve_model

                name = self.config.embedder or DEFAULT_EMBEDDER
                model_tokenizer = AutoTokenizer.from_pretrained(str(resolve_model(name)))
            from tokenizers import Tokenizer

            backend = Tokenizer.from_str(model_tokenizer.backend_tokenizer.to_str())
            backend.no_truncation()
            backend.no_padding()
            self._tokenizer = backend
        return self._tokenizer

    # ---- reading -------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        """The commit searches read now."""
        return self._snapshot

    @property
    def generation(self) -> int:
        return self._snapshot.generation

    def __len__(self) -> int:
        return len(self._snapshot.docs)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._snapshot.docs

    def get(self, doc_id: str) -> Document | None:
        """The document ``doc_id`` as last committed, or None."""
        return self._snapshot.document(doc_id)

    def ids(self) -> list[str]:
        """Ids of every document."""
        return list(self._snapshot.docs)

    def refresh(self) -> bool:
        """Move to the latest commit if another process made one; True if it moved. Cheap
        when nothing changed (one ``stat`` of the manifest); searches call it first."""
        with self._publish_lock:
            stamp = _stamp(self.folder / MANIFEST)
            if stamp == self._manifest_stamp:
                return False
            manifest = Manifest.read(self.folder)
            self._manifest_stamp = stamp
            if manifest.generation == self._snapshot.generation:
                return False
            snapshot = Snapshot(self.folder, manifest, self._snapshot)
            with self._store_lock:
                if self.config.store == "faiss" and self.config.dense:
                    self._store = self._open_store(snapshot)
                self._snapshot = snapshot
            return True

    def info(self) -> dict[str, Any]:
        """Sizes and settings."""
        snap = self._snapshot
        disk = sum(f.stat().st_size for f in self.folder.rglob("*") if f.is_file())
        return {
            "path": str(self.folder), "generation": snap.generation,
            "documents": len(snap.docs), "chunks": int(snap.live.sum()),
            "deleted_chunks": int(snap.num_rows - snap.live.sum()),
            "segments": len(snap.segments), "disk_bytes": disk, **self.config.to_dict(),
        }

    # ---- searching -----------------------------------------------------------------------
    def search(self, query: str, k: int = 10, filter: FilterSpec = None,
               unit: Unit = "document", retriever: RetrieverKind | None = None) -> list[Hit]:
        """The ``k`` best documents (or chunks) for ``query`` among those passing ``filter``.

        ``retriever`` narrows a hybrid collection to one of its sides. Returns
        ``min(k, matching)`` hits for dense and hybrid search, where matching counts the
        documents that pass the filter; BM25 alone returns only documents that share a term
        with the query.
        """
        if unit not in ("document", "chunk"):
            raise ValueError(f"unit must be 'document' or 'chunk', got {unit!r}")
        _check_count("k", k)
        kind = retriever or self.config.retriever
        if (kind != self.config.retriever and self.config.retriever != "hybrid") or (
                kind not in ("bm25", "dense", "hybrid")):
            raise ValueError(f"this {self.config.retriever} collection cannot search with "
                             f"{kind!r}")
        parsed = Filter.parse(filter)
        self.refresh()
        try:
            return self._search(query, k, parsed, unit, kind)
        except FileNotFoundError:  # another process committed and cleaned up meanwhile
            self.refresh()
            return self._search(query, k, parsed, unit, kind)

    def _search(self, query: str, k: int, parsed: Filter, unit: Unit,
                kind: str) -> list[Hit]:
        with self._store_lock:
            snap = self._snapshot
        mask = snap.allowed(parsed)
        depth = k if kind != "hybrid" else max(k, self.config.fusion_depth)
        runs = []
        if kind in ("bm25", "hybrid"):
            runs.append(self._lexical(snap, query, mask, depth, unit))
        if kind in ("dense", "hybrid"):
            runs.append(self._dense(snap, query, mask, parsed, depth, unit))
        if len(runs) == 1:
            chosen = runs[0][:k]
        else:
            chosen = self._fuse(snap, runs, k, unit)
        return [self._hit(snap, row, score, unit) for row, score in chosen]

    def _lexical(self, snap: Snapshot, query: str, mask: np.ndarray, depth: int,
                 unit: Unit) -> list[tuple[int, float]]:
        scores = snap.lexical(self.config.bm25).scores(query)
        rows = np.flatnonzero((scores > 0) & mask)
        order = rows[np.argsort(-scores[rows], kind="stable")]
        return _best_per_unit(snap, order, scores[order], depth, unit)

    def _dense(self, snap: Snapshot, query: str, mask: np.ndarray, parsed: Filter, depth: int,
               unit: Unit) -> list[tuple[int, float]]:
        with self._model_lock:
            vector = self.encoder.encode_queries([query], normalize=self.config.normalize)
        candidates = int(mask.sum())
        want, fetch = min(depth, candidates), depth
        if want == 0:
            return []
        native = self._store.native_filter
        allowed = snap.chunk_ids[mask] if parsed and not native else None
        while True:
            with self._store_lock:
                store = self._store
                scores, ids = store.search(vector, fetch, filter=parsed if native else None,
                                           allowed=allowed)
                size = store.size
            rows = snap.rows_of(ids[0])
            ok = rows >= 0
            ok[ok] = mask[rows[ok]]
            found = _best_per_unit(snap, rows[ok], scores[0][ok], want, unit)
            exhausted = (ids[0] >= 0).sum() < fetch or fetch >= size
            if len(found) >= want or exhausted:
                return found
            fetch = min(fetch * 4, size)

    def _fuse(self, snap: Snapshot, runs: list[list[tuple[int, float]]], k: int,
              unit: Unit) -> list[tuple[int, float]]:
        """Fuse the rankings of the two sides; a document (or chunk) is shown with the row
        the side that ranks it first found."""
        keys = snap.doc_keys if unit == "document" else np.arange(snap.num_rows)
        keyed = [{int(keys[row]): (row, score) for row, score in run} for run in runs]
        as_runs = [{"q": {str(key): s for key, (_, s) in part.items()}} for part in keyed]
        if self.config.fusion == "rrf":
            fused = rrf(as_runs)["q"]
        else:
            fused = convex(as_runs)["q"]
        chosen = []
        for key, score in ranked(fused, k):
            row = next(part[int(key)][0] for part in keyed if int(key) in part)
            chosen.append((row, score))
        return chosen

    def _hit(self, snap: Snapshot, row: int, score: float, unit: Unit) -> Hit:
        segment, doc_row, local = snap.locate(row)
        doc = segment.document(doc_row)
        chunks = segment.chunks
        index = int(local - chunks.doc_offsets[doc_row])
        start, end = int(chunks.start[local]), int(chunks.end[local])
        hit_id = doc.id if unit == "document" else f"{doc.id}#{index}"
        return Hit(hit_id, float(score), doc.id, index, doc.text[start:end], doc.title, start,
                   end, dict(doc.metadata))

    def retrieve_and_rerank(self, query: str, reranker: Any, k_retrieve: int = 50,
                            k_rerank: int = 5, filter: FilterSpec = None,
                            unit: Unit = "document",
                            retriever: RetrieverKind | None = None) -> list[Hit]:
        """:meth:`search_pipeline` with a reranker and no final fusion: the ``k_retrieve``
        best hits of :meth:`search` (``filter``, ``unit`` and ``retriever`` as there),
        re-scored by ``reranker`` (any :class:`~ragsift.rerank.Reranker`; long passages go
        through its windows), the ``min(k_rerank, k_retrieve)`` best kept; hits carry the
        reranker's scores.

        The reranker sees each hit's title and text, ``"<title> <text>"``
        (:meth:`ragsift.types.Document.full_text`; the text alone for an untitled document),
        as every ragsift rerank path does.

        Raises:
            ValueError: ``k_retrieve`` or ``k_rerank`` is not a positive integer.

        Example:
            >>> reranker = Reranker.load("models/my-cross-encoder")  # doctest: +SKIP
            >>> col.retrieve_and_rerank("cell protein", reranker, 50, 5)  # doctest: +SKIP
            [Hit(id='d7', score=4.12, ...), ...]
        """
        from ragsift.pipeline.config import PipelineConfig

        _check_count("k_retrieve", k_retrieve)
        _check_count("k_rerank", k_rerank)
        config = PipelineConfig(rerank_model=GIVEN_RERANKER, rerank_top_n=k_retrieve,
                                k=min(k_rerank, k_retrieve))
        return self.search_pipeline(query, config, reranker, filter, unit, retriever)

    def search_pipeline(self, query: str, config: Any, reranker: Any = None,
                        filter: FilterSpec = None, unit: Unit = "document",
                        retriever: RetrieverKind | None = None,
                        hop_reranker: Any = None) -> list[Hit]:
        """A :class:`~ragsift.pipeline.config.PipelineConfig`'s later stages over this
        collection's own first stage (its ``first_stage`` keys are not used): the
        ``config.candidates`` best hits of :meth:`search` (``filter``, ``unit`` and
        ``retriever`` as there), re-scored by ``reranker`` (default:
        the one ``config`` names, loaded now) on each hit's title and text, fused with the
        search scores as ``config.final_fusion`` says, cut to ``config.k``, then re-ordered by
        the second hop when ``config.hop_model`` is set (``hop_reranker``, default: loaded now)
        (:func:`ragsift.pipeline.runner.rerank_and_fuse`); hits carry the final scores."""
        from ragsift.pipeline.runner import load_hop_reranker, load_reranker, rerank_and_fuse

        hits = {h.id: h for h in self.search(query, k=config.candidates, filter=filter,
                                               unit=unit, retriever=retriever)}
        first = {"q": {hit_id: h.score for hit_id, h in hits.items()}}
        corpus = {hit_id: Document(hit_id, h.text, h.title) for hit_id, h in hits.items()}
        reranker = reranker if reranker is not None else load_reranker(config)
        if hop_reranker is None:
            hop_reranker = load_hop_reranker(config)
        final = rerank_and_fuse(config, reranker, {"q": query}, corpus, first,
                                hop_reranker=hop_reranker)
        for hit_id, score in final.get("q", {}).items():
            hits[hit_id].score = float(score)
        return [hits[hit_id] for hit_id, _ in ranked(final.get("q", {}))]

    # ---- writing -------------------------------------------------------------------------
    def add(self, documents: Iterable[Document | Mapping[str, Any]],
            commit_every: int = COMMIT_EVERY) -> AddResult:
        """Insert or replace (same id) ``documents``; every document is checked before any is
        written. Commits every ``commit_every`` changed documents (each commit atomic), so a
        killed add loses at most the batch in flight and a rerun skips what was committed."""
        docs = coerce_documents(documents)
        result = AddResult()
        with self._write_lock, writer_lock(self.folder):
            self._catch_up()
            todo = []
            for doc in docs:
                location = self._snapshot.docs.get(doc.id)
                digest = content_hash(doc)
                if location is not None:
                    segment = self._snapshot.segments[location.segment]
                    if segment.hashes[location.row] == digest:
                        result.unchanged += 1
                        continue
                    result.replaced += 1
                else:
                    result.added += 1
                todo.append((doc, digest))
            with tqdm(total=len(todo), desc="add", unit="doc",
                      disable=not self.show_progress) as progress:
                for start in range(0, len(todo), commit_every):
                    batch = todo[start:start + commit_every]
                    result.chunks += self._commit_add(batch)
                    progress.update(len(batch))
            self._merge_if_needed()
        result.generation = self.generation
        return result

    def delete(self, ids: Iterable[str]) -> int:
        """Delete the documents ``ids`` (unknown ids are skipped); returns how many were
        deleted. One atomic commit."""
        wanted = list(dict.fromkeys(ids))
        with self._write_lock, writer_lock(self.folder):
            self._catch_up()
            found = [i for i in wanted if i in self._snapshot.docs]
            if found:
                self._commit(None, found)
        return len(found)

    def optimize(self) -> None:
        """Merge every segment into one, dropping deleted documents (searches get faster)."""
        with self._write_lock, writer_lock(self.folder):
            self._catch_up()
            if len(self._snapshot.segments) > 1 or any(
                    len(s.deleted) for s in self._snapshot.segments):
                self._merge(list(range(len(self._snapshot.segments))))

    def _catch_up(self) -> None:
        """Under the writer lock: read the latest commit and finish a crashed writer's store
        work (orphan vectors of an uncommitted add, deletes after a commit)."""
        self.refresh()
        pending = self.folder / PENDING
        if self._store is not None and self.config.store != "faiss":
            manifest = self._snapshot.manifest
            orphans = uncommitted_ids(self.folder, manifest.generation)
            if orphans:
                self._store.delete(np.asarray(orphans, dtype=np.int64))
            if manifest.pending_store_deletes:
                self._store.delete(manifest.pending_store_deletes)
        pending.unlink(missing_ok=True)

    def _prepare(self, batch: list[tuple[Document, str]], first_id: int) -> SegmentData:
        """Chunk, tokenize and (dense) encode a batch into a new segment's data."""
        from ragsift.data.chunking import iter_chunk_documents

        docs = [doc for doc, _ in batch]
        config = self.config
        chunk_docs = list(iter_chunk_documents(docs, self.tokenizer, config.chunk_tokens,
                                               config.chunk_overlap, config.sentence_aware))
        counts: dict[str, int] = {}
        for chunk in chunk_docs:
            doc_id = chunk.metadata["doc_id"]
            counts[doc_id] = counts.get(doc_id, 0) + 1
        offsets = np.concatenate([[0], np.cumsum([counts[d.id] for d in docs])]).astype(np.int64)
        texts = [c.full_text() for c in chunk_docs]
        terms, tf, lengths = term_matrix(config.bm25.tokenize(texts))
        n = len(chunk_docs)
        table = ChunkTable(
            doc_offsets=offsets,
            chunk_ids=np.arange(first_id, first_id + n, dtype=np.int64),
            start=np.asarray([c.metadata["start_char"] for c in chunk_docs], dtype=np.int64),
            end=np.asarray([c.metadata["end_char"] for c in chunk_docs], dtype=np.int64),
            title_len=np.asarray([len(c.title) for c in chunk_docs], dtype=np.int32),
            lengths=lengths,
        )
        vectors = None
        if config.dense:
            with self._model_lock:
                vectors = self.encoder.encode_documents(texts, normalize=config.normalize,
                                                        show_progress=self.show_progress)
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        return SegmentData(docs, [digest for _, digest in batch], table, terms, tf, vectors)

    def _commit_add(self, batch: list[tuple[Document, str]]) -> int:
        manifest = self._snapshot.manifest
        first = manifest.next_chunk_id
        data = self._prepare(batch, first)
        return self._commit(data, [doc.id for doc, _ in batch
                                   if doc.id in self._snapshot.docs])

    def _commit(self, data: SegmentData | None, removed: list[str]) -> int:
        """Write ``data`` as a new segment and delete the documents ``removed`` in one
        commit; then bring the vector store and the snapshot up to it."""
        old = self._snapshot
        generation = old.generation + 1
        manifest = Manifest(generation, old.manifest.config,
                            [SegmentEntry(e.name, e.deleted) for e in old.manifest.segments],
                            old.manifest.next_chunk_id)
        added_ids = np.zeros(0, dtype=np.int64)
        if data is not None:
            name = f"seg-{generation:06d}"
            data.write(self.folder / SEGMENTS / name)
            added_ids = data.chunks.chunk_ids
            manifest.segments.append(SegmentEntry(name))
            manifest.next_chunk_id += len(added_ids)
        by_segment: dict[int, list[int]] = {}
        for doc_id in removed:
            location = old.docs[doc_id]
            by_segment.setdefault(location.segment, []).append(location.row)
        removed_ids = []
        for index, rows in by_segment.items():
            segment = old.segments[index]
            rows_all = np.concatenate([segment.deleted, np.asarray(rows, dtype=np.int64)])
            manifest.segments[index].deleted = write_deleted(self.folder, segment.name,
                                                             generation, rows_all)
            removed_ids.append(segment.chunks.chunk_ids[segment.chunks.rows_of(np.asarray(rows))])
        removed_chunk_ids = (np.concatenate(removed_ids) if removed_ids
                             else np.zeros(0, dtype=np.int64))
        external = self._store is not None and self.config.store != "faiss"
        if external:
            manifest.pending_store_deletes = removed_chunk_ids.tolist()
            if len(added_ids):
                write_pending(self.folder, generation, int(added_ids[0]),
                              int(added_ids[-1]) + 1)
                self._store.upsert(added_ids, data.vectors, _payloads(data))

        def update_faiss() -> None:
            if self._store is not None and not external:
                if len(added_ids):
                    self._store.upsert(added_ids, data.vectors)
                if len(removed_chunk_ids):
                    self._store.delete(removed_chunk_ids)

        self._publish(manifest, old, update_faiss)
        if external:
            if len(removed_chunk_ids):
                self._store.delete(removed_chunk_ids)
            (self.folder / PENDING).unlink(missing_ok=True)
        self._collect_garbage()
        return len(added_ids)

    def _publish(self, manifest: Manifest, old: Snapshot,
                 before_swap: Callable[[], None] | None = None) -> None:
        """Commit ``manifest`` (the atomic rename) and make it what searches read, after
        ``before_swap`` (in-process store changes) under the store lock; a concurrent
        :meth:`refresh` waits instead of reopening the commit this writer is publishing."""
        with self._publish_lock:
            manifest.write(self.folder)
            snapshot = Snapshot(self.folder, manifest, old)
            with self._store_lock:
                if before_swap is not None:
                    before_swap()
                self._snapshot = snapshot
            self._manifest_stamp = _stamp(self.folder / MANIFEST)

    def _merge_if_needed(self) -> None:
        plan = merge_plan([int(s.live_docs.sum()) for s in self._snapshot.segments])
        if plan:
            self._merge(plan)

    def _merge(self, indexes: list[int]) -> None:
        """Replace the segments ``indexes`` by one holding their live documents."""
        old = self._snapshot
        generation = old.generation + 1
        name = f"seg-{generation:06d}"
        merged_segment([old.segments[i] for i in indexes]).write(self.folder / SEGMENTS / name)
        keep = [SegmentEntry(e.name, e.deleted) for i, e in enumerate(old.manifest.segments)
                if i not in indexes]
        manifest = Manifest(generation, old.manifest.config, [*keep, SegmentEntry(name)],
                            old.manifest.next_chunk_id, [])
        self._publish(manifest, old)
        self._collect_garbage()

    def _collect_garbage(self) -> None:
        keep = [self._snapshot.manifest]
        if (self.folder / PREVIOUS).is_file():
            keep.append(Manifest.read(self.folder, PREVIOUS))
        collect_garbage(self.folder, keep)


def _stamp(path: Path) -> tuple[int, int, int]:
    """What changes when a file is replaced: inode, size and modification time."""
    info = path.stat()
    return info.st_ino, info.st_size, info.st_mtime_ns


def _check_count(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` (the argument ``name``) is a positive integer."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _best_per_unit(snap: Snapshot, rows: np.ndarray, scores: np.ndarray, limit: int,
                   unit: Unit) -> list[tuple[int, float]]:
    """The first ``limit`` rows (already best first), one per document for documents."""
    if unit == "chunk":
        return list(zip(rows[:limit].tolist(), scores[:limit].tolist()))
    out: list[tuple[int, float]] = []
    seen: set[int] = set()
    keys = snap.doc_keys[rows]
    for row, score, key in zip(rows.tolist(), scores.tolist(), keys.tolist()):
        if key in seen:
            continue
        seen.add(key)
        out.append((row, score))
        if len(out) == limit:
            break
    return out


def _payloads(data: SegmentData) -> list[dict[str, Any]]:
    """One payload per chunk: its document's metadata (what database stores filter on)."""
    doc_of_row = data.chunks.doc_of_row
    return [dict(data.documents[r].metadata) for r in doc_of_row.tolist()]


def _load_encoder(name: str | None) -> Any:
    from ragsift.models.bi_encoder import BiEncoder

    return BiEncoder.from_pretrained(name)


__all__ = ["AddResult", "Collection", "Hit"]
