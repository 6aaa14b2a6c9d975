"""Backends, one class per module, chosen by URL in exactly one place: this module.

Optional drivers are imported lazily by the adapter that needs them, and a missing one
fails with an install hint (:class:`recpipe.errors.MissingDependencyError`).
"""

from __future__ import annotations

from recpipe.adapters.base import Lake, SourceDatabase, VectorDatabase
from recpipe.config import mask_url, url_scheme
from recpipe.errors import ConfigError

__all__ = ["Lake", "SourceDatabase", "VectorDatabase", "open_artifacts", "open_lake", "open_source",
           "open_vectors"]


def open_source(url: str, *, setting: str = "RECPIPE_SOURCE_URL") -> SourceDatabase:
    """The source-database adapter for a SQLAlchemy-style URL."""
    scheme = url_scheme(url)
    if scheme == "sqlite":
        from recpipe.adapters.sqlite_source import SQLiteSource

        return SQLiteSource(url, setting=setting)
    if scheme in ("mysql", "mariadb"):
        from recpipe.adapters.mysql_source import MySQLSource

        return MySQLSource(url, setting=setting)
    if scheme in ("postgresql", "postgres"):
        from recpipe.adapters.postgres_source import PostgresSource

        return PostgresSource(url, setting=setting)
    raise ConfigError(
        f"{setting}={mask_url(url)!r}: unknown source database scheme {scheme or '(none)'!r}",
        hint="use sqlite:///path.db, mysql+pymysql://user:pass@host/db or postgresql://user:pass@host/db",
    )


def open_lake(url: str, *, setting: str = "RECPIPE_LAKE_URL") -> Lake:
    """The lake adapter for a directory, ``file://`` URL or ``s3://bucket/prefix``."""
    scheme = url_scheme(url)
    if scheme in ("", "file"):
        from recpipe.adapters.local_lake import LocalLake

        return LocalLake(url, setting=setting)
    if scheme == "s3":
        from recpipe.adapters.s3_lake import S3Lake

        return S3Lake(url, setting=setting)
    raise ConfigError(f"{setting}={mask_url(url)!r}: unknown lake scheme {scheme!r}",
                      hint="use a directory path or s3://bucket/prefix")


def open_artifacts(url: str, *, setting: str = "RECPIPE_ARTIFACTS_URL") -> tuple[Lake, str]:
    """Where model artifacts are published: ``(store, name)``, the artifacts being dataset
    ``name`` of ``store``. A directory publishes as a whole by a swap in its parent; an S3
    prefix (or a whole bucket, as the seed's ``ml-artifacts`` bucket) as an S3 lake does."""
    scheme = url_scheme(url)
    if scheme in ("", "file"):
        from pathlib import Path

        from recpipe.adapters.local_lake import LocalLake

        path = Path(url.removeprefix("file://")).expanduser().resolve()
        if path.parent == path:
            raise ConfigError(f"{setting}={url!r}: the artifacts cannot be the root directory",
                              hint="use a directory such as ./.recpipe/lake/ml-artifacts")
        return LocalLake(str(path.parent), setting=setting), path.name
    if scheme == "s3":
        from recpipe.adapters.s3_lake import S3Lake

        return S3Lake(url, setting=setting), ""
    raise ConfigError(f"{setting}={mask_url(url)!r}: unknown artifacts scheme {scheme!r}",
                      hint="use a directory path or s3://bucket/prefix")


def open_vectors(url: str, *, setting: str = "RECPIPE_VECTORS_URL") -> VectorDatabase:
    """The vector database: ``pgserver:///path`` (embedded) or ``postgresql://…``."""
    scheme = url_scheme(url)
    if scheme == "pgserver":
        from recpipe.adapters.pgserver_vectors import EmbeddedPostgres

        return EmbeddedPostgres(url, setting=setting)
    if scheme in ("postgresql", "postgres"):
        from recpipe.adapters.postgres_vectors import ServerPostgres

        return ServerPostgres(url, setting=setting)
    raise ConfigError(f"{setting}={mask_url(url)!r}: unknown vector database scheme {scheme!r}",
                      hint="use pgserver:///path/pg (embedded) or postgresql://user:pass@host:5432/db")
