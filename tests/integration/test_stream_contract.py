"""One contract, two streams: the embedded log and Kinesis (moto's server on 127.0.0.1)."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recpipe.adapters import open_stream
from recpipe.adapters.base import Stream, StreamRecord
from recpipe.adapters.local_stream import shard_of
from recpipe.errors import InputError

pytestmark = pytest.mark.integration
SHARDS = 3


@pytest.fixture
def kinesis(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 Kinesis client on the test server (moto serves every API on one port)."""
    for key, value in {"AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    import boto3

    return boto3.client("kinesis")


def new_kinesis_stream(client: Any, shards: int = SHARDS) -> str:
    name = f"events-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return name


@pytest.fixture(params=["local", "kinesis"])
def stream(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stream]:
    if request.param == "local":
        yield open_stream(f"{tmp_path / 'stream'}?shards={SHARDS}")
    else:
        client = request.getfixturevalue("kinesis")
        yield open_stream(f"kinesis://{new_kinesis_stream(client)}")


def read_all(stream: Stream, positions: dict[str, str | None] | None = None) -> list[StreamRecord]:
    positions = dict(positions or {})
    out: list[StreamRecord] = []
    for shard in stream.shards():
        while True:
            records, ended = stream.read(shard.id, positions.get(shard.id), 100)
            if not records:
                break
            out += records
            positions[shard.id] = records[-1].sequence
            if ended:
                break
    return out


def test_every_record_once_in_order_per_key(stream: Stream) -> None:
    sent = [(f"session-{i % 40}", f"event {i}".encode()) for i in range(1_234)]  # > 2 PutRecords batches
    sequences = stream.put(sent)
    assert len(sequences) == len(sent) and all(sequences)
    got = read_all(stream)
    assert sorted(r.data for r in got) == sorted(d for _, d in sent)
    by_key: dict[str, list[StreamRecord]] = defaultdict(list)
    for r in got:
        by_key[r.partition_key].append(r)
    for key, records in by_key.items():
        assert len({r.shard for r in records}) == 1, key
        assert [r.data for r in records] == [d for k, d in sent if k == key]  # the order they were put
        assert [int(r.sequence) for r in records] == sorted(int(r.sequence) for r in records)
    assert len({r.shard for r in got}) == SHARDS  # 40 keys spread over every shard
    assert all(abs(r.arrival_ms / 1000 - time.time()) < 120 for r in got)


def test_a_reader_resumes_after_its_position(stream: Stream) -> None:
    stream.put([(f"k{i}", f"first {i}".encode()) for i in range(30)])
    first = read_all(stream)
    positions: dict[str, str | None] = {}
    for r in first:
        positions[r.shard] = r.sequence
    stream.put([(f"k{i}", f"second {i}".encode()) for i in range(30)])
    assert sorted(r.data for r in read_all(stream, positions)) == sorted(f"second {i}".encode() for i in range(30))


def test_a_record_too_large_is_refused_whole(stream: Stream) -> None:
    with pytest.raises(InputError, match=r"larger than a .*record may be"):
        stream.put([("k", b"x"), ("k", b"x" * (1024 * 1024))])
    assert read_all(stream) == []  # checked before anything is sent


def test_the_embedded_log_shards_keys_as_kinesis_does(kinesis: Any, tmp_path: Path) -> None:
    name = new_kinesis_stream(kinesis, shards=4)
    ranges = sorted((int(s["HashKeyRange"]["StartingHashKey"]), s["ShardId"])
                    for s in kinesis.list_shards(StreamName=name)["Shards"])
    remote = open_stream(f"kinesis://{name}")
    keys = [f"session-{i}" for i in range(200)]
    remote.put([(k, k.encode()) for k in keys])
    where = {r.partition_key: r.shard for r in read_all(remote)}
    assert all(ranges[shard_of(k, 4)][1] == where[k] for k in keys)


def _produce(url: str, tag: str) -> None:
    stream = open_stream(url)
    for i in range(0, 300, 50):
        stream.put([(f"{tag}-{j % 7}", f"{tag} {j}".encode()) for j in range(i, i + 50)])


def test_several_producer_processes_at_once(tmp_path: Path) -> None:
    url = f"{tmp_path / 'stream'}?shards=2"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_produce, args=(url, f"p{n}")) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    got = read_all(open_stream(url))
    assert sorted(r.data for r in got) == sorted(f"p{n} {j}".encode() for n in range(4) for j in range(300))
    for shard in {r.shard for r in got}:  # numbered without gaps or repeats
        seqs = [int(r.sequence) for r in got if r.shard == shard]
        assert seqs == list(range(1, len(seqs) + 1))


