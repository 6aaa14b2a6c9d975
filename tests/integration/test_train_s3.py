"""Training from an S3 lake into S3 artifacts, against a real S3 API (moto's server)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from recpipe.adapters import open_artifacts, open_lake, open_source, scan
from recpipe.etl.pipeline import run as run_etl
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop
from recpipe.training import artifacts
from recpipe.training.fit import FitOptions
from recpipe.training.pipeline import TrainOptions
from recpipe.training.pipeline import run as train
from recpipe.training.reading import read_ratings
from tests.support.fault_proxy import fault_proxy

pytestmark = pytest.mark.integration


def test_train_reads_an_s3_lake_and_publishes_to_an_s3_bucket(s3_bucket: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import boto3

    shop = generate_shop(ShopSpec(customers=120, products=30, seed=5))
    db = open_source(f"sqlite:///{tmp_path / 'src.db'}")
    write_shop(db, shop)
    lake = open_lake(f"s3://{s3_bucket}/lake")
    run_etl(db, lake, generator=shop.params)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=f"{s3_bucket}-art")
    # the seed's layout: a whole bucket of artifacts, with something stale in it
    s3.put_object(Bucket=f"{s3_bucket}-art", Key="embeddings/old.csv", Body=b"stale")
    store, name = open_artifacts(f"s3://{s3_bucket}-art")
    manifest = train(lake, store, name, TrainOptions(fit=FitOptions(max_epochs=3, patience=1))).to_json()
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=f"{s3_bucket}-art")["Contents"]}
    published = {artifacts.ITEM_EMBEDDINGS, artifacts.USER_EMBEDDINGS, artifacts.ITEM_ATTRIBUTES, artifacts.STATE_DICT,
                 artifacts.TOWERS, artifacts.MANIFEST, artifacts.LOSS_PLOT, *artifacts.SCALERS.values()}
    registered = f"_versions/{manifest['model_version']}/"  # the registry's whole copy, beside the seed's layout
    assert {k for k in keys if not k.startswith("_versions/")} == published
    assert {k.removeprefix(registered) for k in keys if k.startswith("_versions/")} == published
    stored = json.loads(s3.get_object(Bucket=f"{s3_bucket}-art", Key=artifacts.MANIFEST)["Body"].read())
    assert stored["model_version"] == manifest["model_version"]
    assert stored["data"]["rows"] == manifest["counts"]["ratings"] > 0
    body = s3.get_object(Bucket=f"{s3_bucket}-art", Key=artifacts.USER_EMBEDDINGS)["Body"].read().decode()
    assert body.splitlines()[0] == "id,embedding" and len(body.splitlines()) == manifest["counts"]["users"] + 1
    again = train(lake, store, name, TrainOptions(fit=FitOptions(max_epochs=1, patience=1, seed=2))).to_json()
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=f"{s3_bucket}-art")["Contents"]}
    assert {k for k in keys if k.startswith(registered)} and {k for k in keys if k.startswith(
        f"_versions/{again['model_version']}/")}  # a publish keeps the registry: both versions are there


def test_an_s3_lake_is_read_in_groups_of_named_files_a_get_each(s3_bucket: str, s3_server: str, tmp_path,  # type: ignore[no-untyped-def]
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Named files on S3 cost a GET each, no HEAD and no listing per group, and read as a local lake reads."""
    shop = generate_shop(ShopSpec(customers=90, products=20, seed=8))
    db = open_source(f"sqlite:///{tmp_path / 'src.db'}")
    write_shop(db, shop)
    run_etl(db, open_lake(f"s3://{s3_bucket}/lake"), generator=shop.params)
    run_etl(db, open_lake(str(tmp_path / "lake")), generator=shop.params)
    monkeypatch.setattr(scan, "FILES_AT_ONCE", 7)  # 90 customers' files: 13 groups
    asked: Counter[str] = Counter()

    def count(n: int, method: str, path: str) -> None:
        asked[method] += "/ratings_ml_training/customerNumber" in path  # "=" may come as %3D
        asked["LIST"] += method == "GET" and "list-type=2" in path

    with fault_proxy(s3_server, count) as (url, _):
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        remote = read_ratings(open_lake(f"s3://{s3_bucket}/lake"))
    local = read_ratings(open_lake(str(tmp_path / "lake")))
    files = len(scan.data_files(open_lake(str(tmp_path / "lake")), "ratings_ml_training"))
    assert files > 7 * 10 and asked["HEAD"] == 0, asked
    assert asked["GET"] == files + 1, asked  # each file once, and the first once more for the schema
    assert asked["LIST"] == 1, asked
    assert remote.users.equals(local.users) and remote.items.equals(local.items)
    for name in ("user", "item", "rating", "order"):
        assert np.array_equal(getattr(remote, name), getattr(local, name), equal_nan=True), name
