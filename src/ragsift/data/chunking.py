"""Token windows over long documents, so that no text is silently cut off by a model's max length.

A bi-encoder or cross-encoder truncates its input at a maximum length (often 256 or 512
tokens); whatever comes after is never seen. Chunking splits each document's text into
windows of at most ``max_tokens`` tokens, retrieval runs over the windows, and
:func:`collapse_run` maps the scores back to documents.

- :func:`chunk_text`: character spans of the windows of one text.
- :func:`split_sentences`: the sentence spans that ``sentence_aware=True`` packs.
- :func:`chunk_corpus`: a corpus of chunk documents (``"<doc id>#<i>"``) and a chunk -> doc map.
- :func:`iter_chunk_documents`: the same chunk documents, one document at a time.
- :func:`collapse_run`: a run over chunks -> a run over documents (max, mean, sum or first).

Token counts exclude special tokens (``[CLS]``, ``[SEP]``, ...): to fit a model whose maximum
length is ``L``, pass ``max_tokens = L - tokenizer.num_special_tokens_to_add()``.

Example:
    >>> from transformers import AutoTokenizer
    >>> tok = AutoTokenizer.from_pretrained("path/to/all-MiniLM-L6-v2")  # doctest: +SKIP
    >>> chunk_text("one two three four five", tok, max_tokens=3, overlap=1)  # doctest: +SKIP
    [(0, 13), (8, 23)]
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ragsift.types import Corpus, Document, Run, ranked

__all__ = [
    "Chunk",
    "chunk_corpus",
    "chunk_text",
    "collapse_run",
    "iter_chunk_documents",
    "split_sentences",
]

Aggregate = Literal["max", "mean", "sum", "first"]
_AGGREGATES = ("max", "mean", "sum", "first")

# A sentence ends after a run of . ! ? (plus closing quotes/brackets) that whitespace follows;
# a line break always ends one.
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019\u00bb)\]]*(?=\s)|\n")

# Offsets of each token, and for each token the index of the first token of its word.
_Encoded = tuple[Sequence[tuple[int, int]], "_WordStarts"]


@dataclass(frozen=True)
class Chunk:
    """One window of a document: ``text == document_text[start_char:end_char]``.

    ``id`` is ``f"{doc_id}#{index}"``; ``index`` counts the document's chunks from 0 in
    document order.

    Example:
        >>> c = Chunk("d1#0", "d1", 0, "Hello", 0, 5)
        >>> c.to_document(title="T").metadata
        {'doc_id': 'd1', 'chunk': 0, 'start_char': 0, 'end_char': 5}
    """

    id: str
    doc_id: str
    index: int
    text: str
    start_char: int
    end_char: int

    def to_document(self, title: str = "", metadata: Mapping[str, Any] | None = None) -> Document:
        """This chunk as a :class:`Document`; metadata is ``metadata`` plus doc_id, chunk,
        start_char and end_char (which win over keys of the same name)."""
        meta = dict(metadata or {})
        meta.update(
            doc_id=self.doc_id,
            chunk=self.index,
            start_char=self.start_char,
            end_char=self.end_char,
        )
        return Document(self.id, self.text, title=title, metadata=meta)


# --------------------------------------------------------------------------- validation / encoding


def _check_sizes(max_tokens: int, overlap: int) -> None:
    for name, value in (("max_tokens", max_tokens), ("overlap", overlap)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an int, got {value!r}")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if not 0 <= overlap < max_tokens:
        raise ValueError(
            f"overlap must satisfy 0 <= overlap < max_tokens, got overlap={overlap} "
            f"with max_tokens={max_tokens}"
        )


def _backend(tokenizer: Any) -> Any:
    """A ``tokenizers.Tokenizer`` that encodes without truncation or padding, or None when
    ``tokenizer`` is a Hugging Face (transformers) fast tokenizer, used through its ``__call__``."""
    try:
        import tokenizers
    except ImportError:  # pragma: no cover - tokenizers is a core dependency
        tokenizers = None
    if tokenizers is not None and isinstance(tokenizer, tokenizers.Tokenizer):
        if tokenizer.truncation is None and tokenizer.padding is None:
            return tokenizer
        copy = tokenizers.Tokenizer.from_str(tokenizer.to_str())
        copy.no_truncation()
        copy.no_padding()
        return copy
    if getattr(tokenizer, "is_fast", False) is True:
        return None
    raise ValueError(
        "chunking needs a fast tokenizer (one that returns character offsets), got "
        f"{type(tokenizer).__name__}; load it with AutoTokenizer.from_pretrained(name, "
        "use_fast=True) or pass a tokenizers.Tokenizer"
    )


class _WordStarts(Sequence[int]):
    """For each token, the index of the first token of its (pre-tokenizer) word; computed on
    demand, since only the tokens at window boundaries are asked about."""

    def __init__(self, word_ids: Sequence[int | None]) -> None:
        self.word_ids = word_ids

    def __len__(self) -> int:
        return len(self.word_ids)

    def continues(self, i: int) -> bool:
        """Whether token ``i`` continues the word of token ``i - 1``."""
        ids = self.word_ids
        return i > 0 and ids[i] is not None and ids[i] == ids[i - 1]

    def __getitem__(self, i: int) -> int:  # type: ignore[override]
        ids = self.word_ids
        word = ids[i]
        if word is None:
            return i
        while i > 0 and ids[i - 1] == word:
            i -= 1
        return i


def _encode(tokenizer: Any, backend: Any, texts: list[str]) -> list[_Encoded]:
    """Offsets and word starts of each text, without special tokens and without truncation."""
    if not texts:
        return []
    if backend is not None:
        encodings = backend.encode_batch(texts, add_special_tokens=False)
        return [(e.offsets, _WordStarts(e.word_ids)) for e in encodings]
    batch = tokenizer(
        texts,
        add_special_tokens=False,
        return_offsets_mapping=True,
        truncation=False,
        padding=False,
        verbose=False,
    )
    offsets = batch["offset_mapping"]
    return [(offsets[k], _WordStarts(batch.word_ids(k))) for k in range(len(texts))]


# --------------------------------------------------------------------------- windows


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``, trimmed of surrounding whitespace.

    A sentence ends after ``.``, ``!`` or ``?`` (a run of them, plus closing quotes or
    brackets) followed by whitespace, and at every line break. The rule is deliberately
    simple: abbreviations such as "Dr. Smith" split too.

    Example:
        >>> t = "It rains. Does it?\\nYes"
        >>> [t[s:e] for s, e in split_sentences(t)]
        ['It rains.', 'Does it?', 'Yes']
    """
    spans: list[tuple[int, int]] = []

    def add(start: int, end: int) -> None:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))

    start = 0
    for match in _SENTENCE_END.finditer(text):
        newline = match.group() == "\n"
        add(start, match.start() if newline else match.end())
        start = match.end()
    add(start, len(text))
    return spans


