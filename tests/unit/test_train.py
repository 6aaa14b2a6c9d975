"""``training.pipeline.train`` on a real (small) ETL output in a local lake: artifacts,
determinism, the evaluation, and bad input refused before training with nothing published."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet
import pytest

from recpipe.adapters import open_artifacts, open_lake
from recpipe.contracts.dataset import DATASET, TRAINING_SCHEMA
from recpipe.errors import InputError
from recpipe.inference.features import Encoder
from recpipe.inference.towers import Towers
from recpipe.source.generate import ShopSpec
from recpipe.training import artifacts
from recpipe.training.fit import FitOptions
from recpipe.training.model import TwoTower, torch
from recpipe.training.pipeline import TrainOptions
from recpipe.training.pipeline import run as train
from recpipe.training.reading import read_ratings
from tests.support.etl import read_training
from tests.support.training import etl_lake, tree, write_dataset

FAST = FitOptions(max_epochs=6, patience=2)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return etl_lake(tmp_path_factory.mktemp("shop"), ShopSpec(customers=300, products=50, seed=7))


def _train(lake: Path, out: Path, **kw) -> dict:  # type: ignore[no-untyped-def,type-arg]
    store, name = open_artifacts(str(out))
    return train(open_lake(str(lake)), store, name, TrainOptions(fit=kw.pop("fit", FAST), **kw)).to_json()


def _read_embeddings(path: Path) -> tuple[list, np.ndarray]:  # type: ignore[type-arg]
    assert path.read_text().splitlines()[0] == "id,embedding"
    table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
        column_types={"id": pa.string(), "embedding": pa.string()}))
    vectors = np.array([[float(x) for x in v[1:-1].split(",")] for v in table["embedding"].to_pylist()],
                       dtype=np.float32)
    return table["id"].to_pylist(), vectors


@pytest.fixture(scope="module")
def trained(lake: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("art") / "ml-artifacts"
    return out, _train(lake, out)


def test_artifacts_follow_the_layout_and_cover_every_customer_and_product(lake: Path, trained) -> None:  # type: ignore[no-untyped-def]
    out, manifest = trained
    assert sorted(tree(out)) == sorted([artifacts.ITEM_EMBEDDINGS, artifacts.USER_EMBEDDINGS, artifacts.ITEM_ATTRIBUTES, artifacts.STATE_DICT,
                                        artifacts.TOWERS, artifacts.MANIFEST, artifacts.LOSS_PLOT,
                                        *artifacts.SCALERS.values()])
    data = read_training(lake / DATASET)
    users, u = _read_embeddings(out / artifacts.USER_EMBEDDINGS)
    items, v = _read_embeddings(out / artifacts.ITEM_EMBEDDINGS)
    assert sorted(int(x) for x in users) == sorted(set(data["customerNumber"].to_pylist()))
    assert sorted(items) == sorted(set(data["productCode"].to_pylist()))
    assert u.shape[1] == v.shape[1] == 32
    assert np.allclose(np.linalg.norm(u, axis=1), 1, atol=1e-5)
    assert (out / artifacts.LOSS_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    on_disk = json.loads((out / artifacts.MANIFEST).read_text())
    assert on_disk["model_version"] == manifest["model_version"] and on_disk["embedding_dim"] == 32
    lake_manifest = json.loads((lake / DATASET / "_manifest.json").read_text())
    assert on_disk["data"] == lake_manifest  # the data it was trained on
    assert on_disk["features"]["user"]["categorical"]["city"]  # vocabularies
    assert len(on_disk["training"]["history"]) == on_disk["training"]["epochs"]
    assert not (out.parent / "_staging").exists()  # staging gone


def test_published_artifacts_reproduce_the_embeddings_in_numpy_and_torch(lake: Path, trained) -> None:  # type: ignore[no-untyped-def]
    out, _ = trained
    towers = Towers.load(out / artifacts.TOWERS)
    enc = {k: Encoder.from_json(json.loads((out / p).read_text())) for k, p in artifacts.SCALERS.items()}
    ratings = read_ratings(open_lake(str(lake)))
    users = {n: ratings.users[n] for n in ratings.users.column_names}
    ids, stored = _read_embeddings(out / artifacts.USER_EMBEDDINGS)
    assert [int(i) for i in ids] == users["customerNumber"].to_pylist()
    numbers = users["customerNumber"].to_pylist()
    assert np.abs(towers.user(enc["user"].encode(users), numbers) - stored).max() <= 1e-5
    # unseen city and country, missing credit limit: the real encoders, then both towers
    raw = {"city": ["Atlantis", "Nantes", "Québec"], "country": ["Nowhere", "France", "Canada"],
           "creditLimit": [None, 21000.0, 1e7]}
    x = enc["user"].encode(raw)
    manifest = json.loads((out / artifacts.MANIFEST).read_text())
    ids = {t: manifest["towers"][t]["id_embeddings"] for t in ("user", "item")}
    assert ids["user"] == len(users["customerNumber"]) and ids["item"] > 0  # refit: every customer has one
    model = TwoTower(enc["user"].width, enc["item"].width, user_ids=ids["user"], item_ids=ids["item"], id_dim=32)
    model.load_state_dict(torch.load(out / artifacts.STATE_DICT, weights_only=True))
    model.eval()
    with torch.no_grad():
        expected = model.user_embedding(torch.from_numpy(x)).numpy()
    assert np.abs(towers.user(x) - expected).max() <= 1e-5


def test_the_ranking_evaluation_has_every_baseline_on_the_same_split(trained) -> None:  # type: ignore[no-untyped-def]
    _, m = trained
    metrics = m["metrics"]
    assert m["objective"] == "retrieval" and m["kind"] == "retrieval"
    assert metrics["objective"] == "retrieval"
    for d in (metrics, metrics["cold_start"]):
        assert set(d) >= {"recall_at_10", "ndcg_at_10", "coverage", "users"} and d["users"] > 0
        assert 0 <= d["recall_at_10"] <= 1 and 0 < d["coverage"] <= 1
    base = metrics["baselines"]
    assert set(base) == {"popularity", "ease", "rating_model", "oracle"}
    assert base["ease"]["cold_start"] is None  # EASE needs a history
    for name in ("popularity", "rating_model", "oracle"):
        assert base[name]["cold_start"]["users"] == metrics["cold_start"]["users"]
        assert base[name]["users"] == metrics["users"]
    # the generator's oracle knows the truth: nothing ranks better
    assert base["oracle"]["recall_at_10"] >= max(metrics["recall_at_10"], base["ease"]["recall_at_10"],
                                                 base["popularity"]["recall_at_10"])
    counts = m["counts"]
    assert counts["train"] + counts["validation"] + counts["test"] + counts["cold_start"] == counts["ratings"]
    published = m["training"]["published"]  # the published towers know every purchase, the latest included
    assert published["interactions"] == counts["ratings"]
    nxt = metrics["next_item"]
    for who in ("known_customers", "new_visitors"):
        assert set(nxt[who]) >= {"session", "without_session", "popularity", "ease", "session_knn", "ratios"}
        assert nxt[who]["session"]["examples"] == nxt[who]["popularity"]["examples"] > 0
        assert 0 <= nxt[who]["session"]["hit_at_10"] <= 1
    encoder = m["training"]["session_encoder"]
    assert encoder["examples"] > 0 and encoder["held_out"] > 0 and encoder["kept"] in encoder["held_out_hit_at_10"]
    assert encoder["published"]["transform"] in {"none (the identity)", "rotated into the refit's basis", "dropped"}
    assert [e["phase"] for e in m["training"]["history"]] == ["retrieval"] * m["training"]["epochs"]
    assert all(e["val_recall"] is not None for e in m["training"]["history"])


def test_the_rating_objective_beats_its_baselines_and_names_the_floors(lake: Path, tmp_path: Path) -> None:
    m = _train(lake, tmp_path / "rating", objective="rating")
    assert m["objective"] == "rating" and m["kind"] == "content"
    metrics = m["metrics"]
    assert set(metrics) >= {"rmse", "mae", "recall_at_10", "ndcg_at_10", "baselines", "generator_floor"}
    assert set(metrics["baselines"]) == {"global_mean", "item_mean", "popularity"}
    assert set(metrics["baselines"]["popularity"]) >= {"recall_at_10", "ndcg_at_10"}
    assert metrics["rmse"] < metrics["baselines"]["item_mean"]["rmse"] < metrics["baselines"]["global_mean"]["rmse"]
    assert metrics["generator_floor"]["identity"] < metrics["generator_floor"]["features"]
    assert 0 <= metrics["recall_at_10"] <= 1 and 0 <= metrics["ndcg_at_10"] <= 1
    assert m["training"]["numpy_agreement"]["max_abs_diff"] <= 1e-5


def test_same_seed_same_model(lake: Path, tmp_path: Path, trained) -> None:  # type: ignore[no-untyped-def]
    first, _ = trained
    _train(lake, tmp_path / "again")
    for rel in (artifacts.USER_EMBEDDINGS, artifacts.ITEM_EMBEDDINGS, artifacts.TOWERS, *artifacts.SCALERS.values()):
        assert (tmp_path / "again" / rel).read_bytes() == (first / rel).read_bytes(), rel
    other = _train(lake, tmp_path / "other", fit=FitOptions(max_epochs=6, patience=2, seed=8))
    assert (tmp_path / "other" / artifacts.USER_EMBEDDINGS).read_bytes() != (first / artifacts.USER_EMBEDDINGS).read_bytes()
    assert other["counts"]["test"] > 0


def test_hybrid_learns_ids_and_keeps_features_as_the_fallback(lake: Path, tmp_path: Path) -> None:
    m = _train(lake, tmp_path / "hybrid", objective="rating", hybrid=True)
    assert m["kind"] == "hybrid" and m["towers"]["user"]["id_embeddings"] > 0
    assert {"content_only", "features_fallback"} <= set(m["metrics"])
    assert [e["phase"] for e in m["training"]["history"]][-1] == "hybrid"
    towers = Towers.load(tmp_path / "hybrid" / artifacts.TOWERS)
    assert towers.hybrid
    x = np.zeros((2, towers.user.input_width), dtype=np.float32)
    known = int(towers.user.ids[0])
    with_id, unknown = towers.user(x, [known, -5])
    assert np.allclose(unknown, towers.user(x[:1])[0]) and not np.allclose(with_id, unknown)


def test_without_refit_the_evaluated_model_is_published_and_cold_customers_get_features(
        lake: Path, tmp_path: Path) -> None:
    """--no-refit: the published vectors are the evaluated model's; a cold-start customer (no
    interaction in training) has no id embedding, so their vector is the feature tower's."""
    out = tmp_path / "no-refit"
    m = _train(lake, out, refit=False)
    assert m["training"]["published"]["trained_on"] == "the training split"
    towers = Towers.load(out / artifacts.TOWERS)
    enc = Encoder.from_json(json.loads((out / artifacts.SCALERS["user"]).read_text()))
    ratings = read_ratings(open_lake(str(lake)))
    numbers = ratings.users["customerNumber"].to_numpy()
    with_ids = set(towers.user.ids.tolist())
    cold = [n for n in numbers.tolist() if n not in with_ids]
    assert len(cold) >= m["counts"]["cold_start_customers"] > 0
    ids, stored = _read_embeddings(out / artifacts.USER_EMBEDDINGS)
    x = enc.encode({k: ratings.users[k] for k in ratings.users.column_names})
    features_only = towers.user(x)
    for row, n in enumerate(numbers.tolist()):
        assert int(ids[row]) == n
        assert np.allclose(stored[row], features_only[row], atol=1e-6) == (n in cold)