def test_the_embedded_log_keeps_its_retention(tmp_path: Path) -> None:
    stream = open_stream(f"{tmp_path / 'stream'}?retention_hours=0.0002")  # 0.72 s
    stream.put([("k", b"old")])
    time.sleep(1.0)
    stream.put([("k", b"new")])
    assert [r.data for r in read_all(stream)] == [b"new"]


def test_kinesis_retries_what_putrecords_refuses(kinesis: Any) -> None:
    """Throttled calls and partially failed batches are sent again until every record is in."""
    from botocore.exceptions import ClientError

    stream = open_stream(f"kinesis://{new_kinesis_stream(kinesis)}")
    real = stream.client  # type: ignore[attr-defined]
    calls = {"n": 0}

    class Flaky:
        """The real client, but the first call is throttled and the next refuses 3 records."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def put_records(self, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutRecords")
            if calls["n"] == 2:
                records = kwargs["Records"]
                answer = real.put_records(StreamName=kwargs["StreamName"], Records=records[3:])
                refused = [{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}] * 3
                return {"FailedRecordCount": 3, "Records": refused + answer["Records"]}
            return real.put_records(**kwargs)

    stream._client = Flaky()  # type: ignore[attr-defined]
    sequences = stream.put([(f"k{i}", f"r{i}".encode()) for i in range(10)])
    assert all(sequences) and calls["n"] == 3
    assert sorted(r.data for r in read_all(stream)) == sorted(f"r{i}".encode() for i in range(10))


def test_kinesis_lists_parent_shards_before_their_children(kinesis: Any) -> None:
    name = new_kinesis_stream(kinesis, shards=1)
    stream = open_stream(f"kinesis://{name}")
    stream.put([(f"k{i}", b"before") for i in range(20)])
    parent = kinesis.list_shards(StreamName=name)["Shards"][0]
    middle = (int(parent["HashKeyRange"]["StartingHashKey"]) + int(parent["HashKeyRange"]["EndingHashKey"])) // 2
    kinesis.split_shard(StreamName=name, ShardToSplit=parent["ShardId"], NewStartingHashKey=str(middle))
    stream.put([(f"k{i}", b"after") for i in range(20)])
    shards = stream.shards()
    assert shards[0].id == parent["ShardId"] and shards[0].closed
    assert all(parent["ShardId"] in s.parents for s in shards[1:]) and len(shards) == 3
    got = read_all(stream)
    assert [r.data for r in got] == [b"before"] * 20 + [b"after"] * 20  # parents read first


def test_connections_opening_a_new_log_at_once_do_not_trip_over_each_other(tmp_path: Path) -> None:
    """Switching a new log to WAL does not wait for a busy database: without the set-up lock,
    about one fresh log in 40 failed "database is locked" when readers and writers opened it
    together (a thread of `stream deliver` and a producer)."""
    import threading

    errors: list[Exception] = []
    for attempt in range(60):
        url = str(tmp_path / f"stream-{attempt}")
        streams = [open_stream(url) for _ in range(8)]
        together = threading.Barrier(len(streams))

        def use(n: int, stream: Stream, together: threading.Barrier = together) -> None:
            together.wait(30)
            try:
                if n % 2:
                    stream.put([(f"k{n}", b"x")])
                else:
                    stream.read(stream.shards()[0].id, None, 10)
            except Exception as exc:  # collected: an exception in a thread would otherwise vanish
                errors.append(exc)

        threads = [threading.Thread(target=use, args=(n, s)) for n, s in enumerate(streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(read_all(open_stream(url))) == 4
    assert errors == []
