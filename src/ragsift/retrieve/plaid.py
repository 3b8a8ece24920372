"""A PLAID-style late-interaction index on faiss: centroids, compressed residuals, staged search.

Build (:meth:`PlaidIndex.train` then :meth:`PlaidIndex.add`) over documents' token vectors
``d_j`` (unit vectors of dimension ``D``):

- ``K`` unit centroids ``c_1..c_K`` by spherical faiss k-means on a sample of the tokens
  (``K`` defaults to :func:`default_centroids`: a power of two near ``4 sqrt(T)`` for ``T``
  tokens, as PLAID sizes it from the token count);
- each token stored as its nearest centroid id ``a_j = argmax_c c . d_j`` plus its residual
  ``r_j = d_j - c_{a_j}`` compressed by a faiss scalar quantizer of ``residual_bits`` (4 or 8)
  bits per dimension (uniform buckets over each dimension's range: min to max for 8 bits,
  1% to 99% quantile for 4 bits), or kept exactly as float16 (``residual_bits=None``);
- an inverted file: for each centroid, the sorted documents owning a token assigned to it.

Search for a query with token vectors ``q_1..q_m`` (``S_ic = q_i . c_c``):

1. candidate generation: each ``q_i`` probes its ``nprobe`` best centroids ``P_i``; a document
   is a candidate when it owns a token assigned to some probed centroid, with the pruned
   centroid score ``sum_i max_{j in d, a_j in P_i} S_{i a_j}`` (0 for a query token whose probed
   centroids the document misses); the ``ncandidates`` best survive;
2. centroid interaction: the survivors are re-scored with every token approximated by its
   centroid, ``sum_i max_{j in d} S_{i a_j}``; the best ``max(k, ncandidates // 4)`` survive;
3. exact MaxSim ``s(q, d) = sum_i max_{j in d} q_i . d~_j`` on the reconstructed vectors
   ``d~_j = c_{a_j} + decode(r_j)`` (the stored vectors themselves when ``residual_bits=None``).

With ``nprobe = K`` and ``ncandidates >= 4 N`` every document reaches stage 3, so the index
returns exhaustive MaxSim over its stored vectors. Deleting marks documents as removed (they
are never candidates); adding assigns new tokens to the existing centroids, so the centroids
drift from the data as a corpus grows: :attr:`PlaidIndex.rebuild_advised` turns true once more
tokens were added after training than the centroids were trained on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ragsift.errors import UsageError

logger = logging.getLogger(__name__)

RESIDUAL_BITS = (4, 8)
#: k-means settings: iterations, and training tokens sampled per centroid.
KMEANS_ITERATIONS = 10
KMEANS_POINTS_PER_CENTROID = 32
#: 4-bit residual range per dimension: this quantile of the training residuals and 1 - it
RANGE_QUANTILE = 0.01


def default_centroids(num_tokens: int) -> int:
    """``2 ** round(log2(4 sqrt(T)))`` centroids for ``T`` tokens, at most ``T`` (~200 tokens
    per centroid for SciFact's 815,000; PLAID takes ``16 sqrt(T)``, but k-means then costs more
    than encoding the corpus on a laptop CPU).

    Example:
        >>> default_centroids(815_000), default_centroids(100)
        (4096, 32)
    """
    if num_tokens < 1:
        raise UsageError("no token vectors to train centroids on: index at least one document, "
                         "or use the flat engine")
    return int(min(num_tokens, 2 ** round(np.log2(4 * np.sqrt(num_tokens)))))


def token_ranges(offsets: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token rows of documents ``docs`` (rows ``offsets[d]:offsets[d + 1]``, concatenated in the
    order of ``docs``) and the offsets of each document inside that selection.

    Example:
        >>> token_ranges(np.array([0, 2, 2, 5]), np.array([2, 0]))
        (array([2, 3, 4, 0, 1]), array([0, 3, 5]))
    """
    lengths = offsets[docs + 1] - offsets[docs]
    local = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rows = np.arange(local[-1], dtype=np.int64) - np.repeat(local[:-1] - offsets[docs], lengths)
    return rows, local


