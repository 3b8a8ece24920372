"""Retrieval pipelines as configs: a first stage (one retriever or a fusion of several), an
optional reranker over its top n, and an optional fusion of the reranker's scores with the
first stage's.

:mod:`ragsift.pipeline.config` holds :class:`~ragsift.pipeline.config.PipelineConfig` and
:func:`~ragsift.pipeline.config.load_pipeline` (no model code imported);
:mod:`ragsift.pipeline.runner` runs one
(:class:`~ragsift.pipeline.runner.RetrievalPipeline`,
:func:`~ragsift.pipeline.runner.rerank_and_fuse`).
"""
