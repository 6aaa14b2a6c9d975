"""Shared fixtures. Services are real: a private MariaDB and an embedded PostgreSQL.

Outside CI a missing service skips the tests that need it, saying why; with CI=true it
fails them, so a CI run can never pass without having exercised them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import mariadb as mariadb_support
from tests.support import plain_postgres

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(service: str, why: str) -> None:
    message = f"{service} is not available: {why}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: required services must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh RECPIPE_HOME, with no RECPIPE_* variables leaking in from outside."""
    for key in list(os.environ):
        if key.startswith("RECPIPE_") and not key.startswith("RECPIPE_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RECPIPE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


class ExternalMySQL:
    """A server named by RECPIPE_TEST_MYSQL_URL (its user may create databases)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.base = make_url(url)

    def url(self, database: str) -> str:
        return self.base.set(database=database).render_as_string(hide_password=False)

    def create_database(self, name: str) -> str:
        import pymysql

        b = self.base
        conn = pymysql.connect(host=b.host, port=b.port or 3306, user=b.username,
                               password=b.password or "", autocommit=True)
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        conn.close()
        return self.url(name)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[object]:
    external = os.environ.get("RECPIPE_TEST_MYSQL_URL")
    if external:
        yield ExternalMySQL(external)
        return
    if not mariadb_support.available():
        need("MariaDB", "mariadbd not found; install it with `apt-get install mariadb-server` "
                        "or set RECPIPE_TEST_MYSQL_URL")
    server = mariadb_support.start(buffer_pool="256M")
    yield server
    server.stop()


@pytest.fixture
def mysql_url(mariadb_server) -> str:  # type: ignore[no-untyped-def]
    """A new, empty database on the test MariaDB."""
    return mariadb_server.create_database(f"t_{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    try:
        import pgserver
    except ImportError:
        need("PostgreSQL", "the pgserver package is not installed (pip install -e '.[vectors]')")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture
def pg_url(pg_server) -> str:  # type: ignore[no-untyped-def]
    """A new, empty database on the embedded PostgreSQL, as a postgresql:// URL."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    pg_server.psql(f"CREATE DATABASE {name};")
    return pg_server.get_uri(name)


@pytest.fixture(scope="session")
def plain_pg_url() -> Iterator[str]:
    """A PostgreSQL without pgvector (Debian's postgresql package), private to the run."""
    if not plain_postgres.available():
        need("a PostgreSQL without pgvector", "apt-get install postgresql-15")
    server = plain_postgres.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3 API (moto's server) on 127.0.0.1; yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        need("an S3 API server", "moto[server] is not installed (pip install -e '.[dev]')")
    port = mariadb_support.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty bucket; the AWS settings point boto3 at the test server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import boto3

    name = f"lake-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local Spark session (2 cores, 127.0.0.1) for the whole run."""
    import shutil as _shutil

    if _shutil.which("java") is None:
        need("Spark", "no Java runtime: apt-get install openjdk-17-jre-headless")
    try:
        from recpipe.etl.spark_engine import local_session
    except ImportError:
        need("Spark", "pyspark is not installed (pip install -e '.[spark]')")
    from recpipe.config import load_settings

    settings = load_settings(env_file=None)
    master = settings.spark_master if "RECPIPE_SPARK_MASTER" in os.environ else "local[2]"
    session = local_session("recpipe-tests", master=master, driver_memory=settings.spark_driver_memory,
                            jars=settings.spark_jars)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
