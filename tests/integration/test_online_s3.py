"""The online ETL from an S3 sink into an S3 lake (moto's S3 server): what the delivery wrote
to the bucket becomes the same datasets as from a directory."""

from __future__ import annotations

from pathlib import Path

import boto3

from recpipe.adapters import open_lake, open_recommendations
from recpipe.contracts.activity import EVENTS, EVENTS_QUARANTINE, IMPRESSIONS
from recpipe.etl.online import read_online, run
from tests.support.delivered import shop_of_edges


def test_an_s3_sink_and_lake_give_what_directories_give(s3_bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "sink"
    shop_of_edges(local)
    s3 = boto3.client("s3")
    for path in local.rglob("*"):
        if path.is_file():
            s3.put_object(Bucket=s3_bucket, Key=f"recs/{path.relative_to(local).as_posix()}", Body=path.read_bytes())
    lake = open_lake(f"s3://{s3_bucket}/lake")
    manifest = run(open_recommendations(f"s3://{s3_bucket}/recs"), lake)
    directory = open_lake(str(tmp_path / "lake"))
    assert run(open_recommendations(str(local)), directory).totals() == manifest.totals()
    assert manifest.sink == f"s3://{s3_bucket}/recs"
    for dataset in (EVENTS, IMPRESSIONS, EVENTS_QUARANTINE):
        assert read_online(lake, dataset).equals(read_online(directory, dataset)), dataset
    assert run(open_recommendations(f"s3://{s3_bucket}/recs"), lake).hours == manifest.hours
