"""Backends, one class per module, opened by URL in exactly one place: this module.

Which class opens which URL scheme is data: ``recpipe.config.ROLES`` maps each role's
schemes to ``"module:Class"``, and the same table validates the settings. Classes (and the
optional drivers they need) are imported only when a URL of theirs is opened; a missing
driver fails with an install hint (:class:`recpipe.errors.MissingDependencyError`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from recpipe.adapters.base import Lake, SourceDatabase, Stream, VectorDatabase
from recpipe.config import ROLES, check_scheme, mask_url
from recpipe.errors import ConfigError

if TYPE_CHECKING:
    from recpipe.config import Settings

__all__ = ["Backends", "Lake", "SourceDatabase", "Stream", "VectorDatabase", "adapter_class", "open_artifacts", "open_lake",
           "open_recommendations", "open_source", "open_stream", "open_vectors"]


def adapter_class(role: str, url: str, setting: str) -> Any:
    """The class that opens ``url`` for ``role`` (a field of ``recpipe.config.ROLES``)."""
    r = ROLES[role]
    target = (r.backends or {})[check_scheme(r, url, setting)]
    if target is None:
        raise ConfigError(f"{setting}={mask_url(url)!r}: the {r.what} has no adapter in this version of recpipe",
                          hint="upgrade recpipe, or leave the setting at its default")
    module, name = target.split(":")
    return getattr(importlib.import_module(f"recpipe.adapters.{module}"), name)


def open_source(url: str, *, setting: str = "RECPIPE_SOURCE_URL") -> SourceDatabase:
    """The source-database adapter for a SQLAlchemy-style URL."""
    return adapter_class("source_url", url, setting)(url, setting=setting)


def open_lake(url: str, *, setting: str = "RECPIPE_LAKE_URL") -> Lake:
    """The lake adapter for a directory, ``file://`` URL or ``s3://bucket/prefix``."""
    return adapter_class("lake_url", url, setting)(url, setting=setting)


def open_artifacts(url: str, *, setting: str = "RECPIPE_ARTIFACTS_URL") -> tuple[Lake, str]:
    """Where model artifacts are published: ``(store, name)``, the artifacts being dataset
    ``name`` of ``store`` (see each lake class's ``for_artifacts``)."""
    store, name = adapter_class("artifacts_url", url, setting).for_artifacts(url, setting=setting)
    return store, name


def open_stream(url: str, *, setting: str = "RECPIPE_STREAM_URL") -> Stream:
    """The event stream: a directory (the embedded log) or ``kinesis://stream-name``."""
    return adapter_class("stream_url", url, setting)(url, setting=setting)


def open_recommendations(url: str, *, setting: str = "RECPIPE_RECOMMENDATIONS_URL") -> Lake:
    """Where the delivery writes enriched records: a directory or ``s3://bucket/prefix``."""
    return adapter_class("recommendations_url", url, setting)(url, setting=setting)


def open_vectors(url: str, *, setting: str = "RECPIPE_VECTORS_URL") -> VectorDatabase:
    """The vector database: ``pgserver:///path`` (embedded) or ``postgresql://…``."""
    return adapter_class("vectors_url", url, setting)(url, setting=setting)


class Backends:
    """The composition root: every backend of one ``Settings``, opened by its role with the
    setting's name (its flag or variable) for errors. Entry points make one and pass the
    adapters down; stage code never reads settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _open(self, field: str) -> Any:
        url, setting = getattr(self.settings, field), self.settings.setting(field)
        return adapter_class(field, url, setting)(url, setting=setting)

    def source(self) -> SourceDatabase:
        return self._open("source_url")

    def lake(self) -> Lake:
        return self._open("lake_url")

    def artifacts(self) -> tuple[Lake, str]:
        return open_artifacts(self.settings.artifacts_url, setting=self.settings.setting("artifacts_url"))

    def stream(self) -> Stream:
        return self._open("stream_url")

    def recommendations(self) -> Lake:
        return self._open("recommendations_url")

    def vectors(self) -> VectorDatabase:
        return self._open("vectors_url")
