"""Firehose, locally: read the stream, buffer, transform, write objects by hour, exactly once.

The loop reads every shard it may (a child only once its parents are read to their end),
buffers records until ``buffer_bytes`` or ``buffer_seconds`` (Firehose's buffering hints),
invokes the transformation with a Firehose-shaped event (retried with back-off, as Firehose
retries a failed invocation), and writes

- the ``Ok`` records to ``YYYY/MM/dd/HH/<name>-1-YYYY-MM-dd-HH-mm-ss-<id>`` (UTC, by the
  arrival of the buffer's first record), newline-delimited JSON;
- the ``ProcessingFailed`` ones (or every record of an invocation that kept failing) to
  ``processing-failed/YYYY/MM/dd/HH/…`` as Firehose's error records (``attemptsMade``,
  ``arrivalTimestamp``, ``errorCode``, ``errorMessage``, ``attemptEndingTimestamp``, ``rawData``);
  ``Dropped`` records are counted.

Exactly once, across crashes: before invoking, the delivery records its intent (the exact
stream ranges of the buffer and the object names, derived from those ranges) in its state
file in the sink; after the objects are durably written it moves its positions past the
ranges. A restart that finds an intent re-reads exactly those ranges and writes whichever of
the named objects is missing. A crash at any point therefore loses nothing and duplicates
nothing. The state file is ``_recpipe/delivery/<name>.json`` in the sink.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from typing import Any

from recpipe.adapters.base import Lake, Shard, Stream, StreamRecord
from recpipe.contracts.limits import FIREHOSE_LAMBDA_RETRIES
from recpipe.errors import InputError, ServiceError
from recpipe.progress import SILENT, Progress
from recpipe.streaming.state import (
    FAILED_PREFIX,
    STATE_PREFIX,
    DamagedState,
    DeliveryState,
    Pending,
    another_delivery,
    delivery_names,
    state_path,
)

Transform = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, str]]]
SHARDS_EVERY_S = 10.0  # how often the shard list is refreshed (a resharding shows within this)
_NAMESPACE = uuid.UUID("6f1c3c2e-5a0b-4c59-9a55-9d0e7c2f1b11")


@dataclass(frozen=True)
class DeliveryOptions:
    name: str = "recpipe"  # the delivery stream's name: object names and the state file
    # Firehose's Lambda buffer takes 0.2-3 MB (1 MB by default), but the Lambda's answer may not
    # pass 6 MB and enrichment makes a record ~6x larger once base64-encoded: 0.25 MB keeps a
    # buffer's answer near 1.5 MB. The Terraform module sets the same hint.
    buffer_bytes: int = 250_000
    buffer_seconds: float = 1.0  # Firehose allows 0-900 s (60 by default); a laptop wants 1
    until_idle: float | None = None  # stop once nothing has arrived for this long (None: run until stopped)
    retry_seconds: float = 60.0  # how long a failing invocation is retried before its records fail
    read_limit: int = 1000  # records per read of a shard
    reset: bool = False  # give up saved positions that cannot be used (damaged, another stream)

    def check(self) -> None:
        if not 1 <= len(self.name) <= 64 or not all(c.isalnum() or c in "-_." for c in self.name):
            raise InputError(f"delivery name {self.name!r}: 1-64 letters, digits, '-', '_' or '.'")
        if not 0 < self.buffer_bytes <= 3_000_000:
            raise InputError(f"buffer size {self.buffer_bytes:,} bytes: Firehose's range is up to 3 MB")
        if not 0 <= self.buffer_seconds <= 900:
            raise InputError(f"buffer interval {self.buffer_seconds} s: Firehose's range is 0-900 s")


@dataclass(frozen=True)
class DeliveryResult:
    name: str
    stream: str
    sink: str
    counts: dict[str, int]  # since the delivery began (all runs)
    delivered: int  # records this run
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Invocation:
    """The transformation's answer to one buffer (None if it kept failing), after ``attempts``."""

    response: dict[str, Any] | None
    reasons: dict[str, str]  # why each ProcessingFailed record failed
    attempts: int
    error: str = ""  # the last failure, when there is no answer

    def sorted(self, batch: list[StreamRecord]) -> tuple[list[bytes], list[dict[str, Any]], int]:
        """The Ok records' data, the failed ones as Firehose's error records, and how many were
        Dropped; every record of a buffer whose invocation kept failing is failed."""
        now_ms = int(time.time() * 1000)
        if self.response is None:
            return [], [_error_record(r, self.attempts, "Lambda.FunctionError", self.error, now_ms) for r in batch], 0
        ok, failed, dropped = [], [], 0
        by_id = {f"{r.shard}:{r.sequence}": r for r in batch}
        for out in self.response["records"]:
            if out["result"] == "Ok":
                ok.append(base64.b64decode(out["data"]))
            elif out["result"] == "Dropped":
                dropped += 1
            else:
                failed.append(_error_record(by_id[out["recordId"]], self.attempts, "Lambda.ProcessingFailed",
                                            self.reasons.get(out["recordId"], "ProcessingFailed"), now_ms))
        return ok, failed, dropped