def _token_windows(
    word_start: _WordStarts,
    lo: int,
    hi: int,
    max_tokens: int,
    overlap: int,
    recount: Callable[[int, int], int] | None = None,
) -> list[tuple[int, int]]:
    """Token ranges ``[s, e)`` covering tokens ``lo..hi``: at most ``max_tokens`` each, and
    consecutive ranges share ``overlap`` tokens.

    Boundaries avoid cutting a word into pieces (which would re-tokenize differently): a
    window that would end inside a word ends before it instead, and a window that would
    start inside a word starts at the word's first token, so the overlap grows by the part
    of the word before the cut (or, when that word reaches back to the window's own start,
    at the next word, so the overlap shrinks). A word longer than a window is cut where it
    must be; such a window is re-tokenized with ``recount(s, e)`` (the token count of its
    text on its own, where sub-word pieces can come out differently) and shortened until
    that fits too.
    """

    def start_of_word(i: int, floor: int) -> int:  # scans back no further than floor
        while i > floor and word_start.continues(i):
            i -= 1
        return i

    def continues(i: int) -> bool:  # token i continues the word of token i - 1
        return i > lo and word_start.continues(i)

    windows: list[tuple[int, int]] = []
    s = lo
    while True:
        e = min(s + max_tokens, hi)
        if e < hi and continues(e):  # would cut the word that token e continues
            w = start_of_word(e, s)
            if w - overlap > s:  # the next window must still start after s
                e = w
        if recount is not None and (continues(s) or (e < hi and continues(e))):
            excess = recount(s, e) - max_tokens
            while excess > 0 and e - s > 1:
                e = max(s + 1, e - excess)
                excess = recount(s, e) - max_tokens
        windows.append((s, e))
        if e >= hi:
            return windows
        nxt = max(e - overlap, s + 1)
        if continues(nxt):  # would start inside a word
            back = start_of_word(nxt, s)
            if back > s:
                nxt = back
            else:  # the word reaches back into s: start after it, if it ends in the window
                ahead = nxt + 1
                while ahead < e and continues(ahead):
                    ahead += 1
                if ahead < e:
                    nxt = ahead
        s = nxt