def test_refit_publishes_vectors_that_saw_every_interaction(trained) -> None:  # type: ignore[no-untyped-def]
    out, m = trained
    published = m["training"]["published"]
    assert published["trained_on"].startswith("every interaction")
    assert published["epochs"] == m["training"]["best_epoch"]
    towers = Towers.load(out / artifacts.TOWERS)
    assert len(towers.user.ids) == m["counts"]["users"] and len(towers.item.ids) == m["counts"]["items"]


def test_republishing_swaps_the_whole_artifact_set(lake: Path, tmp_path: Path) -> None:
    out = tmp_path / "ml-artifacts"
    first = _train(lake, out)
    (out / "embeddings" / "stale.csv").write_text("left by hand\n")
    second = _train(lake, out, fit=FitOptions(max_epochs=2, patience=1, seed=3))
    assert second["model_version"] != first["model_version"]
    assert not (out / "embeddings" / "stale.csv").exists()
    assert json.loads((out / artifacts.MANIFEST).read_text())["model_version"] == second["model_version"]


def _contract_rows(rows: list[dict]) -> pa.Table:  # type: ignore[type-arg]
    base = {"city": "Nantes", "state": None, "postalCode": "44000", "country": "France", "creditLimit": 1000.0,
            "productLine": "Planes", "productScale": "1:18", "quantityInStock": 10, "buyPrice": 5.0,
            "MSRP": 9.0, "productRating": 4}
    full = [base | {"productCode": f"S{k % 7}"} | r for k, r in enumerate(rows)]
    return pa.Table.from_pylist(full, schema=TRAINING_SCHEMA)


