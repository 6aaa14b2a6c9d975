"""RECPIPE_VECTORS_SECRET / RECPIPE_SOURCE_SECRET against a real Secrets Manager API (moto's
server): the URL of the same role gets the secret's user and password, quoted; a secret that
is missing, not JSON or without a password is one clear error naming the setting."""

from __future__ import annotations

import json
import uuid
from urllib.parse import unquote, urlsplit

import pytest

from recpipe.config import load_settings
from recpipe.errors import ConfigError, ServiceError

pytestmark = pytest.mark.integration


@pytest.fixture
def secrets(s3_server: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name, value in (("AWS_ENDPOINT_URL", s3_server), ("AWS_ACCESS_KEY_ID", "testing"),
                        ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    import boto3

    client = boto3.client("secretsmanager")

    def create(value: str) -> str:
        return client.create_secret(Name=f"recpipe-{uuid.uuid4().hex[:8]}", SecretString=value)["ARN"]

    return create


def _settings(**env: str):  # type: ignore[no-untyped-def]
    return load_settings(env_file=None, environ={"RECPIPE_HOME": "/tmp/recpipe-secrets-test", **env})


def test_the_secret_completes_the_url_and_is_never_shown(secrets) -> None:  # type: ignore[no-untyped-def]
    password = "p@ss:w/rd?#%[]"  # RDS generates passwords with such characters
    arn = secrets(json.dumps({"username": "recpipe", "password": password, "engine": "postgres"}))
    s = _settings(RECPIPE_VECTORS_URL="postgresql://rds.example:5432/recpipe?sslmode=require",
                  RECPIPE_VECTORS_SECRET=arn,
                  RECPIPE_SOURCE_URL="mysql+pymysql://shop@mysql.example:3306/classicmodels",
                  RECPIPE_SOURCE_SECRET=secrets(json.dumps({"password": "s3cret"})))
    parts = urlsplit(s.vectors_url)
    assert (parts.username, unquote(parts.password or ""), parts.hostname, parts.port, parts.query) == \
        ("recpipe", password, "rds.example", 5432, "sslmode=require")
    assert s.source_url == "mysql+pymysql://shop:s3cret@mysql.example:3306/classicmodels"  # the URL's user kept
    shown = s.masked()
    assert password not in json.dumps(shown) and "s3cret" not in json.dumps(shown)


@pytest.mark.parametrize(("value", "error", "text"), [
    (None, ServiceError, "cannot read the secret RECPIPE_VECTORS_SECRET"),
    ("not json", ConfigError, "is not JSON with a 'password'"),
    (json.dumps({"username": "u"}), ConfigError, "is not JSON with a 'password'"),
])
def test_a_bad_secret_is_one_clear_error(secrets, value: str | None, error: type, text: str) -> None:  # type: ignore[no-untyped-def]
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf" if value is None else secrets(value)
    with pytest.raises(error, match=text):
        _settings(RECPIPE_VECTORS_URL="postgresql://rds.example/recpipe", RECPIPE_VECTORS_SECRET=arn)


def test_a_secret_for_the_embedded_database_is_refused() -> None:
    with pytest.raises(ConfigError, match="without a host"):
        _settings(RECPIPE_VECTORS_URL="pgserver:///tmp/pg", RECPIPE_VECTORS_SECRET="anything")


def test_a_rotated_password_reaches_the_next_connection(secrets) -> None:  # type: ignore[no-untyped-def]
    """RDS rotates the password it manages: each new connection reads the secret again."""
    import boto3

    from recpipe.adapters import open_vectors

    arn = secrets(json.dumps({"username": "recpipe", "password": "first-password"}))
    s = _settings(RECPIPE_VECTORS_URL="postgresql://rds.example:5432/recpipe", RECPIPE_VECTORS_SECRET=arn)
    db = open_vectors(s.vectors_url)
    assert "first-password" in db.conninfo()
    boto3.client("secretsmanager").put_secret_value(
        SecretId=arn, SecretString=json.dumps({"username": "recpipe", "password": "second-password"}))
    assert "second-password" in db.conninfo() and "first-password" not in db.conninfo()
    assert open_vectors("postgresql://u:p@other.example/db").conninfo() == "postgresql://u:p@other.example/db"
