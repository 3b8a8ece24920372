"""The docstring retrieval task built from the standard library, and writing BEIR folders."""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
import sys
import textwrap
from pathlib import Path

import pytest

from ragsift.data.beir import BeirDataset, load_beir
from ragsift.data.beir_write import write_beir
from ragsift.data.docstring_task import (
    build_docstring_task,
    collect_docstrings,
    split_docstring,
    stdlib_folder,
)
from ragsift.types import Document

N_QUERIES, N_DOCUMENTS = 50, 400


@pytest.fixture(scope="module")
def task() -> BeirDataset:
    return build_docstring_task(n_queries=N_QUERIES, n_documents=N_DOCUMENTS, seed=13)


# --- the real standard library ----------------------------------------------------------------


def test_sizes_and_shapes(task: BeirDataset) -> None:
    assert len(task.corpus) == N_DOCUMENTS
    assert len(task.queries) == N_QUERIES
    assert len(task.qrels) == N_QUERIES
    assert task.split == "test"
    assert task.folder == stdlib_folder()
    for qid, judged in task.qrels.items():
        assert qid in task.queries
        assert judged == {"doc-" + qid.removeprefix("q-"): 1}
    for doc_id, doc in task.corpus.items():
        assert re.fullmatch(r"doc-[0-9a-f]{12}", doc_id)
        assert doc.id == doc_id
        assert doc.title == ""
        assert set(doc.metadata) == {"source", "qualname", "kind"}
        assert doc.metadata["kind"] in {"function", "class", "module"}
        key = f"{doc.metadata['source']}:{doc.metadata['qualname']}"
        assert doc_id == "doc-" + hashlib.sha1(key.encode()).hexdigest()[:12]
        assert len(doc.text.split()) >= 25
    for text in task.queries.values():
        assert len(text.split()) >= 4 and "\n" not in text


def test_default_sizes_and_nothing_is_imported() -> None:
    before = set(sys.modules)
    data = build_docstring_task()
    assert (len(data.queries), len(data.corpus)) == (300, 1000)
    assert not {"this", "antigravity", "turtle", "tkinter"} & (set(sys.modules) - before)


def test_every_qrels_doc_is_in_the_corpus(task: BeirDataset) -> None:
    for judged in task.qrels.values():
        for doc_id in judged:
            assert doc_id in task.corpus


def test_no_query_equals_or_is_contained_in_its_document(task: BeirDataset) -> None:
    texts = {doc.text for doc in task.corpus.values()}
    for qid, query in task.queries.items():
        assert query not in texts
        (doc_id,) = task.qrels[qid]
        assert query not in task.corpus[doc_id].text


def test_no_duplicate_summaries_or_bodies(task: BeirDataset) -> None:
    bodies = [doc.text for doc in task.corpus.values()]
    assert len(set(bodies)) == len(bodies)
    assert len(set(task.queries.values())) == len(task.queries)


def test_same_seed_same_dataset_other_seed_other_sample(task: BeirDataset) -> None:
    again = build_docstring_task(n_queries=N_QUERIES, n_documents=N_DOCUMENTS, seed=13)
    assert again.corpus == task.corpus
    assert list(again.corpus) == list(task.corpus)
    assert again.queries == task.queries and again.qrels == task.qrels
    other = build_docstring_task(n_queries=N_QUERIES, n_documents=N_DOCUMENTS, seed=14)
    assert set(other.corpus) != set(task.corpus)
    assert set(other.queries) != set(task.queries)


def _defs_named(tree: ast.Module, qualname: str) -> list[ast.AST]:
    """Independent lookup: the module itself, or every def/class bearing the last name part."""
    if qualname == "<module>":
        return [tree]
    name = qualname.split(".")[-1]
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [n for n in ast.walk(tree) if isinstance(n, kinds) and n.name == name]


def test_queries_are_first_lines_of_the_source_docstrings(task: BeirDataset) -> None:
    root = stdlib_folder()
    for qid in list(task.qrels)[:25]:
        (doc_id,) = task.qrels[qid]
        doc = task.corpus[doc_id]
        tree = ast.parse((root / doc.metadata["source"]).read_bytes())
        pairs = []
        for node in _defs_named(tree, doc.metadata["qualname"]):
            raw = ast.get_docstring(node, clean=False)
            if raw:
                lines = inspect.cleandoc(raw).splitlines()
                pairs.append((lines[0], "\n".join(lines[2:]).strip()))
        assert (task.queries[qid], doc.text) in pairs, (qid, doc.metadata)


