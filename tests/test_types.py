from ragsift.types import Document, ranked, restrict, top_k


def test_ranked_breaks_ties_by_doc_id_and_cuts():
    scores = {"b": 1.0, "a": 1.0, "c": 2.0, "d": 0.5}
    assert ranked(scores) == [("c", 2.0), ("a", 1.0), ("b", 1.0), ("d", 0.5)]
    assert ranked(scores, 2) == [("c", 2.0), ("a", 1.0)]


def test_top_k_and_restrict():
    run = {"q1": {"a": 1.0, "b": 3.0, "c": 2.0}, "q2": {"x": 1.0}}
    assert top_k(run, 2) == {"q1": {"b": 3.0, "c": 2.0}, "q2": {"x": 1.0}}
    assert restrict(run, ["q2"]) == {"q2": {"x": 1.0}}


def test_full_text_joins_title_like_beir():
    assert Document("d", "body", "Title").full_text() == "Title body"
    assert Document("d", "body").full_text() == "body"
