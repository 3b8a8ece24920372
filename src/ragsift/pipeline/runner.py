"""Running a :class:`~ragsift.pipeline.config.PipelineConfig`: first stage, reranker, fusion.

For each query, with ``n`` = ``rerank_top_n`` when there is a reranker (else ``k``) and ``w`` =
``final_weight``:

1. first stage: one spec searches alone; several form a
   :class:`~ragsift.retrieve.hybrid.HybridRetriever` whose members each return
   ``max(depth, n)`` documents, fused by RRF, ``s(d) = sum_i w_i / (rrf_k + rank_i(d))``, or
   convex, ``s(d) = sum_i w_i * norm_i(s_i(d))`` (:mod:`ragsift.retrieve.fusion`; ``w_i`` =
   ``first_stage_weights``, default 1). The ``n`` best documents are kept: run ``F``.
2. reranking (optional): the reranker re-scores those ``n`` documents (passages longer than
   it takes are scored in windows, ``rerank_long_doc``): run ``R``.
3. final fusion of ``R`` with ``F`` (both over the same ``n`` documents): ``none`` keeps
   ``R``; ``rrf``: ``s(d) = w / (rrf_k + rank_R(d)) + (1 - w) / (rrf_k + rank_F(d))``;
   ``convex``: ``s(d) = w * norm(R(d)) + (1 - w) * norm(F(d))`` with ``norm`` the per-query
   ``normalization`` (minmax: ``(x - min) / (max - min)`` over the query's ``n`` documents).

The output run holds the ``k`` best documents of the last stage, then, when ``hop_model`` is
set, 4. the second hop re-orders its ranks 2 .. ``hop_depth`` for multi-hop questions
(:mod:`ragsift.pipeline.second_hop`).
"""

from __future__ import annotations

from ragsift.pipeline.config import PipelineConfig
from ragsift.pipeline.second_hop import second_hop
from ragsift.rerank import Reranker
from ragsift.retrieve.base import Retriever
from ragsift.retrieve.fusion import convex, rrf
from ragsift.retrieve.spec import KINDS, build_retriever
from ragsift.types import Corpus, Queries, Run, top_k


def build_first_stage(config: PipelineConfig, show_progress: bool = False) -> Retriever:
    """The un-indexed first-stage retriever of ``config`` (step 1 of the module docstring)."""
    options = {f"{name}_options": {"show_progress": show_progress} for name in KINDS}
    return build_retriever(config.first_stage_spec, fusion=config.first_stage_fusion,
                           normalization=config.normalization,
                           weights=config.first_stage_weights, depth=config.depth,
                           rrf_k=config.rrf_k, **options)


def _load(model: str | None, max_length: int | None, config: PipelineConfig) -> Reranker | None:
    if model is None:
        return None
    sizes = {"max_length": max_length} if max_length else {}
    return Reranker.load(model, long_doc=config.rerank_long_doc,
                         batch_size=config.rerank_batch_size, backend=config.rerank_backend,
                         **sizes)


def load_reranker(config: PipelineConfig) -> Reranker | None:
    """The reranker ``config`` names, loaded with its batch size, backend, length and
    long-document settings, or None when it names none."""
    return _load(config.rerank_model, config.rerank_max_length, config)


def load_hop_reranker(config: PipelineConfig) -> Reranker | None:
    """The second-hop reranker ``config`` names (``hop_model``, ``hop_max_length``; batch
    size, backend and long documents as the reranker's), or None when it names none."""
    return _load(config.hop_model, config.hop_max_length, config)


def rerank_and_fuse(config: PipelineConfig, reranker: Reranker | None, queries: Queries,
                    corpus: Corpus, first: Run, show_progress: bool = False,
                    hop_reranker: Reranker | None = None) -> Run:
    """Steps 2 to 4 of the module docstring over a first-stage run ``first`` (any scores).

    Args:
        reranker: :func:`load_reranker`'s model (None: ``first`` is only cut to ``k``).
        queries, corpus: the texts of the run's queries and documents.
        hop_reranker: :func:`load_hop_reranker`'s model (None: no step 4).

    Returns:
        the ``k`` best documents per query of the reranked (and fused) run.
    """
    if reranker is None:
        final = top_k(first, config.k)
    else:
        candidates = top_k(first, config.rerank_top_n)
        reranked = reranker.rerank(queries, corpus, candidates, k=config.rerank_top_n,
                                   show_progress=show_progress)
        final = top_k(fuse_final(config, reranked, candidates), config.k)
    if hop_reranker is None:
        return final
    return second_hop(final, queries, corpus, hop_reranker, depth=config.hop_depth,
                      weight=config.hop_weight, rrf_k=config.hop_rrf_k,
                      words=config.hop_context_words)


def fuse_final(config: PipelineConfig, reranked: Run, first: Run) -> Run:
    """``reranked`` fused with ``first`` restricted to the reranked documents (step 3).

    Example:
        >>> config = PipelineConfig(rerank_model="m", rerank_top_n=2, k=2,
        ...                         final_fusion="convex", final_weight=0.75)
        >>> fuse_final(config, {"q": {"a": 2.0, "b": 0.0}}, {"q": {"a": 1.0, "b": 3.0}})
        {'q': {'a': 0.75, 'b': 0.25}}
    """
    if config.final_fusion == "none":
        return reranked
    same = {qid: {d: first[qid][d] for d in docs} for qid, docs in reranked.items()}
    weights = [config.final_weight, 1.0 - config.final_weight]
    if config.final_fusion == "rrf":
        return rrf([reranked, same], k=config.rrf_k, weights=weights)
    return convex([reranked, same], weights=weights, normalization=config.normalization)


class RetrievalPipeline:
    """A pipeline config made runnable: :meth:`index` a corpus, then :meth:`search` it.

    Args:
        config: the stages (:class:`PipelineConfig`).
        reranker: the reranker to use (default: :func:`load_reranker` of ``config``).
        hop_reranker: the second-hop model (default: :func:`load_hop_reranker` of ``config``).
        show_progress: progress bars while indexing and reranking.
    """

    def __init__(self, config: PipelineConfig, reranker: Reranker | None = None,
                 show_progress: bool = False, hop_reranker: Reranker | None = None) -> None:
        self.config = config
        self.retriever = build_first_stage(config, show_progress)
        self.reranker = reranker if reranker is not None else load_reranker(config)
        self.hop_reranker = (hop_reranker if hop_reranker is not None
                             else load_hop_reranker(config))
        self.show_progress = show_progress
        self.corpus: Corpus = {}

    def index(self, corpus: Corpus) -> None:
        """Index ``corpus`` with the first stage (and keep its texts for the reranker)."""
        self.retriever.index(corpus)
        self.corpus = corpus

    def first_stage(self, queries: Queries) -> Run:
        """The first stage's ``n`` best documents per query (run ``F``)."""
        return self.retriever.search(queries, k=self.config.candidates)

    def search(self, queries: Queries) -> Run:
        """The pipeline's run: the ``k`` best documents per query after every stage."""
        return rerank_and_fuse(self.config, self.reranker, queries, self.corpus,
                               self.first_stage(queries), self.show_progress,
                               self.hop_reranker)
