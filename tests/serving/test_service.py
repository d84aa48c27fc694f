"""The HTTP service over trained runs: answers, their agreement with the library, bad requests, no writes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fusionrec import api
from fusionrec.cli.main import app as cli
from fusionrec.errors import FusionrecError
from fusionrec.models.base import EmbeddingScorer
from fusionrec.serving.ann import AnnIndex, build_index
from fusionrec.serving.app import create_app
from fusionrec.serving.service import Service


def client(run_dir, ann="none"):
    return TestClient(create_app(Service.from_run_dir(run_dir, ann=ann)), raise_server_exceptions=False)


def snapshot(folder):
    return {p.relative_to(folder): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_recommend_is_the_library_answer_and_flat_faiss_agrees_with_exact(runs):
    exact, flat = client(runs["bpr"]), client(runs["bpr"], ann="flat")
    user = str(api.load_run(runs["bpr"]).dataset.user_ids[3])
    expected = api.recommend(runs["bpr"], user, k=7)
    for c, how in ((exact, "exact"), (flat, "flat")):
        got = c.get(f"/recommend?user={user}&k=7").json()
        assert got["scoring"] == how
        assert [r["item"] for r in got["items"]] == [r["item"] for r in expected]
        assert [r["score"] for r in got["items"]] == pytest.approx([r["score"] for r in expected], rel=1e-5)
    assert flat.get("/metadata").json()["scoring"]["recall@10_vs_exact"] == 1.0


def test_seen_items_are_excluded_and_filters_keep_only_matching_items(runs):
    c = client(runs["bpr"], ann="flat")
    run = api.load_run(runs["bpr"])
    user = str(run.dataset.user_ids[4])
    seen = {str(run.dataset.item_ids[i]) for i in run.dataset.matrix("train", "valid", "test")[4].indices}
    items = [r["item"] for r in c.get(f"/recommend?user={user}&k=20").json()["items"]]
    assert len(items) == 20 and not set(items) & seen
    with_seen = [r["item"] for r in c.get(f"/recommend?user={user}&k=60&exclude_seen=false").json()["items"]]
    assert set(with_seen) & seen
    cluster = run.dataset.items["cluster"].to_numpy()
    wanted = int(cluster[int(np.flatnonzero(run.dataset.matrix("train", "valid", "test")[4].toarray()[0] == 0)[0])])
    body = c.post("/recommend", json={"user": user, "k": 5, "filters": {"cluster": str(wanted)}}).json()
    ids = run.dataset.item_ids.astype(str).tolist()
    assert body["items"] and all(cluster[ids.index(r["item"])] == wanted for r in body["items"])
    assert not {r["item"] for r in body["items"]} & seen


def test_reasons_and_explanations_come_from_the_models_attention(runs):
    c = client(runs["mario"])
    user = str(api.load_run(runs["mario"]).dataset.user_ids[3])
    recs = c.get(f"/recommend?user={user}&k=3&why=true").json()["items"]
    expected = api.recommend(runs["mario"], user, k=3, with_reasons=True)
    assert [(r["reason"]["label"], r["reason"]["weight"]) for r in recs] == [
        (e["reason"][0], pytest.approx(e["reason"][1])) for e in expected
    ]
    explained = c.get(f"/explain?user={user}&item={recs[0]['item']}").json()
    assert sum(explained["weights"]["modality_weights"].values()) == pytest.approx(1.0, abs=1e-5)
    assert explained["score"] == pytest.approx(recs[0]["score"], rel=1e-5)


def test_a_new_user_history_is_answered_as_the_same_sequence_of_a_known_user(runs):
    c = client(runs["sasrec"])
    run = api.load_run(runs["sasrec"])
    inter = run.dataset.interactions
    rows = inter[inter["user"] == 3].sort_values("timestamp", kind="stable")
    history = [str(run.dataset.item_ids[i]) for i in rows["item"]]
    known = c.get(f"/recommend?user={run.dataset.user_ids[3]}&k=5").json()["items"]
    cold = c.post("/recommend", json={"history": [*history, "no-such-item"], "k": 5, "why": True}).json()
    assert cold["history_unknown"] == ["no-such-item"]
    assert [r["item"] for r in cold["items"]] == [r["item"] for r in known]
    assert not {r["item"] for r in cold["items"]} & set(history)
    assert all(r["reason"]["label"] for r in cold["items"])
    bpr = client(runs["bpr"]).post("/recommend", json={"history": history[:3], "k": 5})
    assert bpr.status_code == 422 and "sequential" in bpr.json()["error"]


def test_similar_items_are_the_nearest_by_cosine_without_the_item_itself(runs):
    c = client(runs["bpr"])
    run = api.load_run(runs["bpr"])
    vectors = torch.nn.functional.normalize(run.model.scorer().item_emb.detach(), dim=1)
    sims = (vectors @ vectors[5]).numpy()
    sims[5] = -np.inf
    body = c.get(f"/similar?item={run.dataset.item_ids[5]}&k=4").json()
    assert body["by"] == "the model's item vectors"
    assert [r["item"] for r in body["items"]] == [str(run.dataset.item_ids[i]) for i in np.argsort(-sims)[:4]]


@pytest.mark.parametrize(
    ("method", "url", "payload", "status", "words"),
    [
        ("get", "/recommend?user=nobody", None, 404, "unknown user 'nobody'"),
        ("get", "/recommend?user={user}&k=0", None, 422, "k must be a positive integer"),
        ("get", "/recommend?user={user}&k=100000", None, 422, "above 1000"),
        ("get", "/recommend?user={user}&k=ten", None, 422, "k:"),
        ("get", "/recommend?user={user}&filter=nocolon", None, 422, "column:value"),
        ("get", "/recommend?user={user}&filter=colour:red", None, 422, "no such column"),
        ("get", "/similar?item=nothing", None, 404, "unknown item 'nothing'"),
        ("get", "/explain?user={user}&item=nothing", None, 404, "unknown item"),
        ("get", "/items/{item}/image", None, 404, "has no image"),
        ("get", "/explain/images/..%2F..%2Frecord.json", None, 404, "no explanation image"),
        ("get", "/no/such/path", None, 404, "Not Found"),
        ("post", "/recommend", b"{not json", 400, "malformed JSON"),
        ("post", "/recommend", {"history": ["x", "y"]}, 404, "none of the history's items"),
        ("post", "/recommend", {"history": []}, 422, "history is empty"),
        ("post", "/recommend", {"user": "{user}", "history": ["x"]}, 422, "not both"),
        ("post", "/recommend", {"user": "{user}", "k": -1}, 422, "positive"),
    ],
)
def test_bad_requests_are_one_line_4xx_json_and_write_nothing(runs, method, url, payload, status, words):
    c = client(runs["bpr"])
    run = api.load_run(runs["bpr"])
    user, item = str(run.dataset.user_ids[0]), str(run.dataset.item_ids[0])
    before = snapshot(runs["bpr"])
    url = url.format(user=user, item=item)
    if isinstance(payload, bytes):
        response = c.post(url, content=payload, headers={"content-type": "application/json"})
    elif payload is not None:
        response = c.post(url, json=json.loads(json.dumps(payload).replace("{user}", user)))
    else:
        response = c.get(url)
    assert response.status_code == status, response.text
    body = response.json()
    assert words in body["error"] and "\n" not in body["error"] and body["request_id"]
    assert c.get("/health").json()["status"] == "ok"  # still up
    assert snapshot(runs["bpr"]) == before


def test_explanations_write_nothing_into_the_run_and_serve_their_heat_maps(runs):
    c = client(runs["sasrec"])
    user = c.get("/users?limit=1").json()["users"][0]
    before = snapshot(runs["sasrec"])
    body = c.get(f"/explain?user={user}").json()
    assert body["images"]
    image = c.get(f"/explain/images/{body['images'][0]}")
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
    assert snapshot(runs["sasrec"]) == before


def test_request_ids_are_kept_or_made_and_metadata_carries_the_record(runs):
    c = client(runs["bpr"])
    assert c.get("/health", headers={"X-Request-ID": "abc123"}).headers["x-request-id"] == "abc123"
    assert len(c.get("/health").headers["x-request-id"]) == 16
    meta = c.get("/metadata").json()
    record = json.loads((runs["bpr"] / "record.json").read_text())
    assert meta["data"]["fingerprint"] == record["data"]["fingerprint"]
    assert meta["metrics"]["test"] == record["metrics"]["test"]
    assert c.get("/openapi.json").json()["paths"].keys() >= {"/recommend", "/similar", "/explain", "/metadata"}


def test_a_run_whose_data_set_is_gone_is_refused_in_one_line(runs, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(runs["bpr"], broken)
    record = json.loads((broken / "record.json").read_text())
    record["data"]["path"] = str(tmp_path / "gone")
    record["config"]["data"].update(name=str(tmp_path / "gone.csv"), options={})
    (broken / "record.json").write_text(json.dumps(record))
    with pytest.raises(FusionrecError, match="no such file or folder"):
        Service.from_run_dir(broken)
    with pytest.raises(FusionrecError, match="not a run directory"):
        Service.from_run_dir(tmp_path)


def test_ann_indexes_report_recall_against_exact_and_fall_back_when_they_run_dry():
    gen = torch.Generator().manual_seed(0)
    factors = EmbeddingScorer(
        torch.randn(300, 16, generator=gen), torch.randn(5000, 16, generator=gen), torch.randn(5000)
    )
    import scipy.sparse as sp

    seen = sp.random(300, 5000, density=0.01, format="csr", random_state=0)
    assert build_index(factors, "auto", seen) is None  # small catalogue: exact scoring
    for kind, least_recall in (("ivf", 0.5), ("hnsw", 0.9)):  # hnsw searches the MIPS-to-L2 reduction
        index = build_index(factors, kind, seen)
        assert isinstance(index, AnnIndex)
        assert least_recall < index.describe()["recall@10_vs_exact"] <= 1.0
        items, _ = index.search(7, 10, seen[[7]], None)
        assert len(items) == 10 and not set(items) & set(seen[7].indices)
        allowed = np.zeros(5000, dtype=bool)
        allowed[[3, 99, 4000]] = True  # too narrow for the over-fetch: exact fallback
        assert sorted(index.search(7, 10, None, allowed)[0]) == sorted(i for i in (3, 99, 4000))
    with pytest.raises(FusionrecError, match="unknown ANN kind"):
        build_index(factors, "lsh", seen)


def test_recommend_all_writes_every_users_list(runs, tmp_path):
    out = tmp_path / "recs.parquet"
    result = CliRunner().invoke(cli, ["recommend", str(runs["bpr"]), "--all", "-k", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    run = api.load_run(runs["bpr"])
    unseen = run.dataset.num_items - np.diff(run.dataset.matrix("train", "valid", "test").indptr)
    assert len(frame) == np.minimum(unseen, 5).sum() and set(frame["rank"]) == {1, 2, 3, 4, 5}
    user = str(run.dataset.user_ids[11])
    assert frame[frame["user"] == user]["item"].tolist() == [r["item"] for r in api.recommend(runs["bpr"], user, 5)]
    bad = CliRunner().invoke(cli, ["recommend", str(runs["bpr"]), "--all", "--out", str(tmp_path / "x.txt")])
    assert bad.exit_code != 0 and not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize("model", ["deepfm", "biased_mf"])
def test_the_pointwise_families_serve_through_their_task(runs, model):
    c = client(runs[model])
    run = api.load_run(runs[model])
    user = str(run.dataset.user_ids[2])
    expected = api.recommend(runs[model], user, k=5)
    got = c.get(f"/recommend?user={user}&k=5").json()
    assert [r["item"] for r in got["items"]] == [r["item"] for r in expected]
    assert [r["score"] for r in got["items"]] == pytest.approx([r["score"] for r in expected], rel=1e-5)
    assert c.get("/metadata").json()["task"] == run.task.name
    everyone = Service.from_run_dir(runs[model], ann="none").recommend_all(k=5)  # user by user through the task
    assert everyone[everyone["user"] == user]["item"].tolist() == [r["item"] for r in expected]
    assert everyone["user"].nunique() == run.dataset.num_users


def test_a_kg_run_serves_its_queries(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONREC_HOME", str(tmp_path / "home"))
    options = ["data.options.num_entities=60", "data.options.num_relations=3", "data.options.num_clusters=4"]
    run_dir = api.train(
        "distmult", "synthetic-kg", overrides=[*options, "model.dim=8", "train.epochs=1"], run_dir=tmp_path / "kg"
    ).run_dir
    c = client(run_dir)
    for query in ("e1 r0", "e1 r0^-1"):  # tails of (e1, r0, ?), heads of (?, r0, e1)
        expected = api.recommend(run_dir, query, k=5)
        got = c.get("/recommend", params={"user": query, "k": 5}).json()
        assert [r["item"] for r in got["items"]] == [r["item"] for r in expected]
        assert [r["score"] for r in got["items"]] == pytest.approx([r["score"] for r in expected], rel=1e-5)
    bad = c.get("/recommend", params={"user": "e1", "k": 5})
    assert bad.status_code == 404 and "ENTITY RELATION" in bad.json()["error"]
    assert c.get("/metadata").json()["task"] == "kg"
    with pytest.raises(FusionrecError, match="no users to list"):
        Service.from_run_dir(run_dir, ann="none").recommend_all(k=5)
