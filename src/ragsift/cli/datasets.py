"""``ragsift datasets``: download BEIR datasets, list them, validate a BEIR folder, write the
built-in docstring task (the demo's) as a BEIR folder.

CLI contract::

    ragsift datasets download NAME [--out DIR] [--base-url URL] [--md5 HEX] [--overwrite]
    ragsift datasets list
    ragsift datasets validate DIR [--split test]
    ragsift datasets docstrings --out DIR [--queries 300] [--documents 1000] [--seed 13]

Example:
    $ ragsift datasets download scifact --out datasets
    datasets/scifact
    $ ragsift datasets validate datasets/scifact
    datasets/scifact: ok: 5183 documents, 300 test queries, 339 judgements
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ragsift.data.beir import load_beir
from ragsift.data.download import BEIR_MD5, URL_ENV, download_beir, list_datasets
from ragsift.errors import RagsiftError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``datasets`` and its actions (download, list, validate) to ``subparsers``."""
    parser = subparsers.add_parser(
        "datasets", help="download, list and validate BEIR datasets",
        description="Download BEIR datasets (checksummed, unpacked atomically), list the "
                    "downloadable ones, and validate a BEIR folder.",
    )
    actions = parser.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)

    download = actions.add_parser(
        "download", help="download a BEIR dataset (md5-checked, unpacked atomically)",
        description="Download NAME.zip from BEIR's server (or --base-url, or $" + URL_ENV + "), "
                    "check its md5 against BEIR's published one (or --md5) and unpack it into "
                    "OUT/NAME. A folder already there is reused unless --overwrite. Prints the "
                    "dataset folder.",
    )
    download.add_argument("name", metavar="NAME",
                          help="dataset name (see: ragsift datasets list), or any name a "
                               "--base-url mirror holds")
    download.add_argument("--out", default="datasets", metavar="DIR",
                          help="parent folder of the dataset folder (default: ./datasets)")
    download.add_argument("--base-url", metavar="URL", default=None,
                          help=f"mirror folder URL holding NAME.zip (default: ${URL_ENV}, else "
                               "BEIR's server)")
    download.add_argument("--md5", metavar="HEX", default=None,
                          help="expected md5 of NAME.zip (default: BEIR's published checksum)")
    download.add_argument("--overwrite", action="store_true",
                          help="download again even if OUT/NAME exists")
    download.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    download.set_defaults(func=_download)

    listing = actions.add_parser(
        "list", help="list the downloadable BEIR datasets and their md5",
        description="Print each downloadable BEIR dataset name with its published md5.",
    )
    listing.set_defaults(func=_list)

    validate = actions.add_parser(
        "validate", help="check a BEIR folder and print its counts (or the first error)",
        description="Load DIR with every check (JSON, fields, duplicate ids, qrels ids present "
                    "in the corpus and queries) and print the number of documents, queries "
                    "judged in the split, and judgements; exit 1 with the error otherwise.",
    )
    validate.add_argument("folder", metavar="DIR", help="BEIR dataset folder")
    validate.add_argument("--split", default="test",
                          help="qrels split, qrels/SPLIT.tsv (default: test)")
    validate.set_defaults(func=_validate)

    docstrings = actions.add_parser(
        "docstrings", help="write the demo's docstring task as a BEIR folder",
        description="Build the retrieval task of `ragsift demo` from this Python's standard "
                    "library (summary line = query, the rest of the docstring = its one "
                    "relevant document) and write it as a BEIR folder with test qrels, so "
                    "search, rerank and evaluate run on it. Prints the folder.",
    )
    docstrings.add_argument("--out", required=True, metavar="DIR", help="BEIR folder to write")
    docstrings.add_argument("--queries", type=int, default=300, help="queries (default: 300)")
    docstrings.add_argument("--documents", type=int, default=1000,
                            help="documents (default: 1000)")
    docstrings.add_argument("--seed", type=int, default=13, help="sampling seed (default: 13)")
    docstrings.set_defaults(func=_docstrings)


def _download(args: argparse.Namespace) -> int:
    folder = download_beir(args.name, args.out, base_url=args.base_url, md5=args.md5,
                           overwrite=args.overwrite,
                           show_progress=not getattr(args, "no_progress", False))
    print(folder)
    return 0


def _list(args: argparse.Namespace) -> int:
    for name in list_datasets():
        print(f"{name}\tmd5 {BEIR_MD5[name] or 'unknown'}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    try:
        data = load_beir(folder, args.split)
    except (RagsiftError, OSError) as exc:
        print(f"{folder}: invalid: {exc}")
        return 1
    judgements = sum(len(docs) for docs in data.qrels.values())
    print(f"{folder}: ok: {len(data.corpus)} documents, {len(data.queries)} {args.split} "
          f"queries, {judgements} judgements")
    return 0


def _docstrings(args: argparse.Namespace) -> int:
    from ragsift.data.beir_write import write_beir
    from ragsift.data.docstring_task import build_docstring_task

    print(write_beir(build_docstring_task(args.queries, args.documents, seed=args.seed),
                     args.out))
    return 0
