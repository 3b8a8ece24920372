"""``ragsift collection``: create, feed, delete from, search and describe a collection.

CLI contract:
``ragsift collection create DIR [--retriever bm25|dense|hybrid] [--embedder MODEL]
[--store faiss|milvus:URI|qdrant:URI] [--chunk-tokens N] [--chunk-overlap N]``,
``ragsift collection add DIR PATH...``, ``ragsift collection delete DIR ID... [--ids-file F]``,
``ragsift collection search DIR QUERY [--k 10] [--filter EXPR]... [--rerank MODEL] [--json]``
(``--json`` prints ``{"results": [{"id", "score", ...}]}``), ``ragsift collection info DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ragsift.cli.argtypes import positive_int
from ragsift.collection.config import DEFAULT_EMBEDDER, RETRIEVERS
from ragsift.errors import DataFormatError, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "collection", help="your own documents: create, add, delete, search, info",
        description="A collection is a folder of documents kept indexed (BM25, dense or "
                    "hybrid) as you add, replace and delete them, with metadata filters. "
                    "See docs/collections.md.")
    commands = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = commands.add_parser("create", help="create an empty collection")
    create.add_argument("dir", metavar="DIR")
    create.add_argument("--retriever", choices=RETRIEVERS, default="hybrid",
                        help="bm25, dense or hybrid (both, fused; default)")
    create.add_argument("--embedder", metavar="MODEL", default=DEFAULT_EMBEDDER,
                        help=f"bi-encoder for dense/hybrid (default: {DEFAULT_EMBEDDER})")
    create.add_argument("--store", default="faiss", metavar="faiss|milvus:URI|qdrant:URI",
                        help="vector store (default faiss, in process; milvus:vectors.db runs "
                             "Milvus Lite inside DIR)")
    create.add_argument("--chunk-tokens", type=positive_int, default=None, metavar="N",
                        help="most tokens per chunk (default: the embedder's length, or 256)")
    create.add_argument("--chunk-overlap", type=int, default=32, metavar="N",
                        help="tokens shared by consecutive chunks (default 32)")
    create.add_argument("--bm25-method", choices=("lucene", "robertson", "atire"),
                        default="lucene")
    create.add_argument("--fusion", choices=("rrf", "convex"), default="rrf")
    create.set_defaults(func=run_create)

    add = commands.add_parser("add", help="add or replace documents (jsonl, BEIR folder or a "
                                          "folder of .txt/.md files)")
    add.add_argument("dir", metavar="DIR")
    add.add_argument("paths", nargs="+", metavar="PATH")
    add.add_argument("--commit-every", type=positive_int, default=10_000, metavar="N",
                     help="documents per atomic commit (default 10000)")
    add.set_defaults(func=run_add)

    delete = commands.add_parser("delete", help="delete documents by id")
    delete.add_argument("dir", metavar="DIR")
    delete.add_argument("ids", nargs="*", metavar="ID")
    delete.add_argument("--ids-file", metavar="F", help="a file with one id per line")
    delete.set_defaults(func=run_delete)

    search = commands.add_parser("search", help="search the collection")
    search.add_argument("dir", metavar="DIR")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--k", type=positive_int, default=10)
    search.add_argument("--filter", action="append", default=[], metavar="EXPR",
                        help="FIELD=VALUE, FIELD>=N (also >, <, <=) or 'FIELD in [A, B]'; "
                             "repeat for AND")
    search.add_argument("--unit", choices=("document", "chunk"), default="document")
    search.add_argument("--retriever", choices=RETRIEVERS, default=None,
                        help="one side of a hybrid collection")
    search.add_argument("--rerank", metavar="MODEL", default=None,
                        help="rerank the top --k-retrieve hits with this reranker (it "
                             "reads each hit's title and text)")
    search.add_argument("--k-retrieve", type=positive_int, default=50,
                        help="hits the reranker sees (default 50)")
    search.add_argument("--json", action="store_true", help='print {"results": [...]}')
    search.set_defaults(func=run_search)

    info = commands.add_parser("info", help="sizes and settings")
    info.add_argument("dir", metavar="DIR")
    info.set_defaults(func=run_info)


def run_create(args: argparse.Namespace) -> int:
    from ragsift.collection import Collection

    col = Collection.create(args.dir, retriever=args.retriever, embedder=args.embedder,
                            store=args.store, chunk_tokens=args.chunk_tokens,
                            chunk_overlap=args.chunk_overlap, fusion=args.fusion,
                            bm25={"method": args.bm25_method})
    config = col.config
    print(f"created {config.retriever} collection {args.dir} (chunks of {config.chunk_tokens} "
          f"tokens, store {config.store})")
    col.close()
    return 0


def run_add(args: argparse.Namespace) -> int:
    from ragsift.collection import Collection, load_sources

    docs = load_sources(args.paths)
    with Collection.open(args.dir, show_progress=True) as col:
        result = col.add(docs, commit_every=args.commit_every)
    print(f"{result.added} added, {result.replaced} replaced, {result.unchanged} unchanged; "
          f"{result.chunks} chunks; generation {result.generation}")
    return 0


def _read_ids(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, None, None, f"not UTF-8 text (byte {exc.start})") from None
    return [line.strip() for line in lines if line.strip()]


def run_delete(args: argparse.Namespace) -> int:
    from ragsift.collection import Collection

    ids = list(args.ids) + (_read_ids(args.ids_file) if args.ids_file else [])
    if not ids:
        raise UsageError("give ids or --ids-file")
    with Collection.open(args.dir) as col:
        deleted = col.delete(ids)
        generation = col.generation
    print(f"{deleted} deleted, {len(set(ids)) - deleted} not found; generation {generation}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    from ragsift.collection import Collection, Filter

    parsed = Filter.parse(args.filter)
    with Collection.open(args.dir) as col:
        if args.rerank:
            from ragsift.rerank import Reranker

            reranker = Reranker.load(args.rerank)
            hits = col.retrieve_and_rerank(args.query, reranker, k_retrieve=args.k_retrieve,
                                           k_rerank=args.k, filter=parsed, unit=args.unit,
                                           retriever=args.retriever)
        else:
            hits = col.search(args.query, k=args.k, filter=parsed, unit=args.unit,
                              retriever=args.retriever)
    if args.json:
        json.dump({"results": [h.to_dict() for h in hits]}, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.text.split())[:100]
        print(f"{rank:>3}  {hit.score:9.4f}  {hit.id}  {snippet}")
    if not hits:
        print("no results")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ragsift.collection import Collection

    with Collection.open(args.dir) as col:
        print(json.dumps(col.info(), indent=2))
    return 0
