"""The numpy towers (serving) agree with the torch towers (training) to 1e-5, and the
encoders fitted at training time treat unknown and missing values as documented."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipe.inference.features import Encoder
from recpipe.inference.towers import Towers
from recpipe.training.model import TwoTower, torch


def test_encoder_one_hot_ignores_unknown_and_fills_missing_numbers() -> None:
    enc = Encoder.fit({"city": ["Nantes", "Lyon", "Nantes", "Köln"], "credit": [10.0, None, 30.0, 20.0]},
                      ["city"], ["credit"])
    assert enc.vocabularies == {"city": ["Köln", "Lyon", "Nantes"]}
    assert enc.scalers["credit"]["mean"] == pytest.approx(20.0)
    x = enc.encode({"city": ["Lyon", "Atlantis", None], "credit": [30.0, None, 10.0]})
    assert x.dtype == np.float32 and x.shape == (3, 4)
    assert x[0, :3].tolist() == [0, 1, 0]
    assert x[1, :3].tolist() == [0, 0, 0] and x[2, :3].tolist() == [0, 0, 0]  # unknown, null: ignored
    assert x[1, 3] == 0.0  # missing number → the training mean → 0
    assert x[0, 3] == pytest.approx(10 / enc.scalers["credit"]["std"])
    again = Encoder.from_json(json.loads(json.dumps(enc.to_json())))
    assert again == enc and enc.input_names == ["city=Köln", "city=Lyon", "city=Nantes", "credit"]
    arrow = enc.encode({"city": pa.chunked_array([["Lyon"], ["Atlantis"], [None]]),
                        "credit": pa.array([30.0, None, 10.0])})
    assert np.array_equal(arrow, x)


def test_a_constant_number_does_not_divide_by_zero() -> None:
    enc = Encoder.fit({"q": [5, 5, 5]}, [], ["q"])
    assert enc.scalers["q"]["std"] == 1.0 and enc.encode({"q": [5, 7]})[:, 0].tolist() == [0.0, 2.0]


def _torch_embeddings(model: TwoTower, xu: np.ndarray, xi: np.ndarray, uid=None, iid=None):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        model.eval()
        u = model.user_embedding(torch.from_numpy(xu), None if uid is None else torch.from_numpy(uid))
        i = model.item_embedding(torch.from_numpy(xi), None if iid is None else torch.from_numpy(iid))
    return u.numpy(), i.numpy()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), user_width=st.integers(1, 40), item_width=st.integers(1, 40),
       hidden=st.lists(st.integers(1, 96), min_size=0, max_size=3), hybrid=st.booleans(),
       scale=st.sampled_from([0.01, 1.0, 50.0]), id_dim=st.sampled_from([1, 4, 32]))
def test_numpy_towers_match_torch_on_random_inputs(seed: int, user_width: int, item_width: int,
                                                   hidden: list[int], hybrid: bool, scale: float, id_dim: int) -> None:
    """Content towers, and towers with id embeddings of the rating objective's rank (1) or the
    retrieval objective's (32): the numpy form reproduces torch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_users, n_items = 7, 5
    model = TwoTower(user_width, item_width, hidden=tuple(hidden), user_ids=n_users if hybrid else 0,
                     item_ids=n_items if hybrid else 0, id_dim=id_dim)
    if hybrid:  # ids' embeddings of a trained size, not the tiny initial ones
        with torch.no_grad():
            model.user_id.table.weight[:-1].normal_(0, 1)
            model.item_id.table.weight[:-1].normal_(0, 1)
    user_ids = np.arange(1000, 1000 + n_users)
    item_ids = np.array([f"S{k}_1" for k in range(n_items)])
    towers = model.to_numpy(user_ids if hybrid else None, item_ids if hybrid else None)
    towers = Towers.from_arrays(towers.arrays())
    xu = (rng.normal(size=(32, user_width)) * scale).astype(np.float32)
    xi = (rng.normal(size=(32, item_width)) * scale).astype(np.float32)
    # rows 0..n-1 carry a known id, the rest an id the model never saw (the padding row)
    uid = np.minimum(np.arange(32), n_users).astype(np.int64)
    iid = np.minimum(np.arange(32), n_items).astype(np.int64)
    tu, ti = _torch_embeddings(model, xu, xi, uid if hybrid else None, iid if hybrid else None)
    ask_users = [int(user_ids[k]) if k < n_users else -1 for k in range(32)]
    ask_items = [str(item_ids[k]) if k < n_items else "new" for k in range(32)]
    nu, ni = towers.user(xu, ask_users), towers.item(xi, ask_items)
    assert np.abs(tu - nu).max() <= 1e-5 and np.abs(ti - ni).max() <= 1e-5
    assert np.allclose(np.linalg.norm(nu, axis=1), 1, atol=1e-5)


def test_a_tower_reads_compact_inputs_a_block_at_a_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Training keeps every customer's inputs compact (``Encoded``): the tower makes them dense
    a block at a time, with the same embeddings as from the dense matrix, ids and all."""
    from recpipe.inference import towers as towers_module

    monkeypatch.setattr(towers_module, "ROWS_AT_ONCE", 4)
    cities = ["Nantes", "Paris", None, "Lyon", "Oslo", "Paris", "Nantes", "Rome", "Lyon", "Paris"]
    columns = {"city": cities, "country": ["FR"] * 9 + ["NO"], "creditLimit": [float(k) for k in range(10)]}
    enc = Encoder.fit({"city": pa.array(["Nantes", "Paris", "Lyon"]), "country": pa.array(["FR", "NO"]),
                       "creditLimit": pa.array([1.0, 5.0])}, ["city", "country"], ["creditLimit"])
    torch.manual_seed(3)
    model = TwoTower(enc.width, 2, user_ids=4, item_ids=1)
    towers = model.to_numpy(np.array([100, 101, 102, 103]), np.array(["a"]))
    ids = np.arange(98, 108)  # two unknown ids, four known, four unknown
    dense, compact = towers.user(enc.encode(columns), ids), towers.user(enc.compact(columns), ids)
    np.testing.assert_array_equal(dense, compact)
    assert dense.shape == (10, 32)


def test_numpy_towers_load_without_pickle(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = TwoTower(3, 4, user_ids=2, item_ids=2)
    model.to_numpy(np.array([7, 9]), np.array(["a", "b"])).save(tmp_path / "t.npz")
    towers = Towers.load(tmp_path / "t.npz")  # np.load(allow_pickle=False) inside
    assert towers.hybrid and towers.dim == 32 and towers.user.ids.tolist() == [7, 9]


def test_serving_modules_never_import_torch_or_training() -> None:
    code = ("import sys; import recpipe.inference.towers, recpipe.inference.features, recpipe.inference.model, "
            "recpipe.inference.recommend, recpipe.api.app, recpipe.api.lambda_handler, recpipe.vectors.query; "
            "assert 'torch' not in sys.modules, 'torch was imported'; "
            "assert not [m for m in sys.modules if m.startswith('recpipe.training')], 'training was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
