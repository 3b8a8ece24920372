"""Filters: parsing of every spelling, the semantics on hand-made cases, and the vectorised
column masks against the per-document rule on random metadata."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ragsift.retrieve.filters import Column, Condition, Filter, FilterError, parse_expression


@pytest.mark.parametrize("text, expected", [
    ("year>=2020", Condition("year", "ge", 2020)),
    ("year > 2020.5", Condition("year", "gt", 2020.5)),
    ("source=pubmed", Condition("source", "eq", "pubmed")),
    ("source == pubmed", Condition("source", "eq", "pubmed")),
    ('code="2020"', Condition("code", "eq", "2020")),
    ("open=true", Condition("open", "eq", True)),
    ("lang in [en, de]", Condition("lang", "in", ("en", "de"))),
    ('tag in ("a, b", 3)', Condition("tag", "in", ("a, b", 3))),
    ("name=New York", Condition("name", "eq", "New York")),
])
def test_expressions(text, expected):
    assert parse_expression(text) == expected


@pytest.mark.parametrize("text", ["year", "year>=", "year>=abc", "year in []", "1year=2",
                                  "a=[1,2]", "a<true", "x=NaN"])
def test_bad_expressions_name_the_expression(text):
    with pytest.raises(FilterError, match="filter"):
        parse_expression(text)


def test_dict_and_list_spellings_agree():
    from_dict = Filter.parse({"year": {">=": 2020, "lt": 2024}, "lang": ["en", "de"],
                              "source": "pubmed"})
    from_list = Filter.parse(["year>=2020", "year<2024", "lang in [en, de]", "source=pubmed"])
    assert set(from_dict.conditions) == set(from_list.conditions)
    with pytest.raises(FilterError, match="unknown operator"):
        Filter.parse({"year": {"~": 1}})


@pytest.mark.parametrize("metadata, spec, expected", [
    ({"year": 2021}, "year>=2021", True),
    ({"year": 2021.0}, "year=2021", True),          # numbers compare by value
    ({"year": "2021"}, "year=2021", False),         # a string is not a number
    ({"year": "2021"}, 'year="2021"', True),
    ({"flag": True}, "flag=1", False),              # booleans are not numbers
    ({"flag": True}, "flag>=1", False),
    ({"flag": True}, "flag=true", True),
    ({"n": 1}, "n=true", False),
    ({"tags": ["a", "b"]}, "tags=b", True),         # a list matches through any element
    ({"tags": ["a", "b"]}, "tags in [c, a]", True),
    ({"tags": [1, 5]}, "tags>4", True),
    ({"tags": [1, 5]}, "tags>5", False),
    ({}, "year>=0", False),                         # a missing field never matches
    ({"year": None}, "year=null", False),
])
def test_semantics(metadata, spec, expected):
    if spec == "year=null":
        with pytest.raises(FilterError):
            Filter.parse(spec)
        return
    assert Filter.parse(spec).matches(metadata) is expected


def random_metadata(rng: random.Random) -> dict:
    meta = {}
    if rng.random() < 0.9:
        meta["year"] = rng.choice([rng.randint(1990, 2025), float(rng.randint(1990, 2025)),
                                   str(rng.randint(1990, 2025))])
    if rng.random() < 0.9:
        meta["source"] = rng.choice(["pubmed", "arxiv", "wiki", 1, True])
    if rng.random() < 0.5:
        meta["tags"] = rng.sample(["a", "b", "c", "d", 3, 7], rng.randint(0, 3))
    meta["flag"] = rng.choice([True, False, 0, 1])
    return meta


def random_filter(rng: random.Random) -> Filter:
    pool = [f"year>={rng.randint(1990, 2025)}", f"year<{rng.randint(1990, 2025)}",
            f"year={rng.randint(1990, 2025)}", "source=pubmed", "source in [arxiv, wiki]",
            "source=1", "source=true", "tags=a", "tags in [c, 7]", "tags>=5", "flag=true",
            "flag=1", f'year="{rng.randint(1990, 2025)}"']
    return Filter.parse(rng.sample(pool, rng.randint(1, 3)))


def test_column_masks_equal_the_per_document_rule():
    rng = random.Random(7)
    rows = [random_metadata(rng) for _ in range(500)]
    columns: dict[str, Column] = {}

    def column(name: str) -> Column:
        if name not in columns:
            columns[name] = Column([row.get(name) for row in rows])
        return columns[name]

    for _ in range(300):
        f = random_filter(rng)
        expected = np.array([f.matches(row) for row in rows])
        np.testing.assert_array_equal(f.mask(column, len(rows)), expected, err_msg=str(f))
