"""Kinesis Data Streams (``kinesis://stream-name``) through boto3; the endpoint, region and
credentials come from the usual AWS settings (``AWS_ENDPOINT_URL`` for a local server).

``put`` sends PutRecords batches of at most 500 records / 5 MiB and retries the records a call
refuses (throttling, internal errors) with exponential back-off and full jitter. ``shards``
lists every shard with its parents, parents first, so a reader finishes a parent before its
children after a resharding.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from recpipe.adapters.base import Shard, StreamRecord
from recpipe.contracts.limits import (
    KINESIS_MAX_RECORD_BYTES,
    KINESIS_PUT_MAX_BYTES,
    KINESIS_PUT_MAX_RECORDS,
)
from recpipe.errors import ConfigError, InputError, ServiceError, require

RETRIES = 10
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0


def backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, …): full jitter, capped."""
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempt))  # noqa: S311 (jitter)


class KinesisStream:
    def __init__(self, url: str, *, setting: str = "RECPIPE_STREAM_URL") -> None:
        self.name = url.split("://", 1)[1].strip("/")
        if not self.name or "/" in self.name:
            raise ConfigError(f"{setting}={url!r} names no stream", hint="use kinesis://stream-name")
        self.url = f"kinesis://{self.name}"
        self.setting = setting
        self._client: Any = None
        self._iterators: dict[str, tuple[str | None, str]] = {}  # shard -> (after, iterator)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = require("boto3", "aws", "A kinesis:// stream").client("kinesis")
        return self._client

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        """A Kinesis call; throttling is retried, anything else is one clear error."""
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(1, RETRIES + 1):
            try:
                return fn(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("ProvisionedThroughputExceededException", "LimitExceededException",
                            "ThrottlingException") and attempt < RETRIES:
                    time.sleep(backoff(attempt))
                    continue
                if code == "ResourceNotFoundException":
                    raise ServiceError(f"there is no Kinesis stream {self.name!r} ({what})",
                                       hint=f"create it, or point {self.setting} at one that exists") from exc
                raise ServiceError(f"Kinesis refused {what} on {self.name!r}: {code or exc}",
                                   hint="check the AWS credentials, region and permissions") from exc
            except BotoCoreError as exc:
                raise ServiceError(f"cannot reach Kinesis for {what} on {self.name!r}: {exc}",
                                   hint="check AWS_ENDPOINT_URL / the region and the network") from exc
        raise AssertionError("unreachable")

    # -- the Stream protocol ---------------------------------------------------------------
    def put(self, records: Sequence[tuple[str, bytes]]) -> list[str]:
        out: list[str] = [""] * len(records)
        for key, data in records:  # all checked before anything is sent
            if not key or len(key) > 256:
                raise InputError(f"a partition key must be 1-256 characters (got {len(key)})")
            if len(data) + len(key.encode()) > KINESIS_MAX_RECORD_BYTES:
                raise InputError(f"a record of {len(data):,} bytes is larger than a Kinesis record may be "
                                 f"({KINESIS_MAX_RECORD_BYTES:,} with its key)")
        batch: list[int] = []
        size = 0
        for i, (key, data) in enumerate(records):
            n = len(data) + len(key.encode())
            if batch and (len(batch) == KINESIS_PUT_MAX_RECORDS or size + n > KINESIS_PUT_MAX_BYTES):
                self._put_batch(records, batch, out)
                batch, size = [], 0
            batch.append(i)
            size += n
        if batch:
            self._put_batch(records, batch, out)
        return out

    def _put_batch(self, records: Sequence[tuple[str, bytes]], batch: list[int], out: list[str]) -> None:
        pending = batch
        for attempt in range(1, RETRIES + 1):
            resp = self._call("PutRecords", self.client.put_records, StreamName=self.name,
                              Records=[{"Data": records[i][1], "PartitionKey": records[i][0]} for i in pending])
            failed = []
            for i, result in zip(pending, resp["Records"], strict=True):
                if "SequenceNumber" in result and not result.get("ErrorCode"):
                    out[i] = result["SequenceNumber"]
                else:
                    failed.append(i)
            if not failed:
                return
            pending = failed
            time.sleep(backoff(attempt))
        raise ServiceError(f"Kinesis refused {len(pending)} record(s) {RETRIES} times on {self.name!r}",
                           hint="the stream is throttled: add shards or lower the rate")

    def identity(self) -> str:
        """The stream's ARN and when it was created: a stream deleted and made again under the
        same name is another stream, whose sequence numbers a reader's positions do not fit."""
        summary = self._call("DescribeStreamSummary", self.client.describe_stream_summary,
                             StreamName=self.name)["StreamDescriptionSummary"]
        created = summary.get("StreamCreationTimestamp")
        return f"{summary.get('StreamARN', self.url)}@{created.isoformat() if created is not None else '?'}"

    def latest(self) -> dict[str, str]:
        """Kinesis gives no shard's head without reading it: the lag is left unknown."""
        return {}

    def shards(self) -> list[Shard]:
        found: list[Shard] = []
        kwargs: dict[str, Any] = {"StreamName": self.name}
        while True:
            resp = self._call("ListShards", self.client.list_shards, **kwargs)
            for s in resp["Shards"]:
                parents = tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)
                found.append(Shard(s["ShardId"], parents, "EndingSequenceNumber" in s["SequenceNumberRange"]))
            if not resp.get("NextToken"):
                break
            kwargs = {"NextToken": resp["NextToken"]}
        return _parents_first(found)

    def read(self, shard: str, after: str | None, limit: int) -> tuple[list[StreamRecord], bool]:
        cached = self._iterators.get(shard)
        if cached is not None and cached[0] == after:
            iterator = cached[1]
        else:
            start = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after} if after
                     else {"ShardIteratorType": "TRIM_HORIZON"})
            iterator = self._call("GetShardIterator", self.client.get_shard_iterator, StreamName=self.name,
                                  ShardId=shard, **start)["ShardIterator"]
        for _ in range(5):  # Kinesis may answer empty pages before reaching the records
            resp = self._call("GetRecords", self.client.get_records, ShardIterator=iterator, Limit=min(limit, 10_000))
            records = [StreamRecord(shard, r["SequenceNumber"], r["PartitionKey"], bytes(r["Data"]),
                                    int(r["ApproximateArrivalTimestamp"].timestamp() * 1000))
                       for r in resp["Records"]]
            nxt = resp.get("NextShardIterator")
            if nxt is None:  # a closed shard, read to its end
                self._iterators.pop(shard, None)
                return records, True
            iterator = nxt
            if records or not resp.get("MillisBehindLatest"):
                break
        self._iterators[shard] = (records[-1].sequence if records else after, iterator)
        return records, False


def _parents_first(shards: list[Shard]) -> list[Shard]:
    by_id = {s.id: s for s in shards}
    done: set[str] = set()
    out: list[Shard] = []

    def visit(s: Shard) -> None:
        if s.id in done:
            return
        done.add(s.id)
        for p in s.parents:
            if p in by_id:
                visit(by_id[p])
        out.append(s)

    for s in sorted(shards, key=lambda s: s.id):
        visit(s)
    return out
