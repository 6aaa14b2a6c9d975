"""The ETL against real backends: a MariaDB source and an S3 API lake (moto server)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from recpipe.adapters import open_lake, open_source
from recpipe.contracts.dataset import DATASET, MANIFEST, DatasetManifest
from recpipe.errors import InputError
from recpipe.etl.pipeline import run as run_etl
from recpipe.source.generate import ShopSpec, generate_shop
from recpipe.source.load import write_shop
from tests.support.etl import expected_training, read_training

pytestmark = pytest.mark.integration
SPEC = ShopSpec(customers=250, products=40, seed=21)


@pytest.fixture(scope="module")
def shop():
    return generate_shop(SPEC)


def test_mariadb_and_sqlite_sources_give_byte_identical_datasets(mysql_url: str, tmp_path: Path, shop) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'src.db'}"
    write_shop(open_source(sqlite_url), shop)
    write_shop(open_source(mysql_url), shop)
    from_sqlite = run_etl(open_source(sqlite_url), open_lake(str(tmp_path / "a")))
    from_mariadb = run_etl(open_source(mysql_url), open_lake(str(tmp_path / "b")))
    assert from_mariadb.fingerprint == from_sqlite.fingerprint
    assert read_training(tmp_path / "b" / DATASET).equals(expected_training(shop.tables))
    assert "***" in from_mariadb.source and "recpipe-test-pw" not in str(from_mariadb)


def test_s3_lake_publishes_the_same_files_and_manifest(s3_bucket: str, tmp_path: Path, shop) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    write_shop(open_source(url), shop)
    local = run_etl(open_source(url), open_lake(str(tmp_path / "lake")))
    lake = open_lake(f"s3://{s3_bucket}/shop/lake")
    remote = run_etl(open_source(url), lake)
    assert remote.fingerprint == local.fingerprint
    assert remote.location == f"s3://{s3_bucket}/shop/lake/{DATASET}"
    s3 = boto3.client("s3")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=s3_bucket, Prefix=f"shop/lake/{DATASET}/") for o in page.get("Contents", [])]
    local_files = sorted(p.relative_to(tmp_path / "lake" / DATASET).as_posix()
                         for p in (tmp_path / "lake" / DATASET).rglob("*") if p.is_file())
    assert sorted(k.removeprefix(f"shop/lake/{DATASET}/") for k in keys) == local_files
    assert DatasetManifest.read(lake).fingerprint == local.fingerprint
    # a second publish replaces the files and leaves none of the old version behind
    write_shop(open_source(url), generate_shop(ShopSpec(customers=40, products=10, seed=2)), replace=True)
    smaller = run_etl(open_source(url), lake)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"shop/lake/{DATASET}/")["Contents"]]
    assert len(keys) == smaller.files + 1  # + the manifest
    assert f"shop/lake/{DATASET}/{MANIFEST}" in keys


def test_a_missing_bucket_is_named(s3_bucket: str, tmp_path: Path, shop) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    write_shop(open_source(url), shop)
    with pytest.raises(InputError, match=r"the S3 bucket 'no-such-bucket-x' .* does not exist"):
        run_etl(open_source(url), open_lake("s3://no-such-bucket-x/lake"))


def test_remote_staging_as_the_glue_job_uses_it(s3_bucket: str, tmp_path: Path, shop) -> None:
    """Spark on a Glue cluster writes to an S3 staging prefix; publish checks and copies it.

    Here the 'engine output' is a local run's files put into the staging prefix together
    with the markers Spark/EMRFS leave (``_SUCCESS``, ``*_$folder$``)."""
    from recpipe.etl.pipeline import _check_files

    url = f"sqlite:///{tmp_path / 'src.db'}"
    write_shop(open_source(url), shop)
    local = run_etl(open_source(url), open_lake(str(tmp_path / "lake")))
    root = tmp_path / "lake" / DATASET
    lake = open_lake(f"s3://{s3_bucket}/glue")
    s3 = boto3.client("s3")
    with lake.stage(DATASET, remote=True) as staged:
        assert staged.location.startswith(f"s3://{s3_bucket}/glue/_staging/{DATASET}-")
        for path in root.rglob("*.parquet"):
            s3.upload_file(str(path), s3_bucket, f"{staged.prefix}/{path.relative_to(root).as_posix()}")
        s3.put_object(Bucket=s3_bucket, Key=f"{staged.prefix}/_SUCCESS", Body=b"")
        s3.put_object(Bucket=s3_bucket, Key=f"{staged.prefix}/customerNumber=103_$folder$", Body=b"")
        files = _check_files(staged, local.rows, None)
        assert files["files"] == local.files and files["partitions"] == local.partitions
        staged.write_text(MANIFEST, json.dumps({"rows": local.rows}))
        lake.publish(DATASET, staged)
        prefix = staged.prefix
    keys = sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=s3_bucket, Prefix="glue/") for o in page.get("Contents", []))
    assert not [k for k in keys if k.startswith(prefix)], "the staging prefix is cleared"
    assert not [k for k in keys if "_SUCCESS" in k or "$folder$" in k]
    assert len(keys) == local.files + 1
    assert lake.read_json(f"{DATASET}/{MANIFEST}") == {"rows": local.rows}
