"""The streaming stage's entry point (``run``: deliver the stream into the sink), and what
``recpipe stream status`` / ``tail`` read back."""

from __future__ import annotations

import json
from typing import Any

from recpipe.adapters.base import Lake, Stream
from recpipe.contracts.activity import SERVED_PREFIX
from recpipe.progress import SILENT, Progress
from recpipe.streaming.deliver import Delivery, DeliveryOptions, DeliveryResult, Transform
from recpipe.streaming.state import FAILED_PREFIX, STATE_PREFIX, DeliveryState


def run(stream: Stream, sink: Lake, transform: Transform, options: DeliveryOptions | None = None,
        progress: Progress = SILENT) -> DeliveryResult:
    """Deliver until stopped (SIGINT/SIGTERM) or, with ``options.until_idle``, until the
    stream has been quiet that long; what was read is delivered before returning."""
    delivery = Delivery(stream, sink, transform, options or DeliveryOptions(), progress)
    with delivery.stop_on_signals():
        return delivery.run()


def status(stream: Stream, sink: Lake, name: str = "recpipe") -> dict[str, Any]:
    """Per shard: the delivered position, the stream's head and the lag; the counts so far."""
    state = DeliveryState.read(sink, name) or DeliveryState()
    replaced = state.stream is not None and state.stream != stream.identity()
    if replaced:  # positions in another stream say nothing about this one
        state.positions, state.finished = {}, []
    heads = stream.latest()
    shards = []
    for shard in stream.shards():
        position, head = state.positions.get(shard.id), heads.get(shard.id)
        lag = int(head) - int(position or 0) if head is not None else None
        shards.append({"shard": shard.id, "position": position, "head": head, "lag": lag,
                       "finished": shard.id in state.finished})
    objects = [f for f in sink.list_files() if not f.startswith((STATE_PREFIX, SERVED_PREFIX))]
    return {"stream": stream.url, "sink": sink.url, "delivery": name, "shards": shards, "counts": state.counts.to_json(),
            "objects": sum(not f.startswith(FAILED_PREFIX) for f in objects),
            "failed_objects": sum(f.startswith(FAILED_PREFIX) for f in objects),
            "pending": state.pending is not None, "stream_replaced": replaced}


def tail(sink: Lake, n: int = 10) -> list[dict[str, Any]]:
    """The latest ``n`` enriched records (newest last), from the newest objects."""
    # names sort by hour, then by the second their buffer opened (YYYY/MM/dd/HH/<name>-1-<time>-<id>)
    keys = sorted(f for f in sink.list_files() if not f.startswith((STATE_PREFIX, FAILED_PREFIX, SERVED_PREFIX)))
    out: list[dict[str, Any]] = []
    for key in reversed(keys):
        lines = (sink.read_bytes(key) or b"").decode().splitlines()
        out = [json.loads(line) for line in lines[-(n - len(out)):]] + out
        if len(out) >= n:
            break
    return out[-n:]