MANY = [{"customerNumber": 100 + k % 5} for k in range(40)]


@pytest.mark.parametrize(("rows", "needle"), [
    (None, "no training dataset at"),
    ([], "is empty"),
    ([{"customerNumber": 100} for _ in range(40)], "ratings from 1 customer"),
    ([*MANY, {"customerNumber": 101, "MSRP": float("nan")}], "MSRP NaN"),
    ([*MANY, {"customerNumber": 102, "productRating": 7}], "ratings outside 1-5"),
    ([*MANY, {"customerNumber": 103, "creditLimit": float("inf")}], "creditLimit NaN or infinite"),
])
def test_bad_datasets_are_refused_before_training_and_publish_nothing(tmp_path: Path, rows, needle: str) -> None:  # type: ignore[no-untyped-def]
    bad_lake = tmp_path / "lake"
    bad_lake.mkdir()
    if rows is not None:
        if rows:
            write_dataset(bad_lake, _contract_rows(rows))
        else:
            write_dataset(bad_lake, _contract_rows([{"customerNumber": 1}]).slice(0, 0))
    out = tmp_path / "ml-artifacts"
    out.mkdir()
    (out / "keep.txt").write_text("the previous model")
    before = tree(out)
    with pytest.raises(InputError) as err:
        _train(bad_lake, out)
    assert needle in str(err.value), err.value
    assert err.value.hint
    assert tree(out) == before


def test_a_dataset_without_a_needed_column_names_it(tmp_path: Path, lake: Path) -> None:
    broken = tmp_path / "lake"
    shutil.copytree(lake / DATASET, broken / DATASET)
    for f in (broken / DATASET).rglob("*.parquet"):
        table = pa.parquet.read_table(f).drop_columns(["MSRP"])
        pa.parquet.write_table(table, f)
    with pytest.raises(InputError, match=r"lacks a column the model needs.*MSRP"):
        _train(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()
