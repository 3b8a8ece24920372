"""Plain-text and markdown tables for metrics and benchmark results."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                   digits: int = 4) -> str:
    """A GitHub markdown table; floats are printed with ``digits`` decimals.

    Example:
        >>> print(markdown_table(["run", "ndcg@10"], [["bm25", 0.68612]]))
        | run  | ndcg@10 |
        |------|---------|
        | bm25 | 0.6861  |
    """
    def cell(value: object) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"  # noqa: E731
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(r) for r in text)
    return "\n".join(out)
