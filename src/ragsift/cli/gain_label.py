"""``ragsift gain-label``: GainRAG gain labels from a local LM, as reranker training rows.

``ragsift gain-label --questions FILE.jsonl --generator MODEL --out FILE.jsonl [--alpha 0.5]``
(``--labels supporting``: the dataset's supporting flags instead, for the relevance baseline)
"""

from __future__ import annotations

import argparse


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
    parser.add_argument("--generator", default="smollm2-135m",
                        help="causal LM: folder, GGUF folder, packaged name or hub id")
    parser.add_argument("--alpha", type=float, default=0.5, help="contrastive weight a")
    parser.add_argument("--max-passage-tokens", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--shard-size", type=int, default=16, help="questions per shard")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--out", required=True, metavar="FILE.jsonl")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragsift.data.qa import load_qa
    from ragsift.rag.gain import GainScorer
    from ragsift.rag.gain_job import gain_label, gain_labeller, supporting_labels

    examples = load_qa(args.questions)[:args.limit]
    if args.labels == "supporting":
        labeller = supporting_labels
    else:
        labeller = gain_labeller(GainScorer.from_pretrained(
            args.generator, alpha=args.alpha, max_passage_tokens=args.max_passage_tokens,
            batch_size=args.batch_size))
    gain_label(examples, labeller, args.out, shard_size=args.shard_size)
    return 0
