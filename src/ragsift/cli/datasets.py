"""``ragsift datasets``: download BEIR datasets, list them, validate a BEIR folder."""

from __future__ import annotations

import argparse

from ragsift.data.beir import load_beir
from ragsift.data.download import BEIR_MD5, download_beir, list_datasets


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("datasets", help="download, list and validate BEIR datasets",
                                   description="Download, list and validate BEIR datasets.")
    commands = parser.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)

    download = commands.add_parser(
        "download", help="download a BEIR dataset (checksummed, unpacked atomically)",
        description="Download NAME.zip from BEIR's server (or --base-url), check its md5 and "
                    "unpack it into OUT/NAME.",
    )
    download.add_argument("name", metavar="NAME", help="dataset name (see: ragsift datasets list)")
    download.add_argument("--out", default="datasets", help="parent folder (default: datasets)")
    download.add_argument("--base-url", help="a mirror folder URL holding NAME.zip")
    download.add_argument("--md5", help="expected md5 (default: BEIR's published checksum)")
    download.add_argument("--overwrite", action="store_true", help="download even if present")
    download.set_defaults(func=_download)

    listing = commands.add_parser("list", help="list downloadable BEIR datasets")
    listing.set_defaults(func=_list)

    validate = commands.add_parser(
        "validate", help="check a BEIR folder; report counts or the first error",
        description="Load DIR with every check (JSON, fields, duplicate ids, qrels ids in the "
                    "corpus and queries) and print its counts.",
    )
    validate.add_argument("folder", metavar="DIR", help="BEIR dataset folder")
    validate.add_argument("--split", default="test", help="qrels split (default: test)")
    validate.set_defaults(func=_validate)


def _download(args: argparse.Namespace) -> int:
    folder = download_beir(args.name, args.out, base_url=args.base_url, md5=args.md5,
                           overwrite=args.overwrite)
    print(folder)
    return 0


def _list(args: argparse.Namespace) -> int:
    for name in list_datasets():
        print(f"{name}\tmd5 {BEIR_MD5[name]}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    data = load_beir(args.folder, args.split)
    judgements = sum(len(docs) for docs in data.qrels.values())
    print(f"{args.folder}: ok: {len(data.corpus)} documents, {len(data.queries)} {args.split} "
          f"queries, {judgements} judgements")
    return 0
