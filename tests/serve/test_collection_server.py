"""``ragsift serve --collection``: /search with filters equal to the library's search,
POST/DELETE /documents behind the API key, 422s that name the document and field, and
searches that keep answering while a write commits."""

from __future__ import annotations

import random
import threading

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from ragsift.collection import Collection  # noqa: E402
from ragsift.serve.app import create_app  # noqa: E402
from ragsift.serve.config import ServeConfig  # noqa: E402
from tests.collection.conftest import random_document  # noqa: E402
from tests.serve.conftest import API_KEY, AUTH, running  # noqa: E402


@pytest.fixture
def collection_dir(tmp_path):
    rng = random.Random(8)
    col = Collection.create(tmp_path / "col", retriever="bm25", chunk_tokens=40)
    col.add([random_document(rng, f"d{i}") for i in range(60)])
    col.close()
    return tmp_path / "col"


def test_search_write_and_delete(collection_dir):
    config = ServeConfig(collection=str(collection_dir), api_key=API_KEY)
    reference = Collection.open(collection_dir)
    with running(create_app(config)) as url, httpx.Client(base_url=url, headers=AUTH,
                                                         timeout=60) as client:
        body = {"query": "cell protein", "k": 5, "filter": ["year>=2010", "source=pubmed"]}
        got = client.post("/search", json=body).json()
        expected = reference.search("cell protein", k=5, filter=body["filter"])
        assert [(h["id"], h["score"]) for h in got["results"]] == [
            (h.id, h.score) for h in expected]
        assert all(h["metadata"]["year"] >= 2010 for h in got["results"])
        as_dict = client.post("/search", json={**body, "filter": {"year": {">=": 2010},
                                                                 "source": "pubmed"}}).json()
        assert as_dict["results"] == got["results"]

        assert httpx.post(f"{url}/documents", json={"documents": [{"id": "x", "text": "y"}]}
                          ).status_code == 401
        new = {"id": "fresh", "text": "Zebrafish regenerate hearts.", "metadata": {"year": 2030}}
        written = client.post("/documents", json={"documents": [new]}).json()
        assert written["added"] == 1 and written["generation"] == got["generation"] + 1
        hits = client.post("/search", json={"query": "zebrafish", "k": 3}).json()["results"]
        assert [h["id"] for h in hits] == ["fresh"]

        bad = client.post("/documents", json={"documents": [new, {"id": "a b", "text": "t"}]})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "documents", 1, "id"]
        wrong_filter = client.post("/search", json={"query": "x", "filter": "year>>1"})
        assert wrong_filter.status_code == 422
        assert wrong_filter.json()["detail"][0]["loc"] == ["body", "filter"]

        gone = client.request("DELETE", "/documents", json={"ids": ["fresh", "nope"]}).json()
        assert gone["deleted"] == 1 and gone["not_found"] == 1
        assert client.post("/search", json={"query": "zebrafish", "k": 3}).json()[
            "results"] == []
    assert "fresh" not in Collection.open(collection_dir)


def test_searches_go_on_during_writes(collection_dir):
    config = ServeConfig(collection=str(collection_dir), api_key=API_KEY)
    rng = random.Random(9)
    batches = [[random_document(rng, f"w{b}-{i}") for i in range(30)] for b in range(4)]
    errors: list[str] = []
    with running(create_app(config)) as url:
        def write() -> None:
            with httpx.Client(base_url=url, headers=AUTH, timeout=120) as client:
                for batch in batches:
                    response = client.post("/documents", json={"documents": batch})
                    if response.status_code != 200:
                        errors.append(response.text)

        writer = threading.Thread(target=write)
        writer.start()
        sizes = []
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
            while writer.is_alive():
                response = client.post("/search", json={"query": "cell", "k": 500})
                assert response.status_code == 200
                ids = {h["id"] for h in response.json()["results"]}
                # whole batches only: a search sees a commit, never half of one
                for batch in batches:
                    seen = sum(d["id"] in ids for d in batch)
                    written = {d["id"] for d in batch
                               if "cell" in (d["title"] + " " + d["text"]).lower()}
                    assert seen in (0, len(written))
                sizes.append(len(ids))
        writer.join()
    assert not errors
    assert len(sizes) >= 2


def test_bad_requests_are_422_and_never_break_the_collection(collection_dir):
    config = ServeConfig(collection=str(collection_dir), api_key=API_KEY)
    with running(create_app(config)) as url, httpx.Client(base_url=url, headers=AUTH,
                                                         timeout=60) as client:
        bad_bodies = [
            ("/search", '{"query": "x\\ud800y"}', ["body", "query"]),
            ("/search", '{"query": "x", "k": 0}', ["body", "k"]),
            ("/search", '{"query": "x", "unit": "page"}', ["body", "unit"]),
            ("/documents", '{"documents": [{"id": "a", "text": "x\\ud800"}]}',
             ["body", "documents", 0, "text"]),
            ("/documents", '{"documents": [{"id": "a", "text": "x", "metadata": {"n": NaN}}]}',
             None),
            ("/documents", '{"documents": []}', ["body", "documents"]),
        ]
        for path, body, loc in bad_bodies:
            response = client.post(path, content=body,
                                   headers={"Content-Type": "application/json"})
            assert response.status_code == 422, (path, body, response.text)
            if loc is not None:
                assert response.json()["detail"][0]["loc"] == loc
        assert client.post("/search", json={"query": "cell", "k": 3}).status_code == 200
        assert client.get("/health").json()["models"] == [{"name": "col",
                                                           "type": "collection"}]
    assert Collection.open(collection_dir).generation == 1