def _spans_inside(
    text: str,
    offsets: Sequence[tuple[int, int]],
    word_start: _WordStarts,
    tokens: tuple[int, int],
    chars: tuple[int, int],
    max_tokens: int,
    overlap: int,
    count_text: Callable[[str], int],
) -> list[tuple[int, int]]:
    """Token windows over the tokens ``tokens`` of a sentence, as spans clipped to ``chars``."""
    lo, hi = chars

    def span(s: int, e: int) -> tuple[int, int]:
        return max(offsets[s][0], lo), max(min(offsets[e - 1][1], hi), lo)

    def recount(s: int, e: int) -> int:
        start, end = span(s, e)
        return count_text(text[start:end])

    windows = _token_windows(word_start, tokens[0], tokens[1], max_tokens, overlap, recount)
    return [span(s, e) for s, e in windows]


def _sentence_windows(
    text: str,
    offsets: Sequence[tuple[int, int]],
    word_start: _WordStarts,
    max_tokens: int,
    overlap: int,
    count_text: Callable[[str], int],
) -> list[tuple[int, int]]:
    """Character spans that pack whole sentences; see :func:`chunk_text`."""
    sentences = split_sentences(text)
    n = len(offsets)
    # first[j] = first token of sentence j: the first token whose last character lies at or
    # after the sentence start (so a token that carries a leading space, as byte-level BPE
    # tokens do, goes with the word it spells). Tokens in the gap after a sentence count
    # with that sentence, which can only over-count.
    first: list[int] = []
    i = 0
    for start, _ in sentences:
        while i < n and max(offsets[i][1] - 1, offsets[i][0]) < start:
            i += 1
        first.append(i)
    first.append(n)
    count = [first[j + 1] - first[j] for j in range(len(sentences))]

    spans: list[tuple[int, int]] = []
    m = len(sentences)
    p = 0
    while p < m:
        if count[p] > max_tokens:  # a sentence longer than a window: token windows inside it
            spans.extend(
                _spans_inside(
                    text,
                    offsets,
                    word_start,
                    (first[p], first[p + 1]),
                    sentences[p],
                    max_tokens,
                    overlap,
                    count_text,
                )
            )
            p += 1
            continue
        q, total = p, 0
        while q < m and count[q] <= max_tokens and total + count[q] <= max_tokens:
            total += count[q]
            q += 1
        spans.append((sentences[p][0], sentences[q - 1][1]))
        if q >= m:
            break
        if count[q] > max_tokens:  # no overlap is carried into an over-long sentence
            p = q
            continue
        # Overlap: the longest run of whole sentences ending the window that fits in
        # `overlap` tokens, leaves room for sentence q, and starts after p (progress).
        r, shared = q, 0
        while r - 1 > p and shared + count[r - 1] <= overlap:
            shared += count[r - 1]
            r -= 1
        while r < q and shared + count[q] > max_tokens:
            shared -= count[r]
            r += 1
        p = r
    return spans


def _spans(
    text: str,
    encoded: _Encoded,
    max_tokens: int,
    overlap: int,
    sentence_aware: bool,
    count_text: Callable[[str], int],
) -> list[tuple[int, int]]:
    offsets, word_start = encoded
    if not offsets:
        return []
    if sentence_aware:
        return _sentence_windows(text, offsets, word_start, max_tokens, overlap, count_text)

    def recount(s: int, e: int) -> int:
        return count_text(text[offsets[s][0] : offsets[e - 1][1]])

    windows = _token_windows(word_start, 0, len(offsets), max_tokens, overlap, recount)
    return [(offsets[s][0], offsets[e - 1][1]) for s, e in windows]


def _counter(tokenizer: Any, backend: Any) -> Callable[[str], int]:
    """The token count of a text on its own (no special tokens)."""
    return lambda piece: len(_encode(tokenizer, backend, [piece])[0][0])


