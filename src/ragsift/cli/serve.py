"""``ragsift serve``: an HTTP server for reranking, embeddings and search (see docs/serving.md).

CLI contract: ``ragsift serve [--config serve.yaml] [--reranker MODEL]
[--reranker-family cross-encoder|llm|colbert] [--allow-untrained-head] [--embedder MODEL]
[--index DIR] [--collection DIR [--pipeline YAML]] [--host 127.0.0.1] [--port 8080]``
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ragsift.errors import MissingExtraError, UsageError
from ragsift.serve.config import ALLOW_UNTRAINED_HEAD, ServeConfig

logger = logging.getLogger(__name__)

RERANKER_FAMILIES = ("colbert", "cross-encoder", "llm")  # ragsift.rerank's registered families
GRACEFUL_SHUTDOWN_S = 30  # after SIGTERM, requests still running get this long to finish


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve rerankers, embedders and an index over HTTP",
        description="Load the models and index of a config file (and of the flags, which add "
                    "to it) and serve them with Cohere-compatible /v2/rerank, TEI-compatible "
                    "/rerank, OpenAI-compatible /v1/embeddings, /search, /health and /metrics. "
                    "Set api_key in the config or $RAGSIFT_API_KEY to require a Bearer key.",
    )
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="serve.yaml: rerankers, embedders, index, limits, api_key")
    parser.add_argument("--reranker", metavar="MODEL", default=None,
                        help="also serve this reranker (folder, packaged name or hub id), "
                             "named by its folder name")
    parser.add_argument("--reranker-family", choices=RERANKER_FAMILIES, default=None,
                        help="the --reranker's family, when its config.json does not tell "
                             "(e.g. a bi-encoder checkpoint)")
    parser.add_argument("--allow-untrained-head", action="store_true",
                        help="serve the --reranker even if it is a cross-encoder whose "
                             "checkpoint lacks the scoring head (random scores)")
    parser.add_argument("--embedder", metavar="MODEL", default=None,
                        help="also serve this embedder, named by its folder name")
    parser.add_argument("--index", metavar="DIR", default=None,
                        help="the saved index /search queries (replaces the config's path)")
    parser.add_argument("--collection", metavar="DIR", default=None,
                        help="serve this collection: /search with filters, POST and DELETE "
                             "/documents (see docs/collections.md)")
    parser.add_argument("--pipeline", metavar="YAML", default=None,
                        help="with --collection: /search reranks and fuses the collection's "
                             "hits as this pipeline config says (docs/usage.md, Pipelines)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: the default handler then
    # ends the process by the signal, as a service manager expects of a clean stop
    parser.set_defaults(func=run, own_sigterm=True)


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The config file (if any) completed by the flags; an error if it serves nothing."""
    config = ServeConfig.from_yaml(args.config) if args.config else ServeConfig()
    config = config.with_flags(args.reranker, args.embedder, args.index,
                               reranker_options(args), collection=args.collection,
                               pipeline=args.pipeline)
    if not (config.rerankers or config.embedders or config.index or config.collection):
        raise UsageError("nothing to serve; give --config, --reranker, "
                         "--embedder, --index or --collection")
    return config


def reranker_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--reranker``'s options from ``--reranker-family`` and ``--allow-untrained-head``
    (an error without ``--reranker``)."""
    options: dict[str, Any] = {}
    if args.reranker_family:
        options["family"] = args.reranker_family
    if args.allow_untrained_head:
        options[ALLOW_UNTRAINED_HEAD] = True
    if options and not args.reranker:
        raise UsageError("--reranker-family and --allow-untrained-head "
                         "apply to --reranker, which is missing (in a config file, set "
                         "options: {family: ..., allow_untrained_head: true} of a reranker)")
    return options


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ragsift.serve.app import create_app
    except ImportError as exc:
        raise MissingExtraError(exc.name or "fastapi", "serve") from None
    app = create_app(config_from_args(args))
    logger.info("serving on http://%s:%d", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    return 0
