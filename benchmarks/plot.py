"""Plot the speed benchmarks: throughput of each system relative to sentence-transformers.

Reads the JSON written by ``benchmarks.rerank --out`` and ``benchmarks.bench_encode --out`` and
writes a PNG with one panel per benchmark (needs matplotlib).

Usage:
    python -m benchmarks.plot --rerank docs/results/rerank.json \\
        --encode docs/results/encode.json --out docs/speed.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PEER = "sentence-transformers"


def speedups(results: list[dict], rate_key: str, peer: str) -> dict[str, dict[str, float]]:
    """``{dataset: {system: rate / peer rate}}``."""
    table = {}
    for r in results:
        systems = r["systems"]
        base = systems[peer][rate_key]
        table[r["dataset"]] = {name: s[rate_key] / base for name, s in systems.items()}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rerank", type=Path, required=True)
    parser.add_argument("--encode", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("cross-encoder reranking (pairs/s)", speedups(
            json.loads(args.rerank.read_text())["results"], "pairs_per_s",
            "sentence-transformers")),
        ("bi-encoder encoding (docs/s)", speedups(
            json.loads(args.encode.read_text())["results"], "docs_per_s",
            "sentence-transformers")),
    ]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for axis, (title, table) in zip(axes, panels):
        systems = sorted(next(iter(table.values())), key=lambda n: (n != PEER, n))
        width = 0.8 / len(table)
        for i, (dataset, values) in enumerate(sorted(table.items())):
            xs = [j + i * width for j in range(len(systems))]
            axis.bar(xs, [values[s] for s in systems], width, label=dataset)
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_xticks([j + width * (len(table) - 1) / 2 for j in range(len(systems))])
        axis.set_xticklabels([s.replace("ragsift ", "") for s in systems], rotation=30,
                             ha="right")
        axis.set_ylabel("speed vs sentence-transformers (x)")
        axis.set_title(title)
        axis.legend()
    figure.suptitle("MiniLM-L6 on 2 CPU cores (AMD EPYC, AVX-512 VNNI/BF16)")
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
