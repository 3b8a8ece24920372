"""``ragsift synth``: synthetic training queries for an unlabelled corpus, round-trip filtered.

CLI contract: ``ragsift synth --data DIR --generator SPEC [--base-url URL] [--api-key-env VAR]
[--llm-weights native] [--docs N] [--seed S] [--template TEXT] [--max-new-tokens 32]
[--batch-size 8] [--shard-size 64] [--retriever bm25] [--round-trip-k 3]
[--no-filter | --filter-only] --out FILE.jsonl [--beir DIR]``

``--generator`` is a spec of :func:`ragsift.models.generation.generator.load_generator`: a model
name alone (llama.cpp for a GGUF model such as the packaged ``smollm2-135m`` when
``llama-cpp-python`` is installed, else transformers), ``transformers:NAME``, ``llama-cpp:NAME`` or
``openai:MODEL`` (an OpenAI-compatible server at ``--base-url``, its key in the environment variable
``--api-key-env``). ``--llm-weights`` (llama.cpp only) runs a copy of the GGUF in another tensor
type, converted once and cached (:mod:`ragsift.models.generation.gguf_convert`).

The generated rows go to ``FILE.raw.jsonl`` beside ``--out`` (to ``--out`` itself with
``--no-filter``); the rows that pass the round-trip filter go to ``--out``. ``--filter-only``
filters an existing ``FILE.raw.jsonl`` again (e.g. with another ``--retriever`` or
``--round-trip-k``) without generating. ``--beir DIR`` also writes the kept queries as a BEIR
folder (split ``--beir-split``, default train), which ``ragsift label`` and ``ragsift mine``
read: the way to teacher labels for an unlabelled corpus (GPL).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ragsift.cli.options import add_retriever_arguments, retriever_from_args
from ragsift.errors import RagsiftError, UsageError
from ragsift.models.generation.gguf_convert import WEIGHTS

LLM_WEIGHTS_HELP = (
    "llama.cpp only: run the GGUF converted once (cached) to this tensor type; native is the "
    "file as it is (the packaged smollm2-135m is Q4_1). SmolLM2-135M, 337-token prompt + 32 new "
    "tokens, 2 threads on an AVX512_BF16 CPU, seconds: native Q4_1 1.33, q8_0 0.86, f16 0.91, "
    "bf16 0.75, f32 1.08. bf16 is fast only on CPUs with AVX512_BF16 or AMX; elsewhere use "
    "q8_0 (default native)")


def raw_path(out: str | Path) -> Path:
    """The file holding the unfiltered rows of a run writing ``out``:
    ``synth.jsonl`` -> ``synth.raw.jsonl``."""
    out = Path(out)
    return out.with_name(f"{out.stem if out.suffix else out.name}.raw{out.suffix or '.jsonl'}")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """``--base-url`` and ``--api-key-env``: where an ``openai:MODEL`` spec's server is."""
    parser.add_argument("--base-url", default="", metavar="URL",
                        help="openai:MODEL only: the OpenAI-compatible API root, e.g. "
                             "http://127.0.0.1:8000/v1 (default: api.openai.com)")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR",
                        help="openai:MODEL only: the environment variable holding the API key "
                             "(default OPENAI_API_KEY; a local server needs none)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth", help="generate synthetic queries for a corpus (training jsonl)",
        description="Ask a language model (llama.cpp, transformers or an OpenAI-compatible "
                    "server) for one search query per document (greedy), write "
                    "training rows (the document is the positive; no negatives), then keep only "
                    "the queries whose own document a retriever ranks in the top k (round-trip "
                    "filter). Sharded and resumable: rerun the same command after a kill. "
                    "Train on the output with: ragsift train embedding --data OUT --set "
                    "negatives=0 (in-batch negatives).")
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="BEIR folder or corpus.jsonl (only the corpus is read)")
    parser.add_argument("--generator", default=None, metavar="SPEC",
                        help="[transformers:|llama-cpp:]MODEL (folder, GGUF, packaged name "
                             "such as smollm2-135m, hub id; a GGUF model runs on llama.cpp by "
                             "default) or openai:MODEL (required unless --filter-only)")
    add_server_arguments(parser)
    parser.add_argument("--llm-weights", choices=WEIGHTS, default="native",
                        help=LLM_WEIGHTS_HELP)
    parser.add_argument("--docs", type=int, default=None, metavar="N",
                        help="a seeded random sample of N documents (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--template", default=None, metavar="TEXT",
                        help="prompt with {passage} and optionally {title} (default: ask for "
                             "one search question the passage answers)")
    parser.add_argument("--max-new-tokens", type=int, default=32,
                        help="most tokens generated per query (default 32)")
    parser.add_argument("--max-passage-tokens", type=int, default=256,
                        help="the passage is cut to this many tokens in the prompt (default 256)")
    parser.add_argument("--shard-size", type=int, default=64,
                        help="documents per shard; finished shards survive a kill (default 64)")
    parser.add_argument("--round-trip-k", type=int, default=3, metavar="K",
                        help="keep a query when its document is in the retriever's top K "
                             "(default 3)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-filter", action="store_true",
                      help="write the generated rows to --out, unfiltered")
    mode.add_argument("--filter-only", action="store_true",
                      help="do not generate; filter the existing OUT.raw.jsonl again")
    parser.add_argument("--out", required=True, metavar="FILE.jsonl")
    parser.add_argument("--beir", default=None, metavar="DIR",
                        help="also write the kept queries as a BEIR folder (the corpus, the "
                             "queries, qrels judging each query's source document relevant), "
                             "for ragsift search / label / mine")
    parser.add_argument("--beir-split", default="train", metavar="SPLIT",
                        help="the qrels split of --beir (default train)")
    add_retriever_arguments(parser, required=False)
    for action in parser._actions:
        if action.dest == "batch_size":  # one batch size for the generator and the encoder
            action.help = "texts per batch, for the generator and a dense encoder (default 8)"
    parser.set_defaults(func=run, retriever="bm25", batch_size=8)


def run(args: argparse.Namespace) -> int:
    from ragsift.data.beir import load_corpus
    from ragsift.jobs.synthesize import (
        DEFAULT_TEMPLATE,
        check_template,
        choose_documents,
        round_trip_filter,
        synthesize_queries,
        synthetic_beir,
    )

    out = Path(args.out)
    raw = out if args.no_filter else raw_path(out)
    if not args.filter_only and not args.generator:
        raise UsageError("--generator is required (unless --filter-only)")
    for name in ("max_new_tokens", "max_passage_tokens", "batch_size", "shard_size",
                 "round_trip_k"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at "
                             f"least 1")
    template = DEFAULT_TEMPLATE if args.template is None else args.template
    check_template(template)  # before loading anything
    corpus = load_corpus(args.data)
    if args.filter_only:
        if not raw.is_file():
            raise RagsiftError(f"{raw}: no generated rows to filter; run without --filter-only "
                               f"first")
    else:
        from ragsift.models.generation.generator import load_generator

        ids = choose_documents(corpus, args.docs, args.seed)
        generator = load_generator(
            args.generator, base_url=args.base_url, api_key_env=args.api_key_env,
            max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
            max_passage_tokens=args.max_passage_tokens, weights=args.llm_weights)
        synthesize_queries(corpus, generator, raw, ids, template, args.shard_size)
    if not args.no_filter:
        round_trip_filter(raw, corpus, retriever_from_args(args), out, k=args.round_trip_k)
    if args.beir:
        synthetic_beir(out, corpus, args.beir, args.beir_split)
    return 0