class Interrupted(Exception):
    """Stopped while the transformation was failing; the buffer is delivered on the next run."""


class Delivery:
    def __init__(self, stream: Stream, sink: Lake, transform: Transform, options: DeliveryOptions = DeliveryOptions(),
                 progress: Progress = SILENT) -> None:
        options.check()
        self.stream, self.sink, self.transform = stream, sink, transform
        self.options, self.progress = options, progress
        self.state_path = state_path(options.name)
        self.state = DeliveryState()  # read in run(), once this delivery holds the sink
        self.stopping = threading.Event()
        self._shards: list[Shard] = []
        self._listed = float("-inf")

    def _save(self) -> None:
        self.sink.write_bytes(self.state_path, json.dumps(self.state.to_json(), indent=1).encode())

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> DeliveryResult:
        started = time.monotonic()
        delivered = 0
        with self.sink.hold(f"{STATE_PREFIX}{self.options.name}.lock", f"delivery {self.options.name!r}"):
            self.state = self._checked_state()
            with suppress(Interrupted):
                delivered = self._loop()
        return DeliveryResult(self.options.name, self.stream.url, self.sink.url, self.state.counts.to_json(),
                              delivered, round(time.monotonic() - started, 3))

    def _checked_state(self) -> DeliveryState:
        """The saved state, if it belongs to this stream and this sink: a sink written by another
        delivery, objects without the state that wrote them, or positions in a stream that was
        made anew are refused (delivering would repeat or skip records), unless ``reset``."""
        name, reset = self.options.name, self.options.reset
        others = sorted({f.removeprefix(STATE_PREFIX).removesuffix(".json") for f in self.sink.list_files(STATE_PREFIX)
                         if f.endswith(".json")} - {name})
        if others:
            raise another_delivery(self.sink.url, others[0], name)
        identity = self.stream.identity()
        try:
            state = DeliveryState.read(self.sink, name)
        except DamagedState:
            if not reset:
                raise
            state = None
        if state is None:
            writers = delivery_names(self.sink.list_files())
            if writers - {name}:
                raise another_delivery(self.sink.url, sorted(writers - {name})[0], name)
            if writers and not reset:
                raise DamagedState(f"{self.sink.url} holds objects of delivery {name!r} but not its saved "
                                   f"positions ({self.state_path})")
            state = DeliveryState(stream=identity)
        elif state.stream not in (None, identity):
            if not reset:
                raise InputError(f"the stream {self.stream.url} is not the one delivery {name!r} read: it was made "
                                 "anew since, and the saved positions would skip or repeat its records",
                                 hint="if it was replaced on purpose, `recpipe stream deliver --reset` delivers it "
                                      "from its oldest record")
            state = DeliveryState(counts=state.counts, stream=identity)
        if reset:
            self.progress.status(f"delivery {name!r}: saved positions given up (--reset)")
        state.stream = identity
        return state

    def _loop(self) -> int:
        delivered = 0
        if self.state.pending is not None:
            delivered += self._finish_pending()
        cursor = dict(self.state.positions)
        ended: set[str] = set()
        last_arrival = time.monotonic()
        while not self.stopping.is_set():
            batch: list[StreamRecord] = []
            size, opened = 0, time.monotonic()
            while True:  # at least one read: a 0 s buffer (Firehose allows it) delivers what each read finds
                got = self._read_round(cursor, ended)
                batch += got
                size += sum(len(r.data) for r in got)
                if got:
                    last_arrival = time.monotonic()
                if size >= self.options.buffer_bytes or time.monotonic() - opened >= self.options.buffer_seconds:
                    break
                if not got:
                    if self.stopping.is_set() or self._idle(last_arrival):
                        break
                    self.stopping.wait(0.05)
            chunks = _chunks(batch, self.options.buffer_bytes)  # a read can overshoot the buffer
            for n, chunk in enumerate(chunks, 1):
                delivered += self._deliver(chunk, ended if n == len(chunks) else set())
            if not batch and self._idle(last_arrival):
                break
        return delivered

    def _idle(self, last_arrival: float) -> bool:
        wait = self.options.until_idle
        return wait is not None and time.monotonic() - last_arrival >= wait

    def _read_round(self, cursor: dict[str, str], ended: set[str]) -> list[StreamRecord]:
        """One read of each shard that may be read now."""
        out: list[StreamRecord] = []
        done = set(self.state.finished) | ended
        shards = self._current_shards(ended)
        present = {s.id for s in shards}
        for shard in shards:
            if shard.id in done or any(p in present and p not in done for p in shard.parents):
                continue
            records, at_end = self.stream.read(shard.id, cursor.get(shard.id), self.options.read_limit)
            if records:
                cursor[shard.id] = records[-1].sequence
            if at_end:
                ended.add(shard.id)
            out += records
        return out

    def _current_shards(self, ended: set[str]) -> list[Shard]:
        """The stream's shards, listed again every ``SHARDS_EVERY_S`` or once a shard has
        ended (its children appear then), not on every read (ListShards is a call on Kinesis)."""
        if time.monotonic() - self._listed >= SHARDS_EVERY_S or not ended <= {s.id for s in self._shards if s.closed}:
            self._shards, self._listed = self.stream.shards(), time.monotonic()
        return self._shards

    # -- one buffer -------------------------------------------------------------------------------
    def _deliver(self, batch: list[StreamRecord], ended: set[str]) -> int:
        ranges: dict[str, list[str | None]] = {}
        for r in batch:
            ranges.setdefault(r.shard, [self.state.positions.get(r.shard), r.sequence])[1] = r.sequence
        first = min(r.arrival_ms for r in batch)
        ident = uuid.uuid5(_NAMESPACE, json.dumps({"name": self.options.name, "ranges": ranges}, sort_keys=True))
        when = dt.datetime.fromtimestamp(first / 1000, dt.UTC)
        stem = f"{when:%Y/%m/%d/%H}/{self.options.name}-1-{when:%Y-%m-%d-%H-%M-%S}-{ident}"
        # closed shards read to their end: every record they had is in this buffer or delivered
        closing = sorted(ended - set(self.state.finished))
        self.state.pending = Pending(ranges, stem, FAILED_PREFIX + stem, closing)
        self._save()  # the intent: a crash from here on is finished by _finish_pending
        return self._write(batch, finishing=False)

    def _finish_pending(self) -> int:
        """Deliver exactly the records of the intent a crash left behind."""
        assert self.state.pending is not None  # noqa: S101 (run() calls this only then)
        batch: list[StreamRecord] = []
        for shard, (after, last) in self.state.pending.ranges.items():
            position = after
            while position is None or int(position) < int(last or 0):
                records, _ = self.stream.read(shard, position, self.options.read_limit)
                if not records:
                    raise ServiceError(f"the stream no longer holds records {after}..{last} of shard {shard}",
                                       hint="they passed the stream's retention before delivery finished")
                keep = [r for r in records if int(r.sequence) <= int(last or 0)]
                batch += keep
                position = records[-1].sequence
        return self._write(batch, finishing=True)

    def _write(self, batch: list[StreamRecord], *, finishing: bool) -> int:
        """Transform and write ``batch``, then move the positions past it. ``finishing`` a
        crashed run's intent, an object it already wrote is not written again; a fresh
        intent's names are new, so nothing is listed."""
        pending = self.state.pending
        assert pending is not None  # noqa: S101 (the intent is saved before every write)
        answer = self._invoke(batch)
        ok, failed, dropped = answer.sorted(batch)
        existing = set()
        if finishing:
            existing = set(self.sink.list_files(pending.ok.rsplit("/", 1)[0])) | set(
                self.sink.list_files(pending.failed.rsplit("/", 1)[0]))
        if ok and pending.ok not in existing:
            self.sink.write_bytes(pending.ok, b"".join(ok))
        if failed and pending.failed not in existing:
            self.sink.write_bytes(pending.failed, "".join(json.dumps(f) + "\n" for f in failed).encode())
        for shard, (_after, last) in pending.ranges.items():
            if last is not None:
                self.state.positions[shard] = last
        self.state.finished = sorted(set(self.state.finished) | set(pending.closing))
        self.state.counts.add(ok=len(ok), failed=len(failed), dropped=dropped, attempts=answer.attempts)
        self.state.pending = None
        self._save()
        self.progress.advance("delivered", len(batch))
        return len(batch)

    def _invoke(self, batch: list[StreamRecord]) -> Invocation:
        """The transformation's answer, retried with back-off for ``retry_seconds``
        (at least Firehose's 3 retries); None and the last error if it kept failing."""
        event = firehose_event(self.options.name, batch)
        deadline = time.monotonic() + self.options.retry_seconds
        attempt, error = 0, ""
        while True:
            attempt += 1
            try:
                response, reasons = self.transform(event)
                _check_response(event, response)
                return Invocation(response, reasons, attempt)
            except (ServiceError, InputError) as exc:
                error = str(exc)
            if attempt > FIREHOSE_LAMBDA_RETRIES and time.monotonic() >= deadline:
                return Invocation(None, {}, attempt, error)
            self.progress.status(f"the transformation failed ({error}); retry {attempt}")
            if self.stopping.wait(min(5.0, 0.2 * 2 ** min(attempt, 5))):
                raise Interrupted  # the intent stays: the next run delivers these records

    @contextmanager
    def stop_on_signals(self) -> Any:
        """SIGINT / SIGTERM: finish the buffer being delivered, save the positions, return."""
        def stop(signum: int, frame: Any) -> None:
            self.stopping.set()

        if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
            yield self
            return
        old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)


