"""``ragsift gain-label``: GainRAG gain labels from a language model, as reranker training rows.

``ragsift gain-label --questions FILE.jsonl --generator SPEC --out FILE.jsonl [--alpha 0.5]
[--precision f32|native|bf16|f16|q8_0] [--threads N] [--base-url URL] [--api-key-env VAR]
[--tokenizer MODEL]``
(``--labels supporting``: the dataset's supporting flags instead, for the relevance baseline)

``--generator`` is a spec of :func:`ragsift.jobs.gain.load_gain_scorer`: a model name alone
(llama.cpp for a GGUF model such as the packaged ``smollm2-135m`` when ``llama-cpp-python`` is
installed, else transformers), ``transformers:NAME``, ``llama-cpp:NAME`` or ``openai:MODEL``
(the prompt log-probs of an OpenAI-compatible server; ``--alpha 0`` only).
"""

from __future__ import annotations

import argparse
from typing import Any

from ragsift.cli.synth import add_server_arguments
from ragsift.models.generation.gguf_convert import WEIGHTS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gain-label", help="GainRAG labels: how much each paragraph helps the generator",
        description="For every question of a QA jsonl (id, question, answer, paragraphs), score "
                    "each paragraph by the generator's contrastive perplexity of the gold "
                    "answer with and without it (label -log(PPL + 1)); write rows that "
                    "ragsift train reranker reads (docs + scores). Sharded and resumable.")
    parser.add_argument("--questions", required=True, metavar="FILE.jsonl")
    parser.add_argument("--labels", choices=["gain", "supporting"], default="gain",
                        help="gain: GainRAG labels from the generator; supporting: 1.0 for the "
                             "dataset's supporting paragraphs, 0.0 for the others (no model)")
    parser.add_argument("--generator", default="smollm2-135m", metavar="SPEC",
                        help="[transformers:|llama-cpp:]MODEL (folder, GGUF, packaged name, hub "
                             "id; a GGUF model runs on llama.cpp by default) or openai:MODEL "
                             "(default smollm2-135m)")
    add_server_arguments(parser)
    parser.add_argument("--alpha", type=float, default=0.5,
                        help="contrastive weight a (default 0.5; openai: needs 0)")
    parser.add_argument("--precision", choices=WEIGHTS,
                        default="f32",
                        help="llama-cpp only: f32 computes on the GGUF's weights dequantised "
                             "once (cached), as transformers does; native on the quantised "
                             "file; bf16 / f16 / q8_0 on a copy converted once (faster, "
                             "further from transformers; default f32)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="llama-cpp only: CPU threads (default: the CPU count; on cores "
                             "busy with other work 1 is often faster)")
    parser.add_argument("--tokenizer", default=None, metavar="MODEL",
                        help="openai only: a local model whose tokenizer and chat template "
                             "render the prompts (default: plain prompts)")
    parser.add_argument("--max-passage-tokens", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=8,
                        help="sequences per forward pass (transformers) or requests in flight "
                             "(openai)")
    parser.add_argument("--shard-size", type=int, default=16, help="questions per shard")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--out", required=True, metavar="FILE.jsonl")
    parser.set_defaults(func=run)


def scorer_options(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """The options of :func:`ragsift.jobs.gain.load_gain_scorer` for ``backend`` (each backend
    takes its own)."""
    options: dict[str, Any] = {"alpha": args.alpha, "max_passage_tokens": args.max_passage_tokens}
    if backend == "openai":
        options.update(batch_size=args.batch_size, tokenizer=args.tokenizer)
    elif backend == "llama-cpp":
        options.update(precision=args.precision, n_threads=args.threads)
    else:
        options.update(batch_size=args.batch_size)
    return options


def run(args: argparse.Namespace) -> int:
    from ragsift.data.qa import load_qa
    from ragsift.jobs.gain_label import gain_label, gain_labeller, supporting_labels

    examples = load_qa(args.questions)[:args.limit]
    if args.labels == "supporting":
        labeller = supporting_labels
    else:
        from ragsift.jobs.gain import load_gain_scorer, resolve_backend

        backend, name = resolve_backend(args.generator)
        labeller = gain_labeller(load_gain_scorer(
            f"{backend}:{name}", base_url=args.base_url, api_key_env=args.api_key_env,
            **scorer_options(backend, args)))
    gain_label(examples, labeller, args.out, shard_size=args.shard_size)
    return 0
