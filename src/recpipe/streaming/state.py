"""What a delivery keeps in its sink between runs, as typed records: the positions it has
delivered up to, the intent of the buffer it is delivering (``Pending``), its ``Counts``, and
the identity of the stream the positions belong to. The file is
``_recpipe/delivery/<name>.json`` in the sink; a damaged one is an error, never a fresh start."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from recpipe.adapters.base import Lake
from recpipe.errors import InputError

FAILED_PREFIX = "processing-failed/"
STATE_PREFIX = "_recpipe/delivery/"
_OBJECT = re.compile(r"^(?:processing-failed/)?\d{4}/\d\d/\d\d/\d\d/(.+)-1-\d{4}(?:-\d\d){5}-[0-9a-f-]{36}$")


@dataclass
class Counts:
    """Since the delivery began (all runs)."""

    ok: int
    failed: int
    dropped: int
    objects: int
    invocations: int
    retries: int

    @classmethod
    def zero(cls) -> Counts:
        return cls(0, 0, 0, 0, 0, 0)

    def add(self, *, ok: int, failed: int, dropped: int, attempts: int) -> None:
        """One invocation's records, and the objects it wrote (one per kind that has records)."""
        self.ok += ok
        self.failed += failed
        self.dropped += dropped
        self.objects += bool(ok) + bool(failed)
        self.invocations += 1
        self.retries += attempts - 1

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Pending:
    """The intent of the buffer being delivered: its exact stream ranges and the names of the
    objects it becomes (derived from the ranges), saved before the transformation is invoked."""

    ranges: dict[str, list[str | None]]  # shard -> [delivered up to before it, its last sequence]
    ok: str  # the object of its Ok records
    failed: str  # the object of its failed records, under processing-failed/
    closing: list[str] = field(default_factory=list)  # closed shards this buffer reads to their end


@dataclass
class DeliveryState:
    positions: dict[str, str] = field(default_factory=dict)  # shard -> last delivered sequence
    finished: list[str] = field(default_factory=list)  # closed shards read to their end
    pending: Pending | None = None
    counts: Counts = field(default_factory=Counts.zero)
    stream: str | None = None  # the identity of the stream the positions belong to

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Any, where: str = "the delivery state") -> DeliveryState:
        """A saved state, checked whole: a damaged one is an error naming the file, never a
        fresh start (that would deliver everything again) nor a traceback."""
        from pydantic import TypeAdapter, ValidationError

        required = {"positions", "finished", "pending", "counts"}
        if not isinstance(doc, dict) or not required <= set(doc) or set(doc) - {*required, "stream"}:
            got = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
            raise DamagedState(f"{where} is damaged: expected the keys {sorted(required)}, found {got}")
        try:
            state = TypeAdapter(cls).validate_python(doc)  # lax: yet a number is no sequence
        except ValidationError as exc:
            problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].lower()}" for e in exc.errors()[:3])
            raise DamagedState(f"{where} is damaged: {problem}") from None
        if state.pending is not None and any(len(r) != 2 for r in state.pending.ranges.values()):
            raise DamagedState(f"{where} is damaged: its pending buffer's ranges are not [after, last] pairs")
        return state

    @classmethod
    def read(cls, sink: Lake, name: str) -> DeliveryState | None:
        """Delivery ``name``'s saved state in ``sink``, or None if there is none."""
        where = f"{sink.url}/{state_path(name)}"
        data = sink.read_bytes(state_path(name))
        if data is None:
            return None
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError):
            raise DamagedState(f"{where} is damaged: not JSON ({len(data):,} bytes)") from None
        return cls.from_json(doc, where)


class DamagedState(InputError):
    """The delivery's saved positions cannot be read: delivering would lose or repeat records."""

    def __init__(self, message: str) -> None:
        super().__init__(message, hint="restore the file, or give up its positions with `recpipe stream deliver "
                                       "--reset` (records delivered since it was last good may then repeat)")


def state_path(name: str) -> str:
    return f"{STATE_PREFIX}{name}.json"


def delivery_names(files: list[str]) -> set[str]:
    """The deliveries that wrote these objects of a sink (their names are in the object names)."""
    return {m.group(1) for f in files if (m := _OBJECT.match(f))}


def another_delivery(sink: str, other: str, name: str) -> InputError:
    return InputError(f"{sink} is written by delivery {other!r}: delivery {name!r} would write the same "
                      "events into it again", hint=f"deliver with --name {other}, or into another "
                                                   "RECPIPE_RECOMMENDATIONS_URL")
