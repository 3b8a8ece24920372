"""``ragsift serve``: reranking, embeddings and search over HTTP (extra ``[serve]``).

:func:`~ragsift.serve.app.create_app` builds the FastAPI app from a
:class:`~ragsift.serve.config.ServeConfig`; see ``docs/serving.md``.
"""

from ragsift.serve.config import IndexConfig, Limits, ModelConfig, ServeConfig

__all__ = ["IndexConfig", "Limits", "ModelConfig", "ServeConfig"]