def chunk_text(
    text: str,
    tokenizer: Any,
    max_tokens: int = 256,
    overlap: int = 32,
    sentence_aware: bool = False,
) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the windows of ``text``, in order.

    ``text`` is tokenized once with ``tokenizer`` (a Hugging Face fast tokenizer or a
    ``tokenizers.Tokenizer``), without special tokens and without truncation, and the
    windows are read off the token offsets. Each span runs from the first character of its
    first token to the last character of its last token, so (for tokenizers whose offsets
    leave spaces out, as BERT's do) ``text[start:end]`` neither starts nor ends with
    whitespace; the first span starts at the first token and the last one ends at the last
    token: only whitespace, or characters the tokenizer drops, lie outside the spans.

    - ``sentence_aware=False``: windows of at most ``max_tokens`` tokens; consecutive windows
      share ``overlap`` tokens. Boundaries do not cut a word into sub-word pieces: a window
      that would end inside a word ends before it, and one that would start inside a word
      starts at the word's beginning (the overlap then exceeds ``overlap`` by the part of the
      word before the cut). So with whitespace/punctuation-splitting tokenizers such as
      BERT's, each span re-tokenizes to the tokens it was counted with. Only a word longer
      than a window is cut into pieces; such a window is re-tokenized on its own and
      shortened until it fits in ``max_tokens`` that way too. (With tokenizers whose pieces
      depend on the character before a word, as SentencePiece's and byte-level BPE's do, a
      span re-tokenized on its own can still come out a token longer, e.g. after a newline.)
    - ``sentence_aware=True``: windows pack whole sentences (see :func:`split_sentences`)
      up to ``max_tokens`` tokens and end at a sentence end; the next window repeats the
      longest run of whole trailing sentences of the previous one that fits in ``overlap``
      tokens (none when even the last sentence does not fit). A sentence longer than
      ``max_tokens`` is split into token windows as above, inside the sentence, and no
      sentence overlap is carried into or out of it.

    Text of at most ``max_tokens`` tokens gives one span; text without tokens (empty or blank)
    gives ``[]``.

    Raises:
        ValueError: a slow tokenizer, ``max_tokens < 1`` or not ``0 <= overlap < max_tokens``.

    Example:
        >>> chunk_text("one two three four five", tok, max_tokens=3, overlap=1)  # doctest: +SKIP
        [(0, 13), (8, 23)]
    """
    _check_sizes(max_tokens, overlap)
    backend = _backend(tokenizer)
    (encoded,) = _encode(tokenizer, backend, [text])
    return _spans(text, encoded, max_tokens, overlap, sentence_aware, _counter(tokenizer, backend))


# --------------------------------------------------------------------------- corpora


def _title_budget(
    title: str,
    encoded_title: _Encoded | None,
    encoded_with_sep: _Encoded | None,
    max_tokens: int,
) -> tuple[str, int]:
    """The title to put on the chunks and the token budget left for the chunk text."""
    if not title or encoded_title is None or encoded_with_sep is None:
        return title, max_tokens
    cost = len(encoded_with_sep[0])
    allowance = max_tokens // 2
    if cost <= allowance:
        return title, max_tokens - cost
    # The title would take more than half of the window: cut it at a word boundary.
    offsets, word_start = encoded_title
    keep = allowance - max(0, cost - len(offsets))  # title tokens left beside the separator
    if keep < len(offsets) and keep > 0:
        keep = word_start[keep] if word_start[keep] > 0 else keep
    cut = title[: offsets[keep - 1][1]].rstrip() if keep > 0 else ""
    return cut, max_tokens - allowance


def iter_chunk_documents(
    documents: Iterable[Document],
    tokenizer: Any,
    max_tokens: int = 256,
    overlap: int = 32,
    sentence_aware: bool = False,
    separator: str = " ",
    batch_size: int = 256,
) -> Iterator[Document]:
    """The chunk documents of ``documents``, in order, reading ``documents`` once.

    Same rules as :func:`chunk_corpus`; texts are tokenized ``batch_size`` documents at a
    time (fast tokenizers encode a batch in parallel). Arguments are checked at the call,
    before any document is read.
    """
    _check_sizes(max_tokens, overlap)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    backend = _backend(tokenizer)
    return _iter_chunk_documents(
        documents, tokenizer, backend, max_tokens, overlap, sentence_aware, separator, batch_size
    )


def _iter_chunk_documents(
    documents: Iterable[Document],
    tokenizer: Any,
    backend: Any,
    max_tokens: int,
    overlap: int,
    sentence_aware: bool,
    separator: str,
    batch_size: int,
) -> Iterator[Document]:
    batch: list[Document] = []
    for doc in documents:
        batch.append(doc)
        if len(batch) >= batch_size:
            yield from _chunk_batch(
                batch, tokenizer, backend, max_tokens, overlap, sentence_aware, separator
            )
            batch = []
    if batch:
        yield from _chunk_batch(
            batch, tokenizer, backend, max_tokens, overlap, sentence_aware, separator
        )


def _kept_edge(char: str) -> bool:
    """Whether a WordPiece tokenizer surely keeps ``char`` as (part of) a token: a letter,
    digit, punctuation or symbol (not a control, format, combining mark or U+FFFD, which
    BERT's normaliser may drop)."""
    return unicodedata.category(char)[0] in "LNPS" and char != "\ufffd"


def _surely_one_window(doc: Document, max_tokens: int, separator: str) -> tuple[int, int] | None:
    """The span of ``doc``'s single chunk when it certainly fits, without tokenizing; else None.

    For WordPiece every token covers at least one character, hence at most one token per UTF-8
    byte: a document whose ``title + separator + text`` has at most ``max_tokens`` bytes, and
    whose titled part at most ``max_tokens // 2`` (so the title is never cut), is one window.
    Its span runs from the first to the last non-space character, as the tokenizer's offsets
    would, provided those characters are ones it keeps (:func:`_kept_edge`).
    """
    stripped = doc.text.strip()
    if not stripped or not (_kept_edge(stripped[0]) and _kept_edge(stripped[-1])):
        return None
    head = len((doc.title + separator).encode("utf-8")) if doc.title else 0
    if head > max_tokens // 2 or head + len(doc.text.encode("utf-8")) > max_tokens:
        return None
    start = len(doc.text) - len(doc.text.lstrip())
    return start, start + len(stripped)


def _is_wordpiece(tokenizer: Any, backend: Any) -> bool:
    model = (backend or getattr(tokenizer, "backend_tokenizer", None))
    return type(getattr(model, "model", None)).__name__ == "WordPiece"


def _chunk_batch(
    docs: list[Document],
    tokenizer: Any,
    backend: Any,
    max_tokens: int,
    overlap: int,
    sentence_aware: bool,
    separator: str,
) -> Iterator[Document]:
    count_text = _counter(tokenizer, backend)
    short = ({k: span for k, d in enumerate(docs)
              if (span := _surely_one_window(d, max_tokens, separator)) is not None}
             if _is_wordpiece(tokenizer, backend) else {})
    rest = [k for k in range(len(docs)) if k not in short]
    texts = dict(zip(rest, _encode(tokenizer, backend, [docs[k].text for k in rest])))
    titled = [k for k in rest if docs[k].title]
    titles = _encode(tokenizer, backend, [docs[k].title for k in titled])
    with_sep = _encode(tokenizer, backend, [docs[k].title + separator for k in titled])
    title_of = {k: (titles[t], with_sep[t]) for t, k in enumerate(titled)}
    for k, doc in enumerate(docs):
        if k in short:
            title, spans = doc.title, [short[k]]
        else:
            encoded_title, encoded_with_sep = title_of.get(k, (None, None))
            title, budget = _title_budget(doc.title, encoded_title, encoded_with_sep,
                                          max_tokens)
            spans = _spans(doc.text, texts[k], budget, min(overlap, budget - 1),
                           sentence_aware, count_text)
        if not spans:  # empty or blank text: one chunk, so the document is not lost
            spans = [(0, len(doc.text))]
        for i, (start, end) in enumerate(spans):
            chunk = Chunk(f"{doc.id}#{i}", doc.id, i, doc.text[start:end], start, end)
            yield chunk.to_document(title=title, metadata=doc.metadata)


def chunk_corpus(
    corpus: Corpus,
    tokenizer: Any,
    max_tokens: int = 256,
    overlap: int = 32,
    sentence_aware: bool = False,
    separator: str = " ",
) -> tuple[dict[str, Document], dict[str, str]]:
    """Split every document's ``text`` into windows; returns (chunk corpus, chunk id -> doc id).

    Each chunk is a :class:`Document` with id ``f"{doc_id}#{i}"`` (``i`` from 0 in document
    order), text ``doc.text[start_char:end_char]``, the document's title, and metadata = the
    document's metadata plus ``doc_id``, ``chunk`` (= ``i``), ``start_char`` and ``end_char``.
    A document with empty or blank text gives one chunk holding that text.

    The title is not chunked but is put on every chunk, and models read
    ``chunk.full_text(separator)``, so its tokens are budgeted: the text windows get
    ``max_tokens - T`` tokens, where ``T`` is the token count of ``title + separator``.
    A title may take at most half the window (``max_tokens // 2`` tokens); a longer one is
    cut, at a word boundary, to fit that half on the chunks (the original stays on the
    document), and the text windows get the other half. Thus title + separator + chunk text
    never exceeds ``max_tokens`` tokens (counted as :func:`chunk_text` counts them).
    ``overlap`` is lowered to the text budget minus 1 where it would not be smaller than it.

    ``corpus.values()`` is read once, so a lazily loaded corpus is streamed; see
    :func:`iter_chunk_documents` to stream the chunks too.

    Chunk ids never collide, even for doc ids that contain ``"#"``: the doc id is everything
    before the last ``"#"`` (chunk 0 of ``"a#1"`` is ``"a#1#0"``, chunk 1 of ``"a"`` is
    ``"a#1"``).

    Raises:
        ValueError: invalid sizes or a slow tokenizer.

    Example:
        >>> corpus = {"d1": Document("d1", "First. Second.", title="T")}
        >>> chunks, to_doc = chunk_corpus(
        ...     corpus, tok, max_tokens=4, overlap=0, sentence_aware=True)  # doctest: +SKIP
        >>> to_doc  # doctest: +SKIP
        {'d1#0': 'd1', 'd1#1': 'd1'}
        >>> chunks["d1#1"].text, chunks["d1#1"].title  # doctest: +SKIP
        ('Second.', 'T')
    """
    chunks: dict[str, Document] = {}
    chunk_to_doc: dict[str, str] = {}
    for chunk in iter_chunk_documents(
        corpus.values(), tokenizer, max_tokens, overlap, sentence_aware, separator
    ):
        chunks[chunk.id] = chunk
        chunk_to_doc[chunk.id] = chunk.metadata["doc_id"]
    return chunks, chunk_to_doc


# --------------------------------------------------------------------------- runs


def collapse_run(run: Run, chunk_to_doc: Mapping[str, str], aggregate: Aggregate = "max") -> Run:
    """Map a run over chunks back to a run over documents.

    For query ``q`` and document ``d``, let ``C`` be the chunks of ``d`` that ``run[q]``
    scores, with scores ``s_c``. Documents with no chunk in ``run[q]`` are left out.

    - ``"max"``: ``max(s_c for c in C)`` (MaxP: the best passage decides).
    - ``"mean"``: ``sum(s_c for c in C) / len(C)`` (over retrieved chunks only).
    - ``"sum"``: ``sum(s_c for c in C)`` (favours documents with many retrieved chunks).
    - ``"first"``: ``s_c`` of the chunk of ``C`` that comes first in ``chunk_to_doc``'s
      order, which for :func:`chunk_corpus`'s map is the one nearest the document start: the
      chunk with index 0 when it was retrieved, else the lowest retrieved index.

    Each query's documents come out best first (ties by doc id).

    Raises:
        ValueError: an unknown ``aggregate``, or a chunk id missing from ``chunk_to_doc``.

    Example:
        >>> run = {"q": {"a#0": 1.0, "a#1": 3.0, "b#0": 2.0}}
        >>> to_doc = {"a#0": "a", "a#1": "a", "b#0": "b"}
        >>> collapse_run(run, to_doc, "max")
        {'q': {'a': 3.0, 'b': 2.0}}
        >>> collapse_run(run, to_doc, "mean")
        {'q': {'a': 2.0, 'b': 2.0}}
        >>> collapse_run(run, to_doc, "first")
        {'q': {'b': 2.0, 'a': 1.0}}
    """
    if aggregate not in _AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(_AGGREGATES)}; got {aggregate!r}")
    position = {cid: i for i, cid in enumerate(chunk_to_doc)} if aggregate == "first" else {}
    out: Run = {}
    for qid, scores in run.items():
        acc: dict[str, float] = {}
        count: dict[str, int] = {}
        first_pos: dict[str, int] = {}
        for cid, score in scores.items():
            doc_id = chunk_to_doc.get(cid)
            if doc_id is None:
                raise ValueError(
                    f"run has chunk {cid!r} (query {qid!r}) that chunk_to_doc does not map to a "
                    "document; pass the map chunk_corpus returned with this chunk corpus"
                )
            score = float(score)
            if doc_id not in acc:
                acc[doc_id] = score
                count[doc_id] = 1
                if aggregate == "first":
                    first_pos[doc_id] = position[cid]
                continue
            count[doc_id] += 1
            if aggregate == "max":
                acc[doc_id] = max(acc[doc_id], score)
            elif aggregate in ("sum", "mean"):
                acc[doc_id] += score
            elif position[cid] < first_pos[doc_id]:
                first_pos[doc_id] = position[cid]
                acc[doc_id] = score
        if aggregate == "mean":
            acc = {d: total / count[d] for d, total in acc.items()}
        out[qid] = dict(ranked(acc))
    return out