def test_n_queries_above_n_documents_is_an_error() -> None:
    with pytest.raises(ValueError, match="cannot exceed n_documents"):
        build_docstring_task(n_queries=20, n_documents=10)
    with pytest.raises(ValueError, match="n_documents >= 1"):
        build_docstring_task(n_queries=0, n_documents=0)


# --- writing and loading back ---------------------------------------------------------------


def test_round_trip_through_write_beir_and_load_beir(task: BeirDataset, tmp_path: Path) -> None:
    folder = write_beir(task, tmp_path / "docstrings")
    assert folder == tmp_path / "docstrings"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "corpus.jsonl", "qrels", "qrels/test.tsv", "queries.jsonl",
    ]
    header = (folder / "qrels" / "test.tsv").read_text().splitlines()[0]
    assert header == "query-id\tcorpus-id\tscore"
    loaded = load_beir(folder, "test")
    assert loaded.corpus == task.corpus
    assert list(loaded.corpus) == list(task.corpus)
    assert loaded.queries == task.queries
    assert loaded.qrels == task.qrels
    assert loaded.split == task.split
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_write_beir_replaces_a_folder_and_keeps_unjudged_queries(tmp_path: Path) -> None:
    corpus = {"d1": Document("d1", "one", "T", {"lang": "en", "n": 3}), "d2": Document("d2", "ü")}
    data = BeirDataset(corpus, {"q1": "first", "q2": "never judged"}, {"q1": {"d1": 2}},
                       tmp_path, "dev")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "stale.txt").write_text("old")
    write_beir(data, folder)
    assert not (folder / "stale.txt").exists()
    assert (folder / "queries.jsonl").read_text().count("\n") == 2
    loaded = load_beir(folder, "dev")
    assert loaded.corpus == corpus
    assert loaded.queries == {"q1": "first"}  # load_beir keeps judged queries only
    assert loaded.qrels == {"q1": {"d1": 2}}


