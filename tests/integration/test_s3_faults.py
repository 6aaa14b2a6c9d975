"""S3 as it fails in production, from a fault-injecting proxy in front of moto's server:
throttling (503 SlowDown), 500s and connections dropped mid-upload are retried and the result
is the same as without faults; an outage during a publish (longer than the retries) is one
clear error, and the previous version is put back: nothing half published stays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from recpipe.adapters import open_artifacts, open_lake, open_source
from recpipe.contracts.dataset import DatasetManifest
from recpipe.errors import ServiceError
from recpipe.etl.pipeline import run as run_etl
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop
from recpipe.training.fit import FitOptions
from recpipe.training.pipeline import TrainOptions
from recpipe.training.pipeline import run as train
from tests.support.fault_proxy import fault_proxy

pytestmark = pytest.mark.integration
KINDS = ("503", "500", "drop")


def _shop(tmp_path: Path, seed: int, customers: int = 150) -> Any:
    shop = generate_shop(ShopSpec(customers=customers, products=30, seed=seed))
    db = open_source(f"sqlite:///{tmp_path / f'src-{seed}.db'}")
    write_shop(db, shop)
    return db, shop


def _objects(bucket: str, prefix: str) -> dict[str, str]:
    s3 = boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def test_throttling_500s_and_dropped_uploads_are_retried(s3_bucket: str, s3_server: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    db, shop = _shop(tmp_path, seed=3)
    clean = run_etl(db, open_lake(f"s3://{s3_bucket}/clean"), generator=shop.params)
    every = 4  # one request in four fails, in turn throttled, a 500, a dropped connection
    with fault_proxy(s3_server, lambda n, method, path: KINDS[(n // every) % 3] if n % every == 0 else None
                     ) as (url, proxy):
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        faulty = run_etl(db, open_lake(f"s3://{s3_bucket}/faulty"), generator=shop.params)
        store, name = open_artifacts(f"s3://{s3_bucket}/art")
        model = train(open_lake(f"s3://{s3_bucket}/faulty"), store, name,
                      TrainOptions(fit=FitOptions(max_epochs=1, patience=1)))
    print(f"S3 faults injected and survived: {dict(proxy.injected)} in {proxy.count} requests")
    assert all(proxy.injected[k] > 0 for k in KINDS), proxy.injected
    assert faulty.fingerprint == clean.fingerprint and faulty.rows == clean.rows  # nothing lost, nothing twice
    assert model.counts["ratings"] == clean.rows


def test_an_outage_during_a_publish_puts_the_previous_version_back(s3_bucket: str, s3_server: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first_db, first_shop = _shop(tmp_path, seed=4)
    lake_url = f"s3://{s3_bucket}/lake"
    first = run_etl(first_db, open_lake(lake_url), generator=first_shop.params)
    before = _objects(s3_bucket, "lake/")
    second_db, second_shop = _shop(tmp_path, seed=5, customers=200)
    puts: dict[str, Any] = {"n": 0, "victim": None, "failed": 0}

    def outage(n: int, method: str, path: str) -> str | None:
        """From the 40th PUT of the new version on, one object fails every try the client makes
        (AWS_MAX_ATTEMPTS of them): an outage longer than the retries, whatever the threads' order
        and the retries' jitter. Its copy aside (under _staging/) and its restoring go through."""
        if method != "PUT" or "/_staging/" in path:
            return None
        puts["n"] += 1
        if puts["victim"] is None and puts["n"] >= 40:
            puts["victim"] = path
        if path == puts["victim"] and puts["failed"] < 2:
            puts["failed"] += 1
            return "500"
        return None

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    with fault_proxy(s3_server, outage) as (url, proxy):
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        with pytest.raises(ServiceError, match="S3 error publishing ratings_ml_training at s3://"):
            run_etl(second_db, open_lake(lake_url), generator=second_shop.params)
    assert proxy.injected["500"] == 2 and puts["n"] > 40, (proxy.injected, puts)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    assert _objects(s3_bucket, "lake/") == before  # the previous version, byte for byte; no staging left
    assert DatasetManifest.read(open_lake(lake_url)).fingerprint == first.fingerprint
    again = run_etl(second_db, open_lake(lake_url), generator=second_shop.params)  # the next run succeeds
    assert again.fingerprint != first.fingerprint
