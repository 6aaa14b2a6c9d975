"""The service's impression log: every list ``/recommendations`` answers, written into the
recommendations sink under ``served/YYYY/MM/DD/HH/`` (UTC) as newline-delimited JSON, which
``recpipe etl run`` reads into the lake's ``impressions`` dataset
(``recpipe.contracts.activity``).

A request only appends a tuple to a list; a writer thread turns the list into one object every
``every`` seconds (named by the host, the process and the time of its first line, as Firehose
names its objects). A write that fails is tried again with the next one; past ``MAX_PENDING``
lines the oldest are dropped and counted (``lost``). What a process had not written when it was
killed is lost: at most ``every`` seconds of impressions.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from typing import Any

from pydantic_core import to_json

from recpipe.adapters.base import Lake
from recpipe.contracts.activity import SERVED_PREFIX

log = logging.getLogger("recpipe.api.impressions")
MAX_PENDING = 200_000  # lines kept while the sink cannot be written


class ImpressionLog:
    def __init__(self, sink: Lake, *, every: float = 1.0) -> None:
        self.sink, self.every = sink, every
        self.pending: list[tuple[Any, ...]] = []
        self.writing = 0  # lists taken from ``pending`` by a write not finished yet
        self.written = self.lost = self.failures = 0
        self._lock = threading.Lock()  # the writer's: one flush at a time
        self._append = threading.Lock()  # held for an append or the swap (uncontended: ~0.1 µs)
        self._stop = threading.Event()
        self._name = f"{socket.gethostname()[:40]}-{os.getpid()}"
        self._thread = threading.Thread(target=self._run, name="recpipe-impressions", daemon=True)
        self._thread.start()

    def log(self, served_at: dt.datetime, recommendation_id: str, model_version: str, strategy: str,
            items: list[dict[str, Any]], customer_number: int | None = None, session_id: str | None = None,
            variant: str | None = None) -> None:
        """One answer (cheap: the request's thread only appends)."""
        with self._append:
            self.pending.append((served_at, recommendation_id, model_version, strategy, items, customer_number,
                                 session_id, variant))

    def flush(self) -> None:
        """Write what is pending as one object now (the writer does it every ``every`` seconds)."""
        with self._lock:
            with self._append:
                lines, self.pending = self.pending, []
                self.writing = len(lines)
            if not lines:
                return
            first = lines[0][0]
            key = (f"{SERVED_PREFIX}{first:%Y/%m/%d/%H}/{self._name}-{first:%Y-%m-%d-%H-%M-%S}-"
                   f"{uuid.uuid4().hex[:12]}.ndjson")
            body = b"".join(to_json({
                "recommendation_id": rid, "served_at": at.isoformat(), "customer_number": customer,
                "session_id": session, "model_version": model, "strategy": strategy, "variant": variant,
                "items": [i["id"] for i in items]}) + b"\n"
                for at, rid, model, strategy, items, customer, session, variant in lines)
            try:
                self.sink.write_bytes(key, body)
            except Exception as exc:  # kept for the next write; the service keeps answering
                self.failures += 1
                log.warning("impressions: cannot write %s (%s); %d line(s) kept for the next try", key, exc,
                            len(lines))
                with self._append:
                    self.pending[:0] = lines
                    self.writing = 0
                excess = len(self.pending) - MAX_PENDING
                if excess > 0:
                    with self._append:
                        del self.pending[:excess]
                    self.lost += excess
                return
            with self._append:
                self.written += len(lines)
                self.writing = 0

    def unwritten(self) -> int:
        """Lists shown and not written yet (pending, or in a write under way)."""
        with self._append:
            return len(self.pending) + self.writing

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.flush()
            except Exception:  # never let the writer die: the next round tries again
                log.exception("impressions: the writer failed")
