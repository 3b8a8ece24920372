"""SPLADE document encoding speed per backend, measured side by side in one run.

The same documents (the first ``--docs`` of each dataset's corpus) are encoded with each
backend after a warm-up batch; reported: documents per second, the speed-up over ``torch``,
the largest absolute difference of a term weight from ``torch`` and the number of non-zero
weights.

Usage:
    python -m benchmarks.splade_encode [--data DIR] [--model splade-tiny] [--docs 128] \
        [--backends torch,onnx,onnx-int8] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.common import add_dataset_arguments, datasets, report
from ragsift.models.splade import SpladeEncoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_arguments(parser)
    parser.add_argument("--model", default="splade-tiny")
    parser.add_argument("--docs", type=int, default=128, help="documents encoded per backend")
    parser.add_argument("--backends", default="torch,onnx,onnx-int8")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    for name, data in datasets(args):
        texts = [d.full_text() for d in list(data.corpus.values())[:args.docs]]
        reference = None
        base_speed = None
        for backend in args.backends.split(","):
            encoder = SpladeEncoder.from_pretrained(args.model, backend=backend, device="cpu")
            encoder.encode(texts[:4])  # warm-up (and the one-time export)
            started = time.perf_counter()
            weights = encoder.encode(texts).toarray()
            speed = len(texts) / (time.perf_counter() - started)
            reference = weights if reference is None else reference
            base_speed = base_speed or speed
            diff = float(np.abs(weights - reference).max())
            results.append({"dataset": name, "backend": backend, "documents": len(texts),
                            "documents_per_second": speed, "speedup": speed / base_speed,
                            "max_abs_difference": diff, "nonzeros": int((weights > 0).sum())})
            rows.append([name, backend, f"{speed:.2f}", f"{speed / base_speed:.2f}x",
                         f"{diff:.2g}", int((weights > 0).sum())])
    report(results, ["dataset", "backend", "docs/s", "speed-up", "max |Δw|", "non-zeros"], rows,
           args.out, model=args.model, documents=args.docs)


if __name__ == "__main__":
    main()