def _chunks(batch: list[StreamRecord], limit: int) -> list[list[StreamRecord]]:
    """``batch`` cut, in order, into buffers of at most ``limit`` bytes (at least one record each)."""
    out: list[list[StreamRecord]] = []
    size = limit
    for r in batch:
        if size + len(r.data) > limit and (not out or out[-1]):
            out.append([])
            size = 0
        out[-1].append(r)
        size += len(r.data)
    return out


def firehose_event(name: str, batch: list[StreamRecord]) -> dict[str, Any]:
    """What Firehose sends its transformation Lambda for records from a Kinesis source."""
    return {"invocationId": str(uuid.uuid4()),
            "deliveryStreamArn": f"arn:aws:firehose:local:000000000000:deliverystream/{name}",
            "sourceKinesisStreamArn": f"arn:aws:kinesis:local:000000000000:stream/{name}",
            "region": "local",
            "records": [{"recordId": f"{r.shard}:{r.sequence}", "approximateArrivalTimestamp": r.arrival_ms,
                         "data": base64.b64encode(r.data).decode(),
                         "kinesisRecordMetadata": {"shardId": r.shard, "partitionKey": r.partition_key,
                                                   "approximateArrivalTimestamp": r.arrival_ms,
                                                   "sequenceNumber": r.sequence, "subsequenceNumber": ""}}
                        for r in batch]}


def _check_response(event: dict[str, Any], response: Any) -> None:
    """Firehose's own checks: one output per input recordId, known results, base64 data."""
    records = response.get("records") if isinstance(response, dict) else None
    wanted = [r["recordId"] for r in event["records"]]
    if not isinstance(records, list) or sorted(str(r.get("recordId")) for r in records) != sorted(wanted):
        raise InputError("the transformation did not answer exactly one record per input recordId")
    if any(r.get("result") not in ("Ok", "Dropped", "ProcessingFailed") for r in records):
        raise InputError("the transformation answered a result other than Ok, Dropped or ProcessingFailed")


def _error_record(record: StreamRecord, attempts: int, code: str, message: str, now_ms: int) -> dict[str, Any]:
    return {"attemptsMade": attempts, "arrivalTimestamp": record.arrival_ms, "errorCode": code,
            "errorMessage": message, "attemptEndingTimestamp": now_ms,
            "rawData": base64.b64encode(record.data).decode(), "lambdaArn": "recpipe.streaming.transform.handler"}