@pytest.mark.parametrize(
    "corpus, qrels, match",
    [
        ({"d1": Document("d1", "x", metadata={"text": "y"})}, {}, "reserved"),
        ({"d\t1": Document("d\t1", "x")}, {}, "tab or line break"),
        ({"d1": Document("d1", "x")}, {"q1": {"d9": 1}}, "not in the corpus"),
        ({"d1": Document("d1", "x")}, {"q9": {"d1": 1}}, "not among the dataset's queries"),
        ({"d1": Document("d1", "x")}, {"q1": {"d1": 0.5}}, "not an int"),
    ],
)
def test_write_beir_refuses_what_would_not_load_back(
    tmp_path: Path, corpus: dict, qrels: dict, match: str
) -> None:
    data = BeirDataset(corpus, {"q1": "query"}, qrels, tmp_path, "test")
    with pytest.raises(ValueError, match=match):
        write_beir(data, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- a tiny fake standard library -----------------------------------------------------------

WORDS25 = " ".join(f"word{i}" for i in range(25))
WORDS24 = " ".join(f"word{i}" for i in range(24))


def _write(root: Path, rel: str, source: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


@pytest.fixture
def fake_stdlib(tmp_path: Path) -> Path:
    root = tmp_path / "lib" / "python3.11"
    _write(root, "alpha.py", f'''\
        """The alpha module does alpha things.

        {WORDS25} module
        """

        import sys


        def short():
            """Too short summary.

            {WORDS25} short
            """


        def thin_body():
            """This body is too thin.

            {WORDS24}
            """


        def no_blank():
            """This summary line runs on
            into the next line {WORDS25} no blank
            """


        def repeats():
            """Summary that appears again verbatim.

            {WORDS25} and then: Summary that appears again verbatim.
            """


        class Outer:
            """An outer class with a docstring.

            {WORDS25} outer
            """

            def method(self):
                """A method of the outer class.

                {WORDS25} method
                """

                def helper():
                    """A helper nested in the method.

                    {WORDS25} helper
                    """


        if sys.platform:
            async def conditional():
                """Defined inside an if block.

                {WORDS25} conditional first
                """
        else:
            async def conditional():
                """Defined inside an else block.

                {WORDS25} conditional second
                """
        ''')
    _write(root, "beta/gamma.py", f'''\
        def dup_summary():
            """The alpha module does alpha things.

            {WORDS25} different body
            """


        def dup_body():
            """A different summary, same body.

            {WORDS25} outer
            """


        def kept():
            """Kept from a nested package.

              {WORDS25}   kept
            """
        ''')
    qualifying = f'''\
        def f():
            """This one would qualify anywhere.

            {WORDS25} skipped folder
            """
        '''
    for rel in ("test/x.py", "tests/x.py", "site-packages/pkg/x.py", "idlelib/x.py",
                "lib2to3/x.py", "turtledemo/x.py", "__pycache__/x.py", "beta/tests/y.py"):
        _write(root, rel, qualifying)
    _write(root, "broken.py", 'def f(:\n    """This would qualify if it parsed."""\n')
    _write(root, "notes.txt", qualifying)
    return root


EXPECTED = [
    ("alpha.py", "<module>", "module"),
    ("alpha.py", "Outer", "class"),
    ("alpha.py", "Outer.method", "function"),
    ("alpha.py", "Outer.method.<locals>.helper", "function"),
    ("alpha.py", "conditional", "function"),
    ("beta/gamma.py", "kept", "function"),
]


def test_exactly_the_expected_docstrings_qualify(fake_stdlib: Path) -> None:
    entries = collect_docstrings(fake_stdlib)
    assert [(e.source, e.qualname, e.kind) for e in entries] == EXPECTED
    by_name = {e.qualname: e for e in entries}
    assert by_name["<module>"].summary == "The alpha module does alpha things."
    assert by_name["<module>"].body == f"{WORDS25} module"
    assert by_name["conditional"].summary == "Defined inside an if block."
    assert by_name["kept"].body == f"{WORDS25}   kept"  # cleandoc keeps inner spacing


def test_fake_stdlib_task(fake_stdlib: Path) -> None:
    data = build_docstring_task(n_queries=2, n_documents=6, seed=1, stdlib_dir=fake_stdlib)
    assert data.folder == fake_stdlib
    got = sorted((d.metadata["source"], d.metadata["qualname"], d.metadata["kind"])
                 for d in data.corpus.values())
    assert got == sorted(EXPECTED)
    assert len(data.queries) == 2
    for qid, judged in data.qrels.items():
        (doc_id,) = judged
        meta = data.corpus[doc_id].metadata
        key = hashlib.sha1(f"{meta['source']}:{meta['qualname']}".encode()).hexdigest()[:12]
        assert (qid, doc_id) == (f"q-{key}", f"doc-{key}")


def test_too_many_documents_is_an_error(fake_stdlib: Path) -> None:
    with pytest.raises(ValueError, match=r"only 6 docstrings .* qualify"):
        build_docstring_task(n_queries=2, n_documents=7, stdlib_dir=fake_stdlib)
    with pytest.raises(FileNotFoundError):
        build_docstring_task(n_queries=1, n_documents=1, stdlib_dir=fake_stdlib / "missing")


def test_split_docstring() -> None:
    assert split_docstring("Sum up.\n\nAdds.\n\nMore.") == ("Sum up.", "Adds.\n\nMore.")
    assert split_docstring("One line only.") is None
    assert split_docstring("Two\nlines.") is None
    assert split_docstring("Summary.\n\n   ") is None


def test_cli_writes_the_task_as_a_beir_folder(task: BeirDataset, tmp_path: Path, capsys) -> None:
    from ragsift.cli.main import main

    out = tmp_path / "docstrings"
    assert main(["datasets", "docstrings", "--out", str(out), "--queries", str(N_QUERIES),
                 "--documents", str(N_DOCUMENTS), "--seed", "13"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    written = load_beir(out, "test")
    assert written.qrels == task.qrels and written.queries == task.queries
    assert {k: (d.title, d.text) for k, d in written.corpus.items()} == \
        {k: (d.title, d.text) for k, d in task.corpus.items()}