def segment_max_sum(sims: np.ndarray, local: np.ndarray) -> np.ndarray:
    """``sum_i max_{j in segment}`` of ``sims`` ``(rows, m)`` per segment ``local[s]:local[s+1]``
    (0 for an empty segment); ``(len(local) - 1,)`` float32."""
    scores = np.zeros(len(local) - 1, dtype=np.float32)
    filled = local[1:] > local[:-1]
    if filled.any():
        scores[filled] = np.maximum.reduceat(sims, local[:-1][filled], axis=0).sum(axis=1)
    return scores


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` largest ``scores``, best first, ties by position."""
    if n < len(scores):
        keep = np.argpartition(-scores, n - 1)[:n]
        return keep[np.lexsort((keep, -scores[keep]))]
    return np.lexsort((np.arange(len(scores)), -scores))


class PlaidIndex:
    """Centroid ids, compressed residuals and an inverted file over documents' token vectors.

    Documents are positions ``0..N-1`` in the order they were added.

    Args:
        centroids: ``(K, D)`` float32 centroids.
        residual_bits: 4 or 8 (scalar-quantised residuals), or None (exact float16 vectors).
        quantizer: the trained faiss ``IndexScalarQuantizer`` of the residuals (None when
            ``residual_bits`` is None).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> docs = [v / np.linalg.norm(v, axis=1, keepdims=True)
        ...         for v in rng.normal(size=(20, 6, 8)).astype(np.float32)]
        >>> index = PlaidIndex.train(docs, residual_bits=None, num_centroids=8)
        >>> index.add(docs)
        >>> positions, scores = index.search(docs[3], k=1, nprobe=8, ncandidates=80)
        >>> int(positions[0])
        3
    """

    def __init__(self, centroids: np.ndarray, residual_bits: int | None,
                 quantizer: object | None = None, trained_tokens: int = 0) -> None:
        if residual_bits is not None and residual_bits not in RESIDUAL_BITS:
            raise UsageError(f"residual_bits must be one of {RESIDUAL_BITS} or None, got "
                             f"{residual_bits}")
        if (quantizer is None) != (residual_bits is None):
            raise ValueError("a residual quantizer goes with residual_bits, and only then")
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.residual_bits = residual_bits
        self.quantizer = quantizer
        self._scale, self._shift = _dequantization(quantizer, residual_bits)
        self.trained_tokens = trained_tokens
        dim = self.centroids.shape[1]
        width = quantizer.sa_code_size() if quantizer is not None else dim
        self.codes = np.zeros(0, dtype=np.int32)
        self.residuals = np.zeros((0, width), np.uint8 if quantizer is not None else np.float16)
        self.offsets = np.zeros(1, dtype=np.int64)
        self.deleted = np.zeros(0, dtype=bool)
        self._ivf_offsets = np.zeros(len(self.centroids) + 1, dtype=np.int64)
        self._ivf_docs = np.zeros(0, dtype=np.int64)

    # ---- building --------------------------------------------------------------------------
    @classmethod
    def train(cls, vectors: Sequence[np.ndarray], residual_bits: int | None = 8,
              num_centroids: int | None = None, seed: int = 0) -> PlaidIndex:
        """An empty index whose centroids (faiss k-means, ``KMEANS_ITERATIONS`` iterations on
        at most ``KMEANS_POINTS_PER_CENTROID`` sampled tokens per centroid) and residual
        quantizer are fitted on the documents' token matrices ``vectors``."""
        import faiss

        tokens = np.ascontiguousarray(np.concatenate(list(vectors)), dtype=np.float32)
        k = num_centroids or default_centroids(len(tokens))
        if not 1 <= k <= len(tokens):
            raise UsageError(f"num_centroids must be between 1 and the {len(tokens)} tokens, "
                             f"got {k}")
        kmeans = faiss.Kmeans(tokens.shape[1], k, niter=KMEANS_ITERATIONS, seed=seed,
                              max_points_per_centroid=KMEANS_POINTS_PER_CENTROID,
                              min_points_per_centroid=1,
                              spherical=True, verbose=False)
        kmeans.train(tokens)
        centroids = kmeans.centroids
        quantizer = None
        if residual_bits is not None:
            qtype = {4: faiss.ScalarQuantizer.QT_4bit, 8: faiss.ScalarQuantizer.QT_8bit}
            if residual_bits not in qtype:
                raise UsageError(f"residual_bits must be one of {RESIDUAL_BITS} or None, "
                                 f"got {residual_bits}")
            quantizer = faiss.IndexScalarQuantizer(tokens.shape[1], qtype[residual_bits])
            if residual_bits == 4:
                # 16 buckets between the 1% and 99% quantiles, not min/max: a few outlying
                # residuals would otherwise stretch every bucket (error ~3x larger)
                quantizer.sq.rangestat = faiss.ScalarQuantizer.RS_quantiles
                quantizer.sq.rangestat_arg = RANGE_QUANTILE
            sample = np.random.default_rng(seed).permutation(len(tokens))[
                :k * KMEANS_POINTS_PER_CENTROID]
            sampled = tokens[np.sort(sample)]
            quantizer.train(sampled - centroids[_nearest(centroids, sampled)])
        return cls(centroids, residual_bits, quantizer, trained_tokens=len(tokens))

    def add(self, vectors: Sequence[np.ndarray]) -> None:
        """Append documents (``vectors[i]``: the ``(n_i, D)`` token matrix of the next
        position): tokens go to their nearest existing centroid, residuals are compressed."""
        if not len(vectors):
            return
        tokens = np.ascontiguousarray(np.concatenate(list(vectors)), dtype=np.float32)
        lengths = np.array([len(v) for v in vectors], dtype=np.int64)
        codes = _nearest(self.centroids, tokens)
        residuals = tokens - self.centroids[codes]
        if self.quantizer is not None:
            packed = self.quantizer.sa_encode(np.ascontiguousarray(residuals))
        else:
            packed = tokens.astype(np.float16)
        self.codes = np.concatenate([self.codes, codes])
        self.residuals = np.concatenate([self.residuals, packed])
        self.offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)])
        self.deleted = np.concatenate([self.deleted, np.zeros(len(vectors), dtype=bool)])
        self._build_ivf()
        if self.rebuild_advised:
            logger.warning("%d tokens indexed, %d of them after the centroids were trained: "
                           "rebuild the index to refit the centroids", self.num_tokens,
                           self.num_tokens - self.trained_tokens)

    def delete(self, positions: Sequence[int]) -> None:
        """Mark documents as removed (their tokens stay stored until a rebuild)."""
        self.deleted[np.asarray(positions, dtype=np.int64)] = True

    def _build_ivf(self) -> None:
        """Centroid -> sorted unique documents owning a token assigned to it (CSR arrays)."""
        owners = np.repeat(np.arange(self.num_documents, dtype=np.int64), np.diff(self.offsets))
        pairs = np.unique(self.codes.astype(np.int64) * max(self.num_documents, 1) + owners)
        centroid = pairs // max(self.num_documents, 1)
        self._ivf_docs = pairs % max(self.num_documents, 1)
        counts = np.bincount(centroid, minlength=len(self.centroids))
        self._ivf_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    # ---- properties ------------------------------------------------------------------------
    @property
    def num_documents(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_tokens(self) -> int:
        return len(self.codes)

    @property
    def nbytes(self) -> int:
        """Bytes held by the index: centroids, centroid ids, residuals, offsets, inverted file."""
        return int(sum(a.nbytes for a in (self.centroids, self.codes, self.residuals,
                                          self.offsets, self._ivf_offsets, self._ivf_docs)))

    @property
    def rebuild_advised(self) -> bool:
        """True once more tokens were added after training than the centroids were fitted on."""
        return self.num_tokens > 2 * self.trained_tokens

    # ---- search ----------------------------------------------------------------------------
    def decompress(self, rows: np.ndarray) -> np.ndarray:
        """Reconstructed float32 vectors ``d~_j`` of token ``rows`` (the scalar quantizer's
        decoding, ``min + (code + 1/2) (max - min) / (2^bits - 1)`` per dimension, in numpy)."""
        packed = self.residuals[rows]
        if self.residual_bits is None:
            return packed.astype(np.float32)
        if self.residual_bits == 4:  # dimension 2i in the low nibble of byte i, 2i+1 high
            packed = np.stack([packed & 15, packed >> 4], axis=-1).reshape(len(rows), -1)
        return packed * self._scale + self._shift + self.centroids[self.codes[rows]]

    def search(self, query: np.ndarray, k: int, nprobe: int = 4, ncandidates: int = 1024
               ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best documents for ``query`` ``(m, D)``: positions and MaxSim scores (over
        reconstructed vectors), best first, ties by position (see the module docstring)."""
        query = np.ascontiguousarray(query, dtype=np.float32)
        by_centroid = self.centroids @ query.T  # (K, m): S transposed, rows gathered below
        docs = self._candidates(by_centroid.T, min(nprobe, len(self.centroids)), ncandidates)
        if not len(docs):
            return docs, np.zeros(0, dtype=np.float32)
        if len(docs) > max(k, ncandidates // 4):
            rows, local = token_ranges(self.offsets, docs)
            approx = segment_max_sum(by_centroid[self.codes[rows]], local)
            docs = docs[_top(approx, max(k, ncandidates // 4))]
        rows, local = token_ranges(self.offsets, docs)
        scores = segment_max_sum(self.decompress(rows) @ query.T, local)
        best = _top(scores, k)
        # _top breaks ties by position in ``docs``; order ties by document position instead
        best = best[np.lexsort((docs[best], -scores[best]))]
        return docs[best], scores[best]

    def _candidates(self, centroid_scores: np.ndarray, nprobe: int, ncandidates: int
                    ) -> np.ndarray:
        """Stage 1: live documents reached by the query tokens' ``nprobe`` best centroids, the
        ``ncandidates`` best by pruned centroid score, in ascending position order."""
        m = len(centroid_scores)
        probed = np.argpartition(-centroid_scores, nprobe - 1, axis=1)[:, :nprobe]  # (m, nprobe)
        starts = self._ivf_offsets[probed].ravel()
        lengths = self._ivf_offsets[probed + 1].ravel() - starts
        docs = self._ivf_docs[np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]),
                                        lengths) + np.arange(lengths.sum())]
        token = np.repeat(np.repeat(np.arange(m), nprobe), lengths)
        value = np.repeat(np.take_along_axis(centroid_scores, probed, axis=1).ravel(), lengths)
        live = ~self.deleted[docs]
        docs, token, value = docs[live], token[live], value[live]
        # max over each (query token, document) pair, then the sum over query tokens
        order = np.lexsort((-value, docs, token))
        key = token[order] * self.num_documents + docs[order]
        first = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else key.astype(bool)
        unique_docs, pruned = np.unique(docs[order][first], return_inverse=True)
        scores = np.bincount(pruned, weights=value[order][first],
                             minlength=len(unique_docs)).astype(np.float32)
        return np.sort(unique_docs[_top(scores, ncandidates)])

    # ---- persistence -----------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the index files into ``folder`` (an existing, normally temporary, folder)."""
        import faiss

        np.save(folder / "plaid_centroids.npy", self.centroids)
        np.save(folder / "plaid_codes.npy", self.codes)
        np.save(folder / "plaid_residuals.npy", self.residuals)
        np.save(folder / "plaid_offsets.npy", self.offsets)
        np.save(folder / "plaid_deleted.npy", self.deleted)
        np.save(folder / "plaid_trained_tokens.npy", np.array([self.trained_tokens]))
        if self.quantizer is not None:
            faiss.write_index(self.quantizer, str(folder / "plaid_residuals.faiss"))

    @classmethod
    def load(cls, folder: Path, residual_bits: int | None) -> PlaidIndex:
        """Read the files :meth:`save` wrote."""
        import faiss

        quantizer = None
        if residual_bits is not None:
            quantizer = faiss.read_index(str(folder / "plaid_residuals.faiss"))
        index = cls(np.load(folder / "plaid_centroids.npy"), residual_bits, quantizer,
                    int(np.load(folder / "plaid_trained_tokens.npy")[0]))
        index.codes = np.load(folder / "plaid_codes.npy")
        index.residuals = np.load(folder / "plaid_residuals.npy")
        index.offsets = np.load(folder / "plaid_offsets.npy")
        index.deleted = np.load(folder / "plaid_deleted.npy")
        index._build_ivf()
        return index


def _dequantization(quantizer: object | None, bits: int | None
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-dimension ``(scale, shift)`` with ``residual = code * scale + shift`` for a trained
    faiss scalar quantizer (its ``trained`` array holds each dimension's min, then range)."""
    if quantizer is None or bits is None:
        return None, None
    import faiss

    trained = faiss.vector_to_array(quantizer.sq.trained).astype(np.float32)
    low, width = np.split(trained, 2)
    step = width / (2 ** bits - 1)
    return step, low + step / 2


def _nearest(centroids: np.ndarray, tokens: np.ndarray, block: int = 65536) -> np.ndarray:
    """Index of the centroid with the largest inner product with each token (for unit
    centroids, the nearest one); blocks of ``block`` tokens bound the score matrix."""
    codes = np.empty(len(tokens), dtype=np.int32)
    for start in range(0, len(tokens), block):
        codes[start:start + block] = np.argmax(tokens[start:start + block] @ centroids.T, axis=1)
    return codes
